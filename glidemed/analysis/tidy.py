"""The tidy ratings table: one row per rating, the common currency of every analysis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glidemed.errors import AnalysisError
from glidemed.fileio import atomic_path

# Fixed columns, in order; one boolean column per study flag (e.g. 'nonsensical') follows.
TIDY_COLUMNS = [
    "rater",       # rater id (pseudonymised if asked)
    "panel",       # opaque panel token (legacy import: the prompt id)
    "prompt_id",
    "style",
    "style_group",
    "topic",
    "detail",      # 'short' or 'detailed'
    "condition",
    "aspect",      # e.g. 'style', 'content'
    "score",       # integer level, <NA> when not usable (see 'exclusion')
    "exclusion",   # '' for a usable score, else the reason: 'missing', 'nonsensical', ...
    "seconds",     # time spent on the panel, <NA> when unknown
    "repeat",      # True for a quality-control repeat of an earlier panel
    "comment",     # the rater's free-text comment on the panel ('' if none)
]
NONSENSICAL_MODES = ("exclude", "zero", "paper")


def empty_ratings(flags: list[str]) -> pd.DataFrame:
    """A tidy table without rows (the columns and dtypes of :func:`normalise`)."""
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in TIDY_COLUMNS + flags})


def _dtype(column: str) -> str:
    return {"score": "Int64", "seconds": "Float64", "repeat": "boolean"}.get(
        column, "boolean" if column not in TIDY_COLUMNS else "string")


def normalise(df: pd.DataFrame, flags: list[str]) -> pd.DataFrame:
    """Return ``df`` with the tidy columns in order and their dtypes; raise on missing columns."""
    missing = [c for c in TIDY_COLUMNS + flags if c not in df.columns]
    if missing:
        raise AnalysisError(f"ratings table lacks column(s): {', '.join(missing)}")
    out = df[TIDY_COLUMNS + flags + [c for c in df.columns if c not in TIDY_COLUMNS + flags]].copy()
    for column in TIDY_COLUMNS + flags:
        out[column] = out[column].astype(_dtype(column))
    out["exclusion"] = out["exclusion"].fillna("")
    out["comment"] = out["comment"].fillna("")
    return out


def apply_nonsensical(df: pd.DataFrame, mode: str) -> pd.DataFrame:
    """How ratings of panels flagged nonsensical are analysed.

    'exclude': they become <NA> with exclusion reason 'nonsensical'. 'zero': each flagged
    rating counts as 0. 'paper': as the seed study's sheet 'matrix_nonsensical_as_zero',
    every rating of a prompt (per condition and aspect) that any rater flagged counts as
    0, so its per-prompt median is 0.
    """
    if mode not in NONSENSICAL_MODES:
        raise AnalysisError(f"--nonsensical: expected one of {NONSENSICAL_MODES}, got {mode!r}")
    if "nonsensical" not in df.columns:
        return df
    out = df.copy()
    flagged = out["nonsensical"].fillna(False).astype(bool) & out["exclusion"].isin(["", "nonsensical"])
    if mode == "paper":
        keys = ["prompt_id", "condition", "aspect"]
        prompts = pd.MultiIndex.from_frame(out.loc[flagged, keys].astype(str))
        in_prompt = pd.MultiIndex.from_frame(out[keys].astype(str)).isin(prompts)
        flagged = in_prompt & out["exclusion"].isin(["", "nonsensical"]).to_numpy()
    if mode in ("zero", "paper"):
        out.loc[flagged, "score"] = 0
        out.loc[flagged, "exclusion"] = ""
    else:
        out.loc[flagged, "score"] = pd.NA
        out.loc[flagged, "exclusion"] = "nonsensical"
    return out


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a score to analyse."""
    return df[df["score"].notna() & (df["exclusion"] == "")]


def usable_first_ratings(df: pd.DataFrame, response: str = "score") -> pd.DataFrame:
    """Rows to model: not a quality-control repeat, not excluded, with a ``response``.

    Unlike ``usable(first_ratings(df))`` this also takes a table without the 'repeat' or
    'exclusion' column (one made by hand or by another tool), which then counts as all
    first ratings, none excluded.
    """
    keep = df[response].notna()
    if "exclusion" in df.columns:
        keep &= df["exclusion"].fillna("") == ""
    if "repeat" in df.columns:
        keep &= ~df["repeat"].fillna(False).astype(bool)
    return df[keep]


def read_ratings_csv(path: Path, flags: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"rater": str, "panel": str, "exclusion": str, "comment": str},
                         keep_default_na=False, na_values={"score": [""], "seconds": [""]})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise AnalysisError(f"{path}: cannot read ratings table ({exc})") from None
    try:
        return normalise(df, flags)
    except (AnalysisError, ValueError, TypeError) as exc:
        raise AnalysisError(f"{path}: {exc}") from None


def write_ratings_csv(df: pd.DataFrame, path: Path) -> None:
    """Write the tidy table atomically (empty cells for <NA>); read it back with
    :func:`read_ratings_csv`."""
    try:
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot write ratings table ({exc.strerror or exc})") from None
