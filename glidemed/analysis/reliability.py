"""Rater agreement: Krippendorff's alpha (primary), pairwise Cohen's kappa, ICC (secondary) and
intra-rater consistency from repeated panels.

An item is a prompt x condition (every rater who rated it saw the same images); repeats are
left out of the inter-rater measures and used only for intra-rater consistency.
"""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
from scipy import stats

from glidemed.analysis.descriptives import first_ratings, score_levels
from glidemed.analysis.tidy import usable

ITEM = ["prompt_id", "condition"]
# reliability.csv. raters: 'all' or 'a|b' (a pair) or one rater id (intra-rater).
# role: 'primary' or 'secondary' (ICC treats the ordinal scale as interval).
RELIABILITY_COLUMNS = ["aspect", "measure", "raters", "n_items", "estimate", "ci_low", "ci_high",
                       "role", "status", "reason"]


def rating_matrix(df: pd.DataFrame, aspect: str) -> pd.DataFrame:
    """Raters x items (prompt_id|condition) of usable first ratings, NaN where not rated."""
    data = usable(first_ratings(df))
    data = data[data["aspect"] == aspect]
    items = data["prompt_id"].astype(str) + "|" + data["condition"].astype(str)
    wide = data.assign(item=items, score=data["score"].astype(float)).pivot_table(
        index="rater", columns="item", values="score", aggfunc="first", observed=True)
    return wide.sort_index()


def reliability_table(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                      levels: list[int] | None = None) -> pd.DataFrame:
    """Every measure for every aspect (RELIABILITY_COLUMNS).

    alpha: ordinal, value domain ``levels`` (default 0..max score, at least 0..4), with a
    percentile CI from ``n_boot`` bootstrap resamples of items (``seed``).
    kappa: quadratic weights, per pair of raters on the items both rated.
    ICC(2,1) (absolute agreement) and ICC(3,1) (consistency), two-way ANOVA on the items
    every rater rated, F-based 95% CIs (McGraw & Wong 1996).
    """
    levels = levels or score_levels(df)
    rows = []
    for aspect in pd.unique(df["aspect"].dropna()):
        matrix = rating_matrix(df, aspect)
        base = {"aspect": aspect}
        rows.append({**base, **_alpha_row(matrix, levels, n_boot, seed)})
        values = matrix.to_numpy(float)
        for i, j in itertools.combinations(range(len(matrix.index)), 2):
            rows.append({**base, "measure": "cohen_kappa_quadratic",
                         "raters": f"{matrix.index[i]}|{matrix.index[j]}", "role": "primary",
                         **_kappa_row(values[i], values[j], levels)})
        rows.extend({**base, **row} for row in icc_rows(matrix))
        rows.extend({**base, **row} for row in _intra_rows(df, aspect, levels))
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


def _fail(reason: str, n_items: int = 0) -> dict:
    return {"n_items": n_items, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
            "status": "not testable", "reason": reason}


# --- Krippendorff's alpha ------------------------------------------------------------------

def _alpha_row(matrix: pd.DataFrame, levels: list[int], n_boot: int, seed: int) -> dict:
    row = {"measure": "krippendorff_alpha_ordinal", "raters": "all", "role": "primary"}
    values = matrix.to_numpy(float)
    pairable = np.sum(~np.isnan(values), axis=0) >= 2
    values = values[:, pairable]
    if values.shape[0] < 2 or values.shape[1] == 0:
        return {**row, **_fail("needs two raters on at least one common item")}
    if len(np.unique(values[~np.isnan(values)])) < 2:
        return {**row, **_fail("all values identical", values.shape[1])}
    # raters x items, as krippendorff expects (a transposed matrix gives a wrong value)
    estimate = krippendorff.alpha(reliability_data=values, level_of_measurement="ordinal",
                                  value_domain=levels)
    low = high = np.nan
    if n_boot > 0:
        boot = bootstrap_alpha(values, levels, n_boot, seed)
        low, high = np.nanpercentile(boot, [2.5, 97.5])
    return {**row, "n_items": values.shape[1], "estimate": float(estimate), "ci_low": low,
            "ci_high": high, "status": "ok",
            "reason": f"bootstrap over items, {n_boot} resamples" if n_boot > 0 else ""}


def _item_coincidences(values: np.ndarray, levels: list[int]) -> np.ndarray:
    """Per item, its contribution to the coincidence matrix: items x V x V."""
    index = {v: i for i, v in enumerate(levels)}
    counts = np.zeros((values.shape[1], len(levels)))
    for rater in values:
        for item in np.flatnonzero(~np.isnan(rater)):
            counts[item, index[int(rater[item])]] += 1
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    outer[:, np.arange(len(levels)), np.arange(len(levels))] -= counts
    return outer / (m - 1)[:, None, None]


def alpha_from_coincidences(o: np.ndarray) -> np.ndarray:
    """Ordinal alpha of coincidence matrices ``o`` (... x V x V)."""
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    cum = np.cumsum(n_c, axis=-1)
    # ordinal distance: (sum_{g=c..k} n_g - (n_c + n_k)/2)^2, c <= k
    v = n_c.shape[-1]
    lower = np.minimum(np.arange(v)[:, None], np.arange(v)[None, :])  # the lower of c, k
    between = np.abs(cum[..., None, :] - cum[..., :, None]) + n_c[..., lower]
    delta = (between - (n_c[..., :, None] + n_c[..., None, :]) / 2) ** 2
    observed = (o * delta).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - (n - 1) * observed / expected


