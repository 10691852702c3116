"""Cumulative link (proportional odds) models with fixed effects: statsmodels OrderedModel.

Model (as R ``ordinal::clm``, logit link): P(score <= k) = logistic(theta_k - x'beta), so a
positive coefficient (odds ratio > 1) means higher scores than at the reference level.
Every term is categorical, coded against its first level (the first category of a
categorical column, else the level seen first, which is study order for tables built
from a study). Random terms such as ``(1|rater)`` belong to the mixed model
(glidemed.analysis.mixed.fit_clmm).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from statsmodels.miscmodels.ordinal_model import OrderedModel

from glidemed.analysis.design import treatment_design
from glidemed.analysis.formula import DEFAULT_FORMULA, parse_formula
from glidemed.analysis.results import TABLE_COLUMNS, ModelResult, wald_row
from glidemed.analysis.tidy import usable_first_ratings
from glidemed.errors import AnalysisError


class QuasiSeparationWarning(UserWarning):
    """A level of a term has all its scores in one score level: its estimate is unreliable."""


def fit_ordinal(df: pd.DataFrame, formula: str = DEFAULT_FORMULA, aspect: str = "style",
                maxiter: int = 2000) -> ModelResult:
    """Fit ``formula`` (e.g. 'score ~ style + detail + condition') to the usable first ratings
    of ``aspect``. Terms with a single level are dropped with a note; score levels nobody used
    are removed; non-convergence is noted, quasi-separation noted and warned
    (QuasiSeparationWarning)."""
    started = time.perf_counter()
    parsed = parse_formula(formula, list(df.columns))
    if parsed.is_mixed:
        raise AnalysisError(f"--model {formula!r}: random terms need the mixed model "
                            "(glidemed.analysis.mixed.fit_clmm); fit_ordinal fits fixed effects only")
    data = usable_first_ratings(df)
    data = data[data["aspect"] == aspect]
    if data.empty:
        raise AnalysisError(f"aspect {aspect!r}: no usable ratings to model")
    notes: list[str] = []
    factors = list(dict.fromkeys(n for term in parsed.fixed for n in term.split(":")))
    missing = data[factors].isna().any(axis=1)
    if missing.any():
        notes.append(f"{int(missing.sum())} rating(s) without a value of "
                     f"{', '.join(factors)} left out")
        data = data[~missing]
    try:
        y = data[parsed.response].astype(float)
    except (TypeError, ValueError):
        raise AnalysisError(f"--model {formula!r}: response {parsed.response!r} is not numeric") from None
    used = sorted(int(v) for v in y.unique())
    if len(used) < 2:
        raise AnalysisError(f"aspect {aspect!r}: all {len(y)} scores are {used[0]}; "
                            "an ordinal model needs at least two score levels")

    terms, levels, dummies = treatment_design(data, parsed.fixed, notes)
    fitted = f"{parsed.response} ~ {' + '.join(terms) if terms else '1'}"
    if not terms:
        raise AnalysisError(f"--model {formula!r}: no term has two levels; nothing to estimate")
    notes.extend(_separation_notes(data, y, terms, levels))

    # Every term is categorical, so ratings share few (design row, score) patterns: fit
    # those with frequency weights (the same likelihood, far faster on large studies).
    exog, scores, counts = _collapse(dummies, y.astype(int))
    if np.linalg.matrix_rank(exog.to_numpy(float)) < exog.shape[1]:
        raise AnalysisError(f"--model {fitted!r}: terms are confounded (a column of the design "
                            "is a combination of others, e.g. style and style_group together)")
    endog = pd.Series(pd.Categorical(scores, categories=used, ordered=True), index=exog.index)
    model = _WeightedOrderedModel(endog, exog, counts, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and overflow are checked below
        # gtol on the mean log-likelihood's gradient; 1e-8 matches R clm to ~1e-6
        res = model.fit(method="bfgs", maxiter=maxiter, gtol=1e-8, disp=False)
        converged = bool(res.mle_retvals.get("converged", False))
        if not converged:  # BFGS often stops on precision loss near the optimum: polish
            res, converged = _polish(model, res)
    if not converged:
        notes.append("optimizer (BFGS, then Newton) did not converge; estimates are not reliable")
    with np.errstate(over="ignore", invalid="ignore"):  # separated fits: infinite ORs
        table = _table(res, model, exog.columns, used)
    if not np.all(np.isfinite(table["se"].to_numpy(float))):
        notes.append("some standard errors are not finite (singular information matrix)")
    for note in notes:
        if "separation" in note:
            warnings.warn(f"aspect {aspect!r}: {note}", QuasiSeparationWarning, stacklevel=2)
    return ModelResult(model="fixed", formula=fitted, aspect=aspect, n=len(data),
                       loglik=float(res.llf), converged=converged, table=table, notes=notes,
                       seconds=time.perf_counter() - started)


class _WeightedOrderedModel(OrderedModel):
    """OrderedModel whose rows carry frequency weights (identical ratings collapsed).

    OrderedModel derives its score and Hessian numerically from ``loglike``, so weighting
    ``loglike`` gives the full-data estimates, standard errors and log-likelihood."""

    def __init__(self, endog, exog, freq, **kwds):
        super().__init__(endog, exog, **kwds)
        self.freq = np.asarray(freq, dtype=float)

    def loglike(self, params):
        return float(np.dot(self.freq, self.loglikeobs(params)))


def _collapse(exog: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Unique (design row, score) patterns and how often each occurs."""
    table = exog.assign(_score=y.to_numpy())
    counts = table.groupby(list(table.columns), sort=True).size().reset_index(name="_n")
    return (counts[exog.columns].reset_index(drop=True), counts["_score"].to_numpy(int),
            counts["_n"].to_numpy(float))


