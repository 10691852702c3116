"""Descriptive statistics of the ratings: by design factor, rater and rater profile, and the
per-prompt medians across raters (the paper's unit of analysis).

Quality-control repeats (``repeat`` True) are left out here: they serve intra-rater
consistency (reliability.py), and counting them would weigh some panels twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glidemed.analysis.tidy import usable
from glidemed.errors import AnalysisError

# Grouping variables of describe_ratings, in output order ('all' is the whole table).
FACTORS = ("style", "style_group", "condition", "detail", "variant", "style_variant", "rater")
DESCRIPTIVE_COLUMNS = ["by", "level", "aspect", "n", "n_excluded", "median", "q1", "q3", "iqr",
                       "mean"]  # then n_0, n_1, ... one per score level
PROMPT_KEYS = ["prompt_id", "style", "style_group", "topic", "detail", "condition", "aspect"]
NONSENSICAL_RULES = ("per_rating", "any_rater")  # see prompt_medians


def first_ratings(df: pd.DataFrame) -> pd.DataFrame:
    """The table without quality-control repeats."""
    return df[~df["repeat"].fillna(False).astype(bool)]


def score_levels(df: pd.DataFrame) -> list[int]:
    """0 .. the highest score seen (at least 0..4, the usual scale)."""
    scores = df["score"].dropna()
    top = int(scores.max()) if len(scores) else 4
    return list(range(max(top, 4) + 1))


def describe_ratings(df: pd.DataFrame, profiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """n, excluded, median, quartiles, IQR, mean and the count of each score level, per aspect,
    for the whole table ('all'), each level of style, style_group, condition, detail,
    prompt variant (and style x variant, 'style_variant'; a study with variants) and rater, and each answer of every profile field (``profiles``: a 'rater' column plus one
    column per field; the 'by' value is 'profile:<field>').

    Columns: DESCRIPTIVE_COLUMNS + ['n_0', 'n_1', ...]. Unit: the single rating.
    """
    data = first_ratings(df).copy()
    data["all"] = "all"
    if "variant" in data:  # prompt variants: each style's templates apart
        data["style_variant"] = data["style"].astype(str) + ":" + data["variant"].astype(str)
    factors = ["all", *FACTORS]
    if profiles is not None and len(profiles):
        fields = [c for c in profiles.columns if c != "rater"]
        prof = profiles[["rater", *fields]].drop_duplicates("rater").astype({"rater": "string"})
        prof = prof.rename(columns={f: f"profile:{f}" for f in fields})
        for column in prof.columns[1:]:
            prof[column] = prof[column].astype("string").fillna("(no answer)")
        data = data.merge(prof, on="rater", how="left")
        for column in prof.columns[1:]:
            data[column] = data[column].fillna("(no profile)")
            factors.append(column)
    levels = score_levels(data)
    parts = [_summarise(data, by, levels) for by in factors if by in data.columns]
    return pd.concat(parts, ignore_index=True)


def _summarise(data: pd.DataFrame, by: str, levels: list[int]) -> pd.DataFrame:
    rows = []
    for (level, aspect), group in data.groupby([by, "aspect"], sort=False, observed=True):
        scores = usable(group)["score"].to_numpy(dtype=float)
        row = {"by": by, "level": str(level), "aspect": aspect, "n": len(scores),
               "n_excluded": len(group) - len(scores)}
        if len(scores):
            q1, median, q3 = np.percentile(scores, [25, 50, 75])  # linear, as R's type 7
            row.update(median=median, q1=q1, q3=q3, iqr=q3 - q1, mean=scores.mean())
        else:
            row.update(median=np.nan, q1=np.nan, q3=np.nan, iqr=np.nan, mean=np.nan)
        counts = np.bincount(scores.astype(int), minlength=len(levels))
        row.update({f"n_{k}": int(counts[k]) for k in levels})
        rows.append(row)
    return pd.DataFrame(rows, columns=DESCRIPTIVE_COLUMNS + [f"n_{k}" for k in levels])


def prompt_medians(df: pd.DataFrame, nonsensical_rule: str = "per_rating") -> pd.DataFrame:
    """Median score across raters per prompt x condition x aspect (repeats left out).

    Columns: prompt_id, style, style_group, topic, detail, condition, aspect, score (float;
    a half point where an even number of raters split), n_raters (usable ratings).
    Prompts with no usable rating are left out.

    ``nonsensical_rule``: 'per_rating' (default) takes each rating as the table has it
    (see tidy.apply_nonsensical); 'any_rater' gives the whole prompt the nonsensical
    treatment as soon as one rater flagged it: median 0 if the table counts nonsensical as
    0, left out if it excludes them. 'any_rater' with 'zero' reproduces the paper's sheet
    'matrix_nonsensical_as_zero'.
    """
    if nonsensical_rule not in NONSENSICAL_RULES:
        raise AnalysisError(f"nonsensical_rule must be one of {NONSENSICAL_RULES}, "
                            f"got {nonsensical_rule!r}")
    first = first_ratings(df)
    data = usable(first)
    columns = [*PROMPT_KEYS, "score", "n_raters"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    data = data.assign(score=data["score"].astype(float))
    grouped = data.groupby(PROMPT_KEYS, sort=False, observed=True)["score"]
    out = grouped.agg(score="median", n_raters="size").reset_index()
    out["n_raters"] = out["n_raters"].astype(int)
    if nonsensical_rule == "any_rater" and "nonsensical" in first.columns:
        flagged = first[first["nonsensical"].fillna(False).astype(bool)]
        zeroed = (flagged["exclusion"] == "").to_numpy()  # counted as 0 rather than excluded
        flagged_keys = pd.MultiIndex.from_frame(flagged[PROMPT_KEYS])
        keys = pd.MultiIndex.from_frame(out[PROMPT_KEYS])
        out.loc[keys.isin(flagged_keys[zeroed]), "score"] = 0.0
        out = out[~keys.isin(flagged_keys[~zeroed])]
    return out[columns].reset_index(drop=True)
