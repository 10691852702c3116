"""Crossed (pigeonhole) bootstrap: resample raters and prompts independently.

Ratings are clustered twice, by rater and by prompt. Owen's pigeonhole bootstrap draws
raters with replacement and, independently, prompts with replacement; a resample holds
every rating of a drawn rater on a drawn prompt, repeated (count of the rater) x (count of
the prompt) times. Percentile intervals of a statistic over the resamples then reflect
both sources of variation. A prompt's ratings under every condition travel together.

Medians and their differences are computed for all resamples at once from weighted
score counts (:func:`bootstrap_medians`); any other statistic of a tidy table goes through
:func:`crossed_bootstrap`, which builds each resample; :func:`bootstrap_model` gives CIs
of model effects that way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import sparse

from glidemed.analysis.tidy import usable_first_ratings
from glidemed.errors import AnalysisError

DEFAULT_SEED = 2022
BOOTSTRAP_COLUMNS = ["term", "estimate", "ci_low", "ci_high", "se", "n_boot", "n_valid", "seed"]
MEDIAN_COLUMNS = ["aspect", "kind", *BOOTSTRAP_COLUMNS]  # kind: 'median' or 'difference'
_CHUNK = 200  # resamples per vectorised block (bounds memory)


@dataclass
class CrossedDraws:
    """How often each rater and each prompt is drawn in each resample."""

    raters: np.ndarray  # rater ids, in the order of rater_counts' columns
    prompts: np.ndarray  # prompt ids, in the order of prompt_counts' columns
    rater_counts: np.ndarray  # n_boot x n_raters
    prompt_counts: np.ndarray  # n_boot x n_prompts
    seed: int

    @property
    def n_boot(self) -> int:
        return len(self.rater_counts)


def crossed_draws(df: pd.DataFrame, n_boot: int, seed: int = DEFAULT_SEED, rater: str = "rater",
                  prompt: str = "prompt_id") -> CrossedDraws:
    """Draw ``n_boot`` resamples of the raters and, independently, of the prompts of ``df``."""
    if n_boot < 1:
        raise AnalysisError(f"bootstrap: the number of resamples must be at least 1, got {n_boot}")
    for column in (rater, prompt):
        if column not in df.columns:
            raise AnalysisError(f"bootstrap: the ratings table has no column {column!r}")
    raters = np.asarray(pd.unique(df[rater].dropna()))
    prompts = np.asarray(pd.unique(df[prompt].dropna()))
    if len(raters) == 0 or len(prompts) == 0:
        raise AnalysisError("bootstrap: no ratings to resample")
    rng = np.random.default_rng(seed)
    rater_counts = rng.multinomial(len(raters), np.full(len(raters), 1 / len(raters)), size=n_boot)
    prompt_counts = rng.multinomial(len(prompts), np.full(len(prompts), 1 / len(prompts)), size=n_boot)
    return CrossedDraws(raters, prompts, rater_counts.astype(np.int32),
                        prompt_counts.astype(np.int32), seed)


def _codes(values: pd.Series, ids: np.ndarray) -> np.ndarray:
    return pd.Categorical(values, categories=ids).codes.astype(np.int64)


def _percentile_rows(terms: list[str], estimate: np.ndarray, boot: np.ndarray, n_boot: int,
                     seed: int, level: float) -> pd.DataFrame:
    """One row per term: percentile CI over the finite resampled values (columns of boot)."""
    tail = (1 - level) / 2 * 100
    rows = []
    for j, term in enumerate(terms):
        values = boot[:, j][np.isfinite(boot[:, j])]
        low, high = (np.percentile(values, [tail, 100 - tail]) if len(values) else (np.nan, np.nan))
        rows.append({"term": term, "estimate": estimate[j], "ci_low": low, "ci_high": high,
                     "se": values.std(ddof=1) if len(values) > 1 else np.nan,
                     "n_boot": n_boot, "n_valid": len(values), "seed": seed})
    return pd.DataFrame(rows, columns=BOOTSTRAP_COLUMNS)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise AnalysisError(f"bootstrap: the confidence level must lie between 0 and 1, got {level}")


# --- any statistic ------------------------------------------------------------------------

class _Resampler:
    """Builds crossed resamples of one table (codes computed once)."""

    def __init__(self, df: pd.DataFrame, draws: CrossedDraws, rater: str, prompt: str):
        self.df, self.draws, self.rater, self.prompt = df.reset_index(drop=True), draws, rater, prompt
        self.r = _codes(df[rater], draws.raters)
        self.p = _codes(df[prompt], draws.prompts)
        self.panel = (pd.factorize(df["panel"])[0] if "panel" in df.columns and prompt != "panel"
                      else None)

    def __call__(self, b: int) -> pd.DataFrame:
        # a rating without a rater or prompt id (code -1) is never drawn
        a = np.where(self.r >= 0, self.draws.rater_counts[b][self.r], 0)
        c = np.where(self.p >= 0, self.draws.prompt_counts[b][self.p], 0)
        times = a * c
        rows = np.repeat(np.arange(len(times)), times)
        # copy k of a row (0 <= k < a*c) is rater copy k // c and prompt copy k % c
        k = np.arange(len(rows)) - np.repeat(np.cumsum(times) - times, times)
        c_rows = c[rows]
        out = self.df.take(rows).reset_index(drop=True)
        out[self.rater] = self.r[rows] + len(self.draws.raters) * (k // c_rows)
        out[self.prompt] = self.p[rows] + len(self.draws.prompts) * (k % c_rows)
        if self.panel is not None:
            out["panel"] = self.panel[rows] + (self.panel.max() + 1) * (k % c_rows)
        return out


def resample(df: pd.DataFrame, draws: CrossedDraws, b: int, rater: str = "rater",
             prompt: str = "prompt_id") -> pd.DataFrame:
    """Resample ``b`` as a tidy table. Copies of a rater or prompt drawn more than once
    become distinct levels: ids turn into integers (and so do panels, which sit in prompts)."""
    return _Resampler(df, draws, rater, prompt)(b)


def crossed_bootstrap(df: pd.DataFrame, statistic: Callable[[pd.DataFrame], object], n_boot: int = 1000,
                      seed: int = DEFAULT_SEED, level: float = 0.95, rater: str = "rater",
                      prompt: str = "prompt_id") -> pd.DataFrame:
    """Percentile CIs of ``statistic`` (a float, dict or Series of named values computed from a
    tidy table) over ``n_boot`` crossed resamples (see :func:`resample`). A resample where the
    statistic raises AnalysisError or gives NaN is left out of that term's interval (n_valid).

    Columns: BOOTSTRAP_COLUMNS (term, estimate on the data, ci_low, ci_high, se: SD over the
    resamples, n_boot, n_valid, seed)."""
    _check_level(level)
    draws = crossed_draws(df, n_boot, seed, rater, prompt)
    estimate = _as_series(statistic(df))
    boot = np.full((n_boot, len(estimate)), np.nan)
    make = _Resampler(df, draws, rater, prompt)
    for b in range(n_boot):
        try:
            value = _as_series(statistic(make(b)))
        except AnalysisError:
            continue
        boot[b] = value.reindex(estimate.index).to_numpy(dtype=float)
    return _percentile_rows([str(t) for t in estimate.index], estimate.to_numpy(dtype=float), boot,
                            n_boot, seed, level)


def _as_series(value: object) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.astype(float)
    if isinstance(value, dict):
        return pd.Series(value, dtype=float)
    return pd.Series({"statistic": float(value)})


def bootstrap_model(df: pd.DataFrame, formula: str, aspect: str, n_boot: int = 200,
                    seed: int = DEFAULT_SEED, level: float = 0.95) -> pd.DataFrame:
    """Crossed-bootstrap percentile CIs of a model's effects (log cumulative odds ratios),
    refitting ``formula`` (fixed or mixed, see models.fit_model) on every resample."""
    from glidemed.analysis.models import fit_model

    def effects(data: pd.DataFrame) -> pd.Series:
        table = fit_model(data, formula, aspect).table
        table = table[table["kind"] == "effect"]
        return pd.Series(table["estimate"].to_numpy(), index=table["term"])

    data = df[df["aspect"] == aspect] if "aspect" in df.columns else df
    out = crossed_bootstrap(data, effects, n_boot=n_boot, seed=seed, level=level)
    return out.assign(aspect=aspect, kind="effect")[MEDIAN_COLUMNS]


# --- medians, vectorised --------------------------------------------------------------------

def bootstrap_medians(df: pd.DataFrame, by: str = "style", unit: str = "prompt_median",
                      n_boot: int = 2000, seed: int = DEFAULT_SEED, level: float = 0.95) -> pd.DataFrame:
    """Percentile CIs of the median score per level of ``by`` and of the differences between
    levels (later level minus earlier, in order of first appearance), per aspect.

    ``unit`` 'prompt_median': the median over prompts of each prompt's median across raters
    (per prompt and condition, the paper's unit); 'rating': the median of all ratings.
    Usable first ratings with a rater, prompt and ``by`` only (repeats and exclusions left out).
    Columns: MEDIAN_COLUMNS.
    """
    _check_level(level)
    if unit not in ("prompt_median", "rating"):
        raise AnalysisError(f"bootstrap: unit must be 'prompt_median' or 'rating', got {unit!r}")
    missing = [c for c in ("rater", "prompt_id", "aspect", "score", by) if c not in df.columns]
    if missing:
        raise AnalysisError(f"bootstrap: the ratings table lacks column(s) {', '.join(missing)}")
    data = usable_first_ratings(df)
    data = data[data[["rater", "prompt_id", by]].notna().all(axis=1)]
    if data.empty:
        raise AnalysisError(f"bootstrap: no usable ratings with a rater, a prompt and a {by!r}")
    draws = crossed_draws(data, n_boot, seed)
    frames = []
    for aspect in pd.unique(data["aspect"]):
        part = data[data["aspect"] == aspect]
        groups = [str(g) for g in pd.unique(part[by].astype(str))]
        est, boot = (_prompt_median_medians if unit == "prompt_median" else _rating_medians)(
            part, draws, by, groups)
        terms = list(groups)
        kinds = ["median"] * len(groups)
        diffs_est, diffs_boot = [], []
        for i, j in combinations(range(len(groups)), 2):
            terms.append(f"{groups[j]} - {groups[i]}")
            kinds.append("difference")
            diffs_est.append(est[j] - est[i])
            diffs_boot.append(boot[:, j] - boot[:, i])
        if diffs_boot:
            est = np.concatenate([est, diffs_est])
            boot = np.column_stack([boot, *diffs_boot])
        rows = _percentile_rows(terms, est, boot, n_boot, seed, level)
        frames.append(rows.assign(aspect=aspect, kind=kinds)[MEDIAN_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def _weighted_medians(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Medians from counts over sorted ``values`` (last axis); NaN where the count is 0.
    With an even total, the mean of the two middle values (as pandas and R's median)."""
    cum = np.cumsum(counts, axis=-1)
    total = cum[..., -1]
    lo = np.floor((total - 1) / 2)
    hi = np.floor(total / 2)
    i_lo = np.minimum((cum <= lo[..., None]).sum(axis=-1), len(values) - 1)
    i_hi = np.minimum((cum <= hi[..., None]).sum(axis=-1), len(values) - 1)
    out = (values[i_lo] + values[i_hi]) / 2
    return np.where(total > 0, out, np.nan)


def _prompt_median_medians(part: pd.DataFrame, draws: CrossedDraws, by: str, groups: list[str]):
    """Per resample: median across raters per prompt unit, then median per group over units."""
    keys = ["prompt_id"] + (["condition"] if "condition" in part.columns else [])
    unit_codes, units = pd.factorize(pd.MultiIndex.from_frame(part[keys].astype(str)))
    first = pd.DataFrame({"unit": unit_codes, "prompt": part["prompt_id"].to_numpy(),
                          "group": part[by].astype(str).to_numpy()}).drop_duplicates("unit")
    first = first.sort_values("unit")
    unit_prompt = _codes(first["prompt"], draws.prompts)
    unit_group = _codes(first["group"], np.asarray(groups))
    scores = part["score"].to_numpy(dtype=float)
    levels = np.unique(scores)
    s = np.searchsorted(levels, scores)
    n_units, n_levels = len(units), len(levels)
    r = _codes(part["rater"], draws.raters)
    # M[rater, unit * S + level]: ratings by the rater of the unit at the level
    M = sparse.csr_matrix((np.ones(len(part)), (r, unit_codes * n_levels + s)),
                          shape=(len(draws.raters), n_units * n_levels))
    half = np.unique((levels[:, None] + levels[None, :]) / 2)  # the values a unit median can take
    G = len(groups)

    def medians(rater_w: np.ndarray, prompt_w: np.ndarray) -> np.ndarray:
        B = len(rater_w)
        counts = np.asarray((M.T @ rater_w.T).T).reshape(B, n_units, n_levels)
        unit_med = _weighted_medians(counts, levels)  # B x units
        valid = np.isfinite(unit_med)
        v = np.searchsorted(half, np.where(valid, unit_med, half[0]))
        w = prompt_w[:, unit_prompt] * valid
        idx = (np.arange(B)[:, None] * G + unit_group[None, :]) * len(half) + v
        group_counts = np.bincount(idx.ravel(), weights=w.ravel(), minlength=B * G * len(half))
        return _weighted_medians(group_counts.reshape(B, G, len(half)), half)

    return _on_data_and_draws(medians, draws)


def _rating_medians(part: pd.DataFrame, draws: CrossedDraws, by: str, groups: list[str]):
    """Per resample: median of all ratings per group, each weighted by its copies."""
    scores = part["score"].to_numpy(dtype=float)
    levels = np.unique(scores)
    s = np.searchsorted(levels, scores)
    g = _codes(part[by].astype(str), np.asarray(groups))
    r = _codes(part["rater"], draws.raters)
    p = _codes(part["prompt_id"], draws.prompts)
    G, S = len(groups), len(levels)
    onehot = sparse.csr_matrix((np.ones(len(part)), (np.arange(len(part)), g * S + s)),
                               shape=(len(part), G * S))

    def medians(rater_w: np.ndarray, prompt_w: np.ndarray) -> np.ndarray:
        weights = rater_w[:, r] * prompt_w[:, p]  # B x ratings
        counts = np.asarray((onehot.T @ weights.T).T).reshape(len(weights), G, S)
        return _weighted_medians(counts, levels)

    return _on_data_and_draws(medians, draws)


def _on_data_and_draws(medians: Callable[[np.ndarray, np.ndarray], np.ndarray],
                       draws: CrossedDraws) -> tuple[np.ndarray, np.ndarray]:
    """``medians(rater weights, prompt weights)`` (B x raters, B x prompts -> B x groups) on
    the data (every weight 1) and on every resample, in blocks of _CHUNK resamples."""
    estimate = medians(np.ones((1, len(draws.raters))), np.ones((1, len(draws.prompts))))[0]
    boot = np.vstack([medians(draws.rater_counts[i:i + _CHUNK].astype(float),
                              draws.prompt_counts[i:i + _CHUNK].astype(float))
                      for i in range(0, draws.n_boot, _CHUNK)])
    return estimate, boot
