"""Bradley–Terry abilities from paired comparisons (two images, "which is better?").

Model (as R ``BradleyTerry2::BTm`` with a logit link): P(i beats j) = logistic(λ_i − λ_j),
one ability λ per condition on the log-odds scale, the first condition fixed at 0. Ties
carry no information about who is better and are left out (the ordinal paired-comparison
model of :mod:`glidemed.analysis.paired` uses them). The answers are aggregated into the
k × k win matrix of the k conditions and the likelihood is maximised on it by Newton–Raphson
with the exact Fisher information, so the cost after counting does not grow with the number
of answers. SEs come from the inverse information; intervals are Wald intervals, λ ± z·SE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csgraph
from scipy.special import expit, ndtri

from glidemed.errors import AnalysisError

BT_COLUMNS = ["condition", "ability", "se", "ci_low", "ci_high", "n_wins", "n_comparisons"]
_MAX_NEWTON = 100


def bradley_terry(winners: pd.Series, losers: pd.Series, conditions: list[str],
                  level: float = 0.95) -> pd.DataFrame:
    """Abilities of ``conditions`` (the first is the reference, fixed at 0) from decisive
    answers, one per row: ``winners[i]`` beat ``losers[i]``. Returns :data:`BT_COLUMNS`.

    Raises :class:`AnalysisError` when a condition is not in ``conditions``, when the
    comparisons do not connect every condition, or when a condition won or lost every
    comparison (its maximum-likelihood ability is infinite)."""
    if len(conditions) < 2 or len(set(conditions)) != len(conditions):
        raise AnalysisError(f"Bradley-Terry: expected two or more distinct conditions, "
                            f"got {conditions}")
    w, l = condition_codes(winners, conditions), condition_codes(losers, conditions)
    if (w < 0).any() or (l < 0).any():
        given = pd.unique(np.concatenate([np.asarray(winners, dtype=object)[w < 0],
                                          np.asarray(losers, dtype=object)[l < 0]]))
        names = ", ".join(sorted(map(str, given)))
        raise AnalysisError(f"Bradley-Terry: condition(s) {names} not among "
                            f"{', '.join(conditions)}")
    if (w == l).any():
        raise AnalysisError("Bradley-Terry: a condition compared with itself")
    k = len(conditions)
    wins = np.bincount(w * k + l, minlength=k * k).reshape(k, k).astype(float)
    return bradley_terry_counts(wins, conditions, level)


def bradley_terry_counts(wins: np.ndarray, conditions: list[str], level: float = 0.95) -> pd.DataFrame:
    """:func:`bradley_terry` from the win matrix: ``wins[i, j]`` answers where condition i
    beat condition j."""
    _check_estimable(wins, conditions)
    ability, cov = _fit(wins)
    se = np.sqrt(np.concatenate([[0.0], np.diag(cov)]))
    z = ndtri(0.5 + level / 2)
    return pd.DataFrame({
        "condition": conditions, "ability": ability, "se": se,
        "ci_low": ability - z * se, "ci_high": ability + z * se,
        "n_wins": wins.sum(axis=1).astype(int),
        "n_comparisons": (wins.sum(axis=1) + wins.sum(axis=0)).astype(int),
    })  # in the order of BT_COLUMNS


def condition_codes(values: pd.Series | np.ndarray, conditions: list[str]) -> np.ndarray:
    """Position of each value in ``conditions``, -1 where it is none of them."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    position = {name: i for i, name in enumerate(conditions)}
    lookup = np.array([position.get(u, -1) for u in uniques] + [-1])  # code -1 (missing): -1
    return lookup[codes]


def _fit(wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood abilities (the first fixed at 0) and the inverse Fisher information
    of the others, by Newton-Raphson; the log-likelihood is concave, and a step is halved
    until it rises."""
    n = wins + wins.T  # comparisons per pair

    def loglik(lam: np.ndarray) -> float:  # sum of wins[i, j] * log P(i beats j)
        return -float(np.sum(wins * np.logaddexp(0.0, lam[None, :] - lam[:, None])))

    def score_and_information(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = expit(lam[:, None] - lam[None, :])  # P(i beats j)
        weight = n * p * p.T
        return (wins - n * p).sum(axis=1)[1:], (np.diag(weight.sum(axis=1)) - weight)[1:, 1:]

    lam = np.zeros(len(wins))
    value = loglik(lam)
    for _ in range(_MAX_NEWTON):
        grad, info = score_and_information(lam)
        step = np.concatenate([[0.0], np.linalg.solve(info, grad)])
        trial = loglik(lam + step)
        while trial < value - 1e-12 * abs(value) and np.max(np.abs(step)) > 1e-12:
            step /= 2
            trial = loglik(lam + step)
        lam, value = lam + step, trial
        if np.max(np.abs(step)) < 1e-7:  # quadratic convergence: the error is now ~1e-14
            break
    else:
        raise AnalysisError("Bradley-Terry: the Newton iterations did not converge")
    return lam, np.linalg.inv(score_and_information(lam)[1])


def _check_estimable(wins: np.ndarray, conditions: list[str]) -> None:
    """Finite maximum-likelihood abilities exist exactly when the graph "i beat j at least
    once" is strongly connected (Zermelo 1929; Ford 1957). Otherwise say which conditions
    were never compared with the others, or which group won (or lost) all its comparisons."""
    reach = (wins > 0) | np.eye(len(wins), dtype=bool)  # i reaches j by wins
    for _ in range(int(np.ceil(np.log2(len(wins))))):
        reach = (reach.astype(int) @ reach.astype(int)) > 0
    if reach.all():  # strongly connected: the common case, without the graph library
        return
    weak = csgraph.connected_components(wins + wins.T, directed=False)[1]
    if len(set(weak)) > 1:
        apart = [c for c, g in zip(conditions, weak) if g != weak[0]]
        raise AnalysisError(f"Bradley-Terry: {', '.join(apart)} never compared, directly or "
                            f"through others, with {conditions[0]}: abilities not estimable")
    n_groups, strong = csgraph.connected_components(wins, directed=True, connection="strong")
    if n_groups > 1:
        for g in range(n_groups):
            inside = strong == g
            beaten_by_outside = wins[np.ix_(~inside, inside)].sum()
            beat_outside = wins[np.ix_(inside, ~inside)].sum()
            if beaten_by_outside == 0 or beat_outside == 0:
                names = ", ".join(c for c, i in zip(conditions, inside) if i)
                what = "won" if beaten_by_outside == 0 else "lost"
                raise AnalysisError(f"Bradley-Terry: {names} {what} every comparison with the "
                                    "other conditions: abilities are not finite (collect more "
                                    "answers, or leave out the condition)")