def _polish(model: OrderedModel, res):
    """Newton steps from the BFGS estimate; keep BFGS's result if Newton fails."""
    try:
        polished = model.fit(start_params=res.params, method="newton", maxiter=50, disp=False)
        if polished.mle_retvals.get("converged", False) and np.all(np.isfinite(polished.bse)):
            return polished, True
    except (ValueError, np.linalg.LinAlgError):
        pass
    return res, False


def _separation_notes(data: pd.DataFrame, y: pd.Series, terms: list[str],
                      levels: dict[str, list[str]]) -> list[str]:
    """From each term's level x score table: levels whose scores all sit in one score level,
    and levels whose scores all lie at or above (or at or below) every other level's, which
    makes a cut-point separate them and the estimate run off to infinity."""
    notes = []
    for term in (t for t in terms if ":" not in t):  # interactions: their factors' levels
        table = pd.crosstab(data[term].astype(str), y.astype(int))
        for level in levels[term]:
            row = table.loc[level]
            occupied = [int(k) for k in row[row > 0].index]
            rest = table.drop(index=level).sum()
            others = [int(k) for k in rest[rest > 0].index]
            where = f"{term}={level}"
            if len(occupied) == 1:
                notes.append(f"quasi-separation: all {int(row.sum())} scores of {where} "
                             f"are {occupied[0]}")
            elif min(occupied) >= max(others) or max(occupied) <= min(others):
                side = "at or above" if min(occupied) >= max(others) else "at or below"
                notes.append(f"quasi-separation: every score of {where} is {side} every "
                             f"score of the other levels of {term}")
    return notes


def _table(res, model: OrderedModel, effects: pd.Index, used: list[int]) -> pd.DataFrame:
    """Effects then cut-points (theta_k, R's parameterization, delta-method SEs)."""
    params = np.asarray(res.params, float)
    try:
        cov = np.asarray(res.cov_params(), float)
    except (ValueError, np.linalg.LinAlgError):  # singular information matrix
        cov = np.full((len(params), len(params)), np.nan)
    k = len(effects)
    rows = [wald_row(name, "effect", params[i], np.sqrt(cov[i, i])) for i, name in enumerate(effects)]
    raw = params[k:]
    cuts = np.asarray(model.transform_threshold_params(params), float)[1:-1]
    # theta_j = raw_0 + sum_{i=1..j} exp(raw_i): Jacobian of the thresholds on the raw params
    jac = np.zeros((len(raw), len(raw)))
    for j in range(len(raw)):
        jac[j, 0] = 1.0
        jac[j, 1:j + 1] = np.exp(raw[1:j + 1])
    cut_cov = jac @ cov[k:, k:] @ jac.T
    for j, cut in enumerate(cuts):
        rows.append(wald_row(f"{used[j]}|{used[j + 1]}", "cutpoint", cut, np.sqrt(cut_cov[j, j])))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