def bootstrap_alpha(values: np.ndarray, levels: list[int], n_boot: int, seed: int) -> np.ndarray:
    """Alpha of ``n_boot`` resamples of the items (columns of ``values``), with replacement."""
    contrib = _item_coincidences(values, levels).reshape(values.shape[1], -1)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for start in range(0, n_boot, 200):  # chunks bound the memory of the weight matrix
        size = min(200, n_boot - start)
        weights = rng.multinomial(values.shape[1], np.full(values.shape[1], 1 / values.shape[1]),
                                  size=size)
        o = (weights @ contrib).reshape(size, len(levels), len(levels))
        out[start:start + size] = alpha_from_coincidences(o)
    return out


# --- Cohen's kappa -------------------------------------------------------------------------

def weighted_kappa(a: np.ndarray, b: np.ndarray, levels: list[int]) -> float:
    """Quadratic-weighted Cohen's kappa of paired scores (NaN if chance disagreement is 0)."""
    k = len(levels)
    codes = np.searchsorted(levels, np.asarray(a, float)) * k + np.searchsorted(levels, np.asarray(b, float))
    observed = np.bincount(codes, minlength=k * k).reshape(k, k).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    weights = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2
    chance = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / chance) if chance > 0 else np.nan


def _kappa_row(a: np.ndarray, b: np.ndarray, levels: list[int]) -> dict:
    both = ~np.isnan(a) & ~np.isnan(b)
    if both.sum() < 2:
        return _fail("fewer than two items rated by both", int(both.sum()))
    kappa = weighted_kappa(a[both], b[both], levels)
    if np.isnan(kappa):
        return _fail("no variation in the scores of both raters", int(both.sum()))
    return {"n_items": int(both.sum()), "estimate": kappa, "ci_low": np.nan, "ci_high": np.nan,
            "status": "ok", "reason": ""}


# --- ICC -----------------------------------------------------------------------------------

def icc_rows(matrix: pd.DataFrame, alpha: float = 0.05) -> list[dict]:
    """ICC(2,1) and ICC(3,1) on the items every rater rated (secondary: interval scale)."""
    complete = matrix.loc[:, matrix.notna().all(axis=0)].to_numpy(float).T  # items x raters
    rows = [{"measure": m, "raters": "all", "role": "secondary"} for m in ("icc2_1", "icc3_1")]
    n, k = complete.shape
    if n < 2 or k < 2:
        return [{**r, **_fail("needs two raters and two items rated by all", n)} for r in rows]
    grand = complete.mean()
    ss_rows = k * ((complete.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((complete.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((complete - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    if mse <= 0 or not np.isfinite(msr / mse):
        return [{**r, **_fail("no residual variation (all raters agree exactly)", n)} for r in rows]
    note = f"{n} items rated by all {k} raters"
    # ICC(2,1): two-way random, absolute agreement
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    a = k * icc2 / (n * (1 - icc2))
    b = 1 + k * icc2 * (n - 1) / (n * (1 - icc2))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    fl, fu = stats.f.ppf(1 - alpha / 2, n - 1, v), stats.f.ppf(1 - alpha / 2, v, n - 1)
    low2 = n * (msr - fl * mse) / (fl * (k * msc + (k * n - k - n) * mse) + n * msr)
    high2 = n * (fu * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fu * msr)
    # ICC(3,1): two-way mixed, consistency
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    f = msr / mse
    fl3 = f / stats.f.ppf(1 - alpha / 2, n - 1, (n - 1) * (k - 1))
    fu3 = f * stats.f.ppf(1 - alpha / 2, (n - 1) * (k - 1), n - 1)
    low3, high3 = (fl3 - 1) / (fl3 + k - 1), (fu3 - 1) / (fu3 + k - 1)
    values = [(icc2, low2, high2), (icc3, low3, high3)]
    return [{**r, "n_items": n, "estimate": e, "ci_low": lo, "ci_high": hi, "status": "ok",
             "reason": note} for r, (e, lo, hi) in zip(rows, values)]


# --- intra-rater ---------------------------------------------------------------------------

def _intra_rows(df: pd.DataFrame, aspect: str, levels: list[int]) -> list[dict]:
    """Repeat vs first rating of the same item by the same rater (only if repeats exist)."""
    data = usable(df[df["aspect"] == aspect])
    is_repeat = data["repeat"].fillna(False).astype(bool)
    if not is_repeat.any():
        return []
    keys = ["rater", *ITEM]
    pairs = data[~is_repeat].drop_duplicates(keys)[keys + ["score"]].merge(
        data[is_repeat].drop_duplicates(keys)[keys + ["score"]], on=keys,
        suffixes=("_first", "_repeat"))
    rows = []
    for rater, part in [("all", pairs), *pairs.groupby("rater", sort=True)]:
        first, again = part["score_first"].to_numpy(), part["score_repeat"].to_numpy()
        base = {"raters": str(rater), "role": "primary"}
        rows.append({**base, "measure": "intra_rater_exact_agreement",
                     **({"n_items": len(part), "estimate": float(np.mean(first == again)),
                         "ci_low": np.nan, "ci_high": np.nan, "status": "ok", "reason": ""}
                        if len(part) else _fail("no repeat matches a first rating"))})
        rows.append({**base, "measure": "intra_rater_kappa_quadratic",
                     **_kappa_row(first.astype(float), again.astype(float), levels)})
    return rows
