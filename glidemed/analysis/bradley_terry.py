"""Bradley–Terry abilities from paired comparisons (two images, "which is better?").

Model (as R ``BradleyTerry2::BTm`` with a logit link): P(i beats j) = logistic(λ_i − λ_j),
one ability λ per condition on the log-odds scale, the first condition fixed at 0. Ties
carry no information about who is better and are left out (the ordinal paired-comparison
model uses them). The fit is the binomial GLM on the ±1 design that BTm itself fits
(statsmodels GLM, IRLS), on the answers aggregated per ordered pair, so its cost does not
grow with the number of answers. Intervals are Wald intervals, λ ± z·SE.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.sparse import csgraph

from glidemed.errors import AnalysisError

BT_COLUMNS = ["condition", "ability", "se", "ci_low", "ci_high", "n_wins", "n_comparisons"]


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
    positions = pd.Index(conditions)
    w = positions.get_indexer(np.asarray(winners, dtype=object))  # -1: not a condition
    l = positions.get_indexer(np.asarray(losers, dtype=object))
    if (w < 0).any() or (l < 0).any():
        given = pd.unique(np.concatenate([np.asarray(winners, dtype=object)[w < 0],
                                          np.asarray(losers, dtype=object)[l < 0]]))
        names = ", ".join(sorted(map(str, given)))
        raise AnalysisError(f"Bradley-Terry: condition(s) {names} not among "
                            f"{', '.join(conditions)}")
    if (w == l).any():
        raise AnalysisError("Bradley-Terry: a condition compared with itself")
    k = len(conditions)
    wins = np.zeros((k, k))  # wins[i, j]: times i beat j
    np.add.at(wins, (w, l), 1)
    _check_estimable(wins, conditions)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if wins[i, j] + wins[j, i] > 0]
    design = np.zeros((len(pairs), k))
    for row, (i, j) in enumerate(pairs):
        design[row, i], design[row, j] = 1.0, -1.0
    counts = np.array([[wins[i, j], wins[j, i]] for i, j in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(counts, design[:, 1:], family=sm.families.Binomial()).fit()
    ability = np.concatenate([[0.0], fit.params])
    se = np.concatenate([[0.0], fit.bse])
    z = stats.norm.ppf(0.5 + level / 2)
    return pd.DataFrame({
        "condition": conditions, "ability": ability, "se": se,
        "ci_low": ability - z * se, "ci_high": ability + z * se,
        "n_wins": wins.sum(axis=1).astype(int),
        "n_comparisons": (wins.sum(axis=1) + wins.sum(axis=0)).astype(int),
    }, columns=BT_COLUMNS)


def _check_estimable(wins: np.ndarray, conditions: list[str]) -> None:
    """Finite maximum-likelihood abilities exist exactly when the graph "i beat j at least
    once" is strongly connected (Zermelo 1929; Ford 1957). Otherwise say which conditions
    were never compared with the others, or which group won (or lost) all its comparisons."""
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
