"""Nonparametric tests of the ratings (scipy, scikit-posthocs), at a stated unit of analysis.

Units: 'prompt_median' (the paper's: one value per prompt x condition x aspect, the median
across raters) or 'rating' (every usable first rating; ratings of one rater are not
independent, so read these p-values as descriptive). Quality-control repeats are left out.

Tests, per aspect (style tests and the detail test also per condition):

- ``kruskal``: Kruskal-Wallis across styles (effect: epsilon squared, H / (n - 1)).
- pairwise styles (pairwise table): Mann-Whitney U, two-sided, normal approximation with tie
  and continuity correction (R: ``wilcox.test(exact=FALSE, correct=TRUE)``); Dunn's test on
  the Kruskal-Wallis ranks (``scikit_posthocs.posthoc_dunn``); both with Holm and
  Benjamini-Hochberg adjustment over the pairs of one unit x aspect x condition; effect size
  Cliff's delta P(a > b) - P(a < b), which equals the rank-biserial correlation of U.
- ``mannwhitney_group``: each style group with more than one style (e.g. radiology) against
  all other styles (Mann-Whitney U as above, Cliff's delta).
- ``wilcoxon_condition``: paired Wilcoxon signed-rank test, each pair of conditions matched by
  prompt (unit 'rating': by rater and prompt); difference = second - first condition.
- ``wilcoxon_variant`` (a study with prompt variants): each variant against v1, paired
  signed-rank test matched by style, topic and detail; difference = variant - v1.
- ``wilcoxon_detail``: paired signed-rank test, short against detailed prompts matched by
  topic and style (unit 'rating': also by rater); difference = detailed - short.
  Both signed-rank tests use ``zero_method`` 'pratt' by default (zero differences are ranked,
  then left out of the statistic; on a 0-4 scale most differences are zero, and scipy's
  default 'wilcox' would drop them before ranking) or 'zsplit' (zero ranks split evenly
  between the signs); normal approximation with tie correction, no continuity correction.
  Effect: matched-pairs rank-biserial (R+ - R-) / (R+ + R-), with zero ranks in the
  denominator under 'zsplit'.

Degenerate input (no data, one group, all values identical, no matched pairs, all differences
zero) gives status 'not testable' and a reason, never a bare NaN.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

from glidemed.analysis.descriptives import first_ratings, prompt_medians
from glidemed.analysis.tidy import usable
from glidemed.errors import AnalysisError

UNITS = ("prompt_median", "rating")
ZERO_METHODS = ("pratt", "zsplit")
OK, NOT_TESTABLE = "ok", "not testable"
# tests.csv: one row per test. 'condition' is 'all' for the condition comparison; 'n' is
# the number of values (kruskal, group) or of matched pairs (wilcoxon); 'statistic' is H,
# U of the group, or min(R+, R-); 'reason' also carries notes on tests that ran.
TEST_COLUMNS = ["unit", "aspect", "condition", "test", "comparison", "n", "statistic", "p",
                "effect_size", "effect_measure", "zero_method", "status", "reason"]
# pairwise.csv: one row per pair of styles (a before b in study order); u is U of a;
# p_*_holm / p_*_bh are adjusted over the pairs of one unit x aspect x condition;
# cliffs_delta > 0 means a scores higher.
PAIRWISE_COLUMNS = ["unit", "aspect", "condition", "a", "b", "n_a", "n_b", "median_a",
                    "median_b", "u", "p_mw", "p_mw_holm", "p_mw_bh", "p_dunn", "p_dunn_holm",
                    "p_dunn_bh", "cliffs_delta", "status", "reason"]


def run_tests(df: pd.DataFrame, unit: str = "prompt_median", zero_method: str = "pratt",
              nonsensical_rule: str = "per_rating") -> tuple[pd.DataFrame, pd.DataFrame]:
    """All tests of the module docstring at ``unit``: (tests table, pairwise table).
    ``nonsensical_rule``: how prompt medians treat flagged prompts (see prompt_medians)."""
    if unit not in UNITS:
        raise AnalysisError(f"unit must be one of {UNITS}, got {unit!r}")
    if zero_method not in ZERO_METHODS:
        raise AnalysisError(f"zero_method must be one of {ZERO_METHODS}, got {zero_method!r}")
    data = _unit_table(df, unit, nonsensical_rule)
    if "variant" in df and "variant" not in data:  # per-prompt medians: the id names the variant
        data["variant"] = data["prompt_id"].map(dict(zip(df["prompt_id"], df["variant"])))
    styles = _levels(df, "style")
    conditions = _levels(df, "condition")
    styles_per_group = df.groupby("style_group", sort=False, observed=True)["style"].nunique()
    multi_style_groups = [g for g, k in styles_per_group.items() if k > 1]
    tests, pairs = [], []
    for aspect in _levels(df, "aspect"):
        for condition in conditions:
            part = data[(data["aspect"] == aspect) & (data["condition"] == condition)]
            groups = {s: part.loc[part["style"] == s, "score"].to_numpy(float) for s in styles}
            base = {"unit": unit, "aspect": aspect, "condition": condition}
            tests.append({**base, **_kruskal(groups)})
            pairs.extend({**base, **row} for row in _pairwise(part, groups))
            tests.extend({**base, **row} for row in _group_tests(part, multi_style_groups))
            tests.append({**base, **_detail_test(part, unit, zero_method)})
            tests.extend({**base, **row} for row in _variant_tests(part, unit, zero_method))
        tests.extend({"unit": unit, "aspect": aspect, "condition": "all", **row}
                     for row in _condition_tests(data[data["aspect"] == aspect], conditions,
                                                 unit, zero_method))
    return (pd.DataFrame(tests, columns=TEST_COLUMNS),
            pd.DataFrame(pairs, columns=PAIRWISE_COLUMNS))


def _unit_table(df: pd.DataFrame, unit: str, nonsensical_rule: str) -> pd.DataFrame:
    if unit == "prompt_median":
        return prompt_medians(df, nonsensical_rule)
    data = usable(first_ratings(df))
    return data.assign(score=data["score"].astype(float))


def _levels(df: pd.DataFrame, column: str) -> list[str]:
    """Levels in order of first appearance (study order for tables built from a study)."""
    return list(pd.unique(df[column].dropna()))


def _not_testable(reason: str, **extra) -> dict:
    return {"status": NOT_TESTABLE, "reason": reason, **extra}


def _kruskal(groups: dict[str, np.ndarray]) -> dict:
    row = {"test": "kruskal", "comparison": "styles", "effect_measure": "epsilon_squared",
           "zero_method": ""}
    present = {k: v for k, v in groups.items() if len(v)}
    empty = [k for k, v in groups.items() if not len(v)]
    note = f"no data for {', '.join(empty)}" if empty else ""
    row["n"] = sum(len(v) for v in present.values())
    if len(present) < 2:
        return {**row, **_not_testable("fewer than two styles with data" + (f"; {note}" if note else ""))}
    values = np.concatenate(list(present.values()))
    if np.all(values == values[0]):
        return {**row, **_not_testable("all values identical")}
    h, p = stats.kruskal(*present.values())
    return {**row, "statistic": h, "p": p, "effect_size": h / (len(values) - 1), "status": OK,
            "reason": note}


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b) over all pairs (= rank-biserial correlation of Mann-Whitney U)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    greater = np.searchsorted(b, a, side="left").sum()  # b values below each a
    less = (len(b) - np.searchsorted(b, a, side="right")).sum()
    return float((greater - less) / (len(a) * len(b)))


def _mann_whitney(a: np.ndarray, b: np.ndarray, no_data: str) -> tuple[float, float] | str:
    """(U of a, p) or the reason it cannot be tested (``no_data`` when a group is empty)."""
    if not len(a) or not len(b):
        return no_data
    both = np.concatenate([a, b])
    if np.all(both == both[0]):
        return "all values identical"
    res = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic",
                             use_continuity=True)
    return float(res.statistic), float(res.pvalue)


def _pairwise(part: pd.DataFrame, groups: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for a, b in itertools.combinations(groups, 2):
        x, y = groups[a], groups[b]
        row = {"a": a, "b": b, "n_a": len(x), "n_b": len(y),
               "median_a": np.median(x) if len(x) else np.nan,
               "median_b": np.median(y) if len(y) else np.nan}
        result = _mann_whitney(x, y, f"no data for {a if not len(x) else b}")
        if isinstance(result, str):
            row.update(_not_testable(result))
        else:
            row.update(u=result[0], p_mw=result[1], cliffs_delta=cliffs_delta(x, y), status=OK,
                       reason="")
        rows.append(row)
    _add_dunn(part, rows)
    for column in ("p_mw", "p_dunn"):
        _adjust(rows, column)
    return rows


def _add_dunn(part: pd.DataFrame, rows: list[dict]) -> None:
    """Unadjusted Dunn p-values on the ranks of all styles with data."""
    data = part[["style", "score"]].dropna()
    if data["style"].nunique() < 2 or data["score"].nunique() < 2:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        matrix = sp.posthoc_dunn(data.assign(style=data["style"].astype(str)), val_col="score",
                                 group_col="style", p_adjust=None)
    for row in rows:
        if row["status"] == OK and row["a"] in matrix.index and row["b"] in matrix.columns:
            row["p_dunn"] = float(matrix.loc[row["a"], row["b"]])


def _adjust(rows: list[dict], column: str) -> None:
    """Holm and Benjamini-Hochberg over the rows that have a finite ``column``."""
    idx = [i for i, r in enumerate(rows) if np.isfinite(r.get(column, np.nan))]
    if not idx:
        return
    p = np.array([rows[i][column] for i in idx])
    holm, bh = p_adjust_holm(p), p_adjust_bh(p)
    for j, i in enumerate(idx):
        rows[i][f"{column}_holm"] = holm[j]
        rows[i][f"{column}_bh"] = bh[j]


def p_adjust_holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (R: p.adjust(p, "holm"))."""
    p = np.asarray(p, float)
    order = np.argsort(p)
    steps = (len(p) - np.arange(len(p))) * p[order]
    out = np.empty_like(p)
    out[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return out


def p_adjust_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment (R: p.adjust(p, "BH"))."""
    p = np.asarray(p, float)
    order = np.argsort(p)[::-1]
    rank = len(p) - np.arange(len(p))  # rank of each p in ascending order
    out = np.empty_like(p)
    out[order] = np.minimum(np.minimum.accumulate(p[order] * len(p) / rank), 1.0)
    return out


def _group_tests(part: pd.DataFrame, groups: list[str]) -> list[dict]:
    """Each of ``groups`` (the style groups holding more than one style) against the rest."""
    rows = []
    for group in groups:
        inside = part["style_group"] == group
        x, y = part.loc[inside, "score"].to_numpy(float), part.loc[~inside, "score"].to_numpy(float)
        row = {"test": "mannwhitney_group", "comparison": f"{group} vs rest", "n": len(x) + len(y),
               "effect_measure": "cliffs_delta", "zero_method": ""}
        result = _mann_whitney(x, y, "no data in the group or the rest")
        if isinstance(result, str):
            row.update(_not_testable(result))
        else:
            row.update(statistic=result[0], p=result[1], effect_size=cliffs_delta(x, y),
                       status=OK, reason="")
        rows.append(row)
    return rows


def signed_rank(d: np.ndarray, zero_method: str) -> dict:
    """Wilcoxon signed-rank test of differences ``d`` (normal approximation, tie-corrected)."""
    d = np.asarray(d, dtype=float)
    row = {"n": len(d), "effect_measure": "rank_biserial", "zero_method": zero_method}
    if not len(d):
        return {**row, **_not_testable("no matched pairs")}
    if np.all(d == 0):
        return {**row, **_not_testable("all differences are zero")}
    res = stats.wilcoxon(d, zero_method=zero_method, correction=False, method="approx")
    ranks = stats.rankdata(np.abs(d))
    r_plus, r_minus, r_zero = ranks[d > 0].sum(), ranks[d < 0].sum(), ranks[d == 0].sum()
    total = r_plus + r_minus + (r_zero if zero_method == "zsplit" else 0.0)
    return {**row, "statistic": float(res.statistic), "p": float(res.pvalue),
            "effect_size": (r_plus - r_minus) / total, "status": OK,
            "reason": f"{int(np.sum(d == 0))} of {len(d)} differences are zero"}


def _paired(data: pd.DataFrame, keys: list[str], column: str, first: str, second: str) -> np.ndarray:
    """second - first, matched on ``keys``; a key rated twice keeps its first rating."""
    wide = data.pivot_table(index=keys, columns=column, values="score", aggfunc="first",
                            observed=True)
    if first not in wide.columns or second not in wide.columns:
        return np.array([])
    pairs = wide[[first, second]].dropna()
    return (pairs[second] - pairs[first]).to_numpy(float)


def _detail_test(part: pd.DataFrame, unit: str, zero_method: str) -> dict:
    base = {"test": "wilcoxon_detail"}
    levels = _levels(part, "detail")
    if len(levels) != 2:
        return {**base, "comparison": "detail", "n": 0, "zero_method": zero_method,
                **_not_testable(f"needs two detail levels, found {len(levels)}")}
    first, second = ("short", "detailed") if set(levels) == {"short", "detailed"} else levels
    keys = ["style", "topic"] + (["rater"] if unit == "rating" else [])
    d = _paired(part, keys, "detail", first, second)
    return {**base, "comparison": f"{second} - {first}", **signed_rank(d, zero_method)}


def _variant_tests(part: pd.DataFrame, unit: str, zero_method: str) -> list[dict]:
    """Each prompt variant against v1 (the first template), matched by style, topic and
    detail (unit 'rating': also by rater); none without variants."""
    if "variant" not in part:
        return []
    levels = sorted(_levels(part, "variant"), key=lambda v: int(str(v)[1:]))
    keys = ["style", "topic", "detail"] + (["rater"] if unit == "rating" else [])
    return [{"test": "wilcoxon_variant", "comparison": f"{v} - {levels[0]}",
             **signed_rank(_paired(part, keys, "variant", levels[0], v), zero_method)}
            for v in levels[1:]]


def _condition_tests(data: pd.DataFrame, conditions: list[str], unit: str,
                     zero_method: str) -> list[dict]:
    base = {"test": "wilcoxon_condition"}
    if len(conditions) < 2:
        return [{**base, "comparison": "conditions", "n": 0, "zero_method": zero_method,
                 **_not_testable(f"needs two conditions, found {len(conditions)}: "
                                 + ", ".join(conditions))}]
    keys = ["prompt_id"] + (["rater"] if unit == "rating" else [])
    return [{**base, "comparison": f"{b} - {a}",
             **signed_rank(_paired(data, keys, "condition", a, b), zero_method)}
            for a, b in itertools.combinations(conditions, 2)]
