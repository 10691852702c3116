"""Paired comparisons of conditions: the answers of the pairwise survey task.

An answer: a rater saw two images of one prompt, from conditions ``left`` and ``right``, and
chose, per aspect, one of an odd number L of levels, 0 ("left is better") .. L-1 ("right is
better"); the middle level is a tie. Tables hold the columns ``rater, prompt_id, aspect,
left, right, choice`` (``style`` for style groups; ``winner`` is not read: the choice and
the sides define it). The first of ``conditions`` is the reference.

- :func:`paired_model`: ordinal paired-comparison mixed model on every answer (ties
  included), R ``ordinal::clmm(choice ~ x_b + x_c + (1|rater) + (1|prompt_id))`` with
  x_c = [right is c] - [left is c]: P(choice <= j) = F(theta_j - eta - u_rater - v_prompt),
  eta = ability(right) - ability(left). Fitted by :func:`glidemed.analysis.mixed.fit_clmm`.
  On this scale the rater and prompt intercepts are each rater's and prompt's own leaning
  towards one side, around the common position bias.
  Without a side preference the thresholds are symmetric (theta_j = -theta_{L-2-j}); the
  position bias -mean(theta) is the log-odds shift towards the right side.
- :func:`paired_bradley_terry`: Bradley-Terry abilities from the decisive answers.
- :func:`win_rates`: the share of answers each condition won against each other (ties
  count half), with crossed rater x prompt bootstrap percentile CIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from glidemed.analysis.bootstrap import (DEFAULT_SEED, CrossedDraws, _on_data_and_draws, _percentile_rows,
                                         crossed_draws)
from glidemed.analysis.bradley_terry import bradley_terry_counts, condition_codes
from glidemed.analysis.mixed import MixedResult, fit_clmm
from glidemed.analysis.results import wald_row
from glidemed.analysis.tidy import usable_first_ratings
from glidemed.errors import AnalysisError

ANSWER_COLUMNS = ["rater", "prompt_id", "aspect", "left", "right", "choice"]
# PairedModel.table. kind: 'ability' (term: condition; log-odds vs the reference, which is 0
# with SE 0), 'position_bias' (term 'right': log-odds shift towards the right side),
# 'cutpoint' (theta_j, term 'j|j+1') or 'random_sd' (term 'sd(rater)', 'sd(prompt_id)').
PAIRED_COLUMNS = ["kind", "term", "estimate", "se", "ci_low", "ci_high", "p"]
# win_rates: share of the n answers showing both where condition beat opponent, ties half.
WIN_RATE_COLUMNS = ["aspect", "group", "condition", "opponent", "win_rate", "ci_low", "ci_high", "n"]
ALL = "all"  # the group of every answer


@dataclass
class PairedModel:
    aspect: str
    table: pd.DataFrame  # PAIRED_COLUMNS
    fit: MixedResult  # the clmm as fitted (covariates x1, x2, ... for conditions 2, 3, ...)

    @property
    def notes(self) -> list[str]:
        return self.fit.notes


@dataclass
class _Coded:
    data: pd.DataFrame  # the answers used
    left: np.ndarray  # position in conditions
    right: np.ndarray
    choice: np.ndarray  # 0..L-1


def paired_model(answers: pd.DataFrame, conditions: list[str], aspect: str | None,
                 n_levels: int = 3) -> PairedModel:
    """Fit the ordinal paired-comparison mixed model (module docstring) to the answers of
    ``aspect`` (None: every row). Returns a :class:`PairedModel` whose table
    (PAIRED_COLUMNS) holds each condition's ability, the position bias (Wald CI, SE by the
    delta method from the thresholds' covariance), the thresholds and the random-effect SDs.
    Raises AnalysisError on bad input or when the fit fails (see ``fit_clmm``)."""
    coded = _coded(answers, conditions, n_levels, aspect)
    label = f"paired model for {'aspect ' + repr(aspect) if aspect is not None else 'the answers'}"
    x = {f"x{c}": (coded.right == c).astype(float) - (coded.left == c).astype(float)
         for c in range(1, len(conditions))}
    design = pd.DataFrame({"choice": coded.choice, "rater": coded.data["rater"].to_numpy(),
                           "prompt_id": coded.data["prompt_id"].to_numpy(), **x})
    fit = fit_clmm(design, f"choice ~ {' + '.join(x)} + (1|rater) + (1|prompt_id)", None)
    fit.aspect = aspect or ""
    table = fit.table.set_index("term")
    lost = [conditions[int(t[1:])] for t in x if t not in table.index]
    if lost:
        raise AnalysisError(f"{label}: the ability of {', '.join(lost)} cannot be told apart "
                            "from the position bias or the other abilities (show every "
                            "condition on both sides)")
    rows = [wald_row(conditions[0], "ability", 0.0, 0.0)]
    rows += [wald_row(conditions[int(t[1:])], "ability", table.loc[t, "estimate"], table.loc[t, "se"])
             for t in x]
    cuts = table.index[table["kind"] == "cutpoint"]
    if len(cuts) == n_levels - 1:
        weights = np.full(len(cuts), -1 / len(cuts))  # bias = -mean(theta)
        cov = fit.covariance.loc[cuts, cuts].to_numpy()
        rows.append(wald_row("right", "position_bias", float(weights @ table.loc[cuts, "estimate"]),
                             float(np.sqrt(weights @ cov @ weights))))
    else:
        fit.notes.append(f"{label}: some of the {n_levels} levels were never chosen; the "
                         "position bias (asymmetry of the thresholds) is not estimated")
        rows.append({"term": "right", "kind": "position_bias"})
    rest = fit.table[fit.table["kind"].isin(["cutpoint", "random_sd"])]
    out = pd.concat([pd.DataFrame(rows), rest], ignore_index=True)[PAIRED_COLUMNS]
    return PairedModel(aspect or "", out.astype({c: float for c in PAIRED_COLUMNS[2:]}), fit)


def paired_bradley_terry(answers: pd.DataFrame, conditions: list[str], aspect: str | None,
                         n_levels: int = 3, level: float = 0.95) -> pd.DataFrame:
    """Bradley-Terry abilities (see :mod:`glidemed.analysis.bradley_terry`, columns
    BT_COLUMNS) from the decisive answers of ``aspect`` (None: every row); ties left out."""
    coded = _coded(answers, conditions, n_levels, aspect)
    k, middle = len(conditions), n_levels // 2
    won_lost = np.where(coded.choice < middle, coded.left * k + coded.right,
                        coded.right * k + coded.left)[coded.choice != middle]
    wins = np.bincount(won_lost, minlength=k * k).reshape(k, k).astype(float)
    return bradley_terry_counts(wins, conditions, level)


def win_rates(answers: pd.DataFrame, conditions: list[str], n_levels: int = 3,
              groups: Mapping[str, str] | str | None = None, n_boot: int = 2000,
              seed: int = DEFAULT_SEED, level: float = 0.95) -> pd.DataFrame:
    """Win rate of every condition against every other, per aspect and style group: the
    share of the answers showing both where it won, ties counting half. CIs: percentiles
    over ``n_boot`` crossed resamples of raters and prompts (the same for every aspect).

    ``groups``: None (group 'all' only), the name of a column holding each answer's group
    (e.g. 'style_group'), or a mapping style -> group (e.g. every radiology style to
    'radiology'; an unmapped style forms its own group); group 'all' is always reported.
    Returns WIN_RATE_COLUMNS; pairs never shown together have n 0 and NaN rates."""
    coded = _coded(answers, conditions, n_levels, None)
    unidentified = coded.data[["rater", "prompt_id"]].isna().any(axis=1)
    if unidentified.any():
        raise AnalysisError(f"win rates: {int(unidentified.sum())} answer(s) without a rater or "
                            "prompt_id")
    group = _groups(coded.data, groups)
    aspects = [str(a) for a in pd.unique(coded.data["aspect"])]
    group_names = [ALL] + ([str(g) for g in pd.unique(group)] if group is not None else [])
    k = len(conditions)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    pair_of = np.zeros((k, k), np.int64)
    for p, (i, j) in enumerate(pairs):
        pair_of[i, j] = pair_of[j, i] = p
    pair = pair_of[coded.left, coded.right]
    first = np.minimum(coded.left, coded.right)  # the earlier condition of the pair
    middle = n_levels // 2
    first_won = np.where(coded.choice == middle, 0.5,
                         ((coded.choice < middle) == (coded.left == first)).astype(float))
    aspect_code = pd.Categorical(coded.data["aspect"].astype(str), categories=aspects).codes
    memberships = [np.zeros(len(pair), np.int64)]
    if group is not None:
        memberships.append(1 + pd.Categorical(group, categories=group_names[1:]).codes)
    n_cells = len(aspects) * len(group_names) * len(pairs)
    cells = np.concatenate([(aspect_code * len(group_names) + g) * len(pairs) + pair
                            for g in memberships])
    answer = np.tile(np.arange(len(pair)), len(memberships))  # the answer of each cell entry
    draws = crossed_draws(coded.data, n_boot, seed)
    estimate, boot = _crossed_shares(coded.data["rater"].to_numpy()[answer],
                                     coded.data["prompt_id"].to_numpy()[answer], cells, n_cells,
                                     first_won[answer], draws)
    n = np.bincount(cells, minlength=n_cells)
    # each pair's earlier condition won share rate, the later 1 - rate
    terms = [str(t) for t in range(2 * n_cells)]
    ci = _percentile_rows(terms, np.concatenate([estimate, 1 - estimate]),
                          np.hstack([boot, 1 - boot]), n_boot, seed, level)
    out = []
    for a, aspect in enumerate(aspects):
        for g, name in enumerate(group_names):
            for c, o in ((c, o) for c in range(k) for o in range(k) if c != o):
                cell = (a * len(group_names) + g) * len(pairs) + pair_of[c, o]
                row = ci.iloc[cell if c < o else n_cells + cell]  # rows of the earlier, then the later
                out.append((aspect, name, conditions[c], conditions[o], row["estimate"],
                            row["ci_low"], row["ci_high"], n[cell]))
    return pd.DataFrame(out, columns=WIN_RATE_COLUMNS)


def _crossed_shares(rater: np.ndarray, prompt: np.ndarray, cells: np.ndarray, n_cells: int,
                    score: np.ndarray, draws: CrossedDraws) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``score`` of the entries of each cell (rater, prompt and cell of each entry), on
    the data and on every crossed resample (NaN where a cell is empty), from the sums per
    rater x (cell, prompt)."""
    raters = pd.Categorical(rater, categories=draws.raters).codes
    prompts = pd.Categorical(prompt, categories=draws.prompts).codes
    n_prompts = len(draws.prompts)
    where = (raters, cells * n_prompts + prompts)
    shape = (len(draws.raters), n_cells * n_prompts)
    scored = sparse.csr_matrix((score, where), shape=shape)
    counted = sparse.csr_matrix((np.ones(len(score)), where), shape=shape)

    def means(rater_w: np.ndarray, prompt_w: np.ndarray) -> np.ndarray:
        def totals(m: sparse.csr_matrix) -> np.ndarray:
            per_prompt = np.asarray((m.T @ rater_w.T).T).reshape(len(rater_w), n_cells, n_prompts)
            return np.einsum("bcp,bp->bc", per_prompt, prompt_w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return totals(scored) / totals(counted)

    return _on_data_and_draws(means, draws)


def _groups(data: pd.DataFrame, groups: Mapping[str, str] | str | None) -> np.ndarray | None:
    if groups is None:
        return None
    if isinstance(groups, str):
        if groups not in data.columns:
            raise AnalysisError(f"win rates: the answers have no column {groups!r} for the groups")
        values = data[groups]
    else:
        if "style" not in data.columns:
            raise AnalysisError("win rates: a style -> group mapping needs a 'style' column")
        values = data["style"].map(lambda s: groups.get(s, s))
    if values.isna().any():
        raise AnalysisError(f"win rates: {int(values.isna().sum())} answer(s) without a group")
    if (values == ALL).any():
        raise AnalysisError(f"win rates: a group may not be named {ALL!r} (the group of every answer)")
    return values.astype(str).to_numpy()


def _coded(answers: pd.DataFrame, conditions: list[str], n_levels: int,
           aspect: str | None) -> _Coded:
    """The usable answers of ``aspect`` (None: all) with conditions as positions, checked."""
    if len(conditions) < 2 or len(set(conditions)) != len(conditions):
        raise AnalysisError(f"paired comparisons: expected two or more distinct conditions, "
                            f"got {list(conditions)}")
    if n_levels < 3 or n_levels % 2 == 0:
        raise AnalysisError(f"paired comparisons: the answer scale needs an odd number of levels "
                            f"(3 or more, the middle one a tie), got {n_levels}")
    missing = [c for c in ANSWER_COLUMNS if c not in answers.columns]
    if missing:
        raise AnalysisError(f"paired comparisons: the answers lack column(s) {', '.join(missing)}")
    data = answers if aspect is None else answers[answers["aspect"] == aspect]
    data = usable_first_ratings(data, "choice")
    if data.empty:
        where = f" of aspect {aspect!r}" if aspect is not None else ""
        raise AnalysisError(f"paired comparisons: no answers{where}")
    try:
        choice = data["choice"].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise AnalysisError("paired comparisons: choice is not numeric") from None
    bad = (choice != np.round(choice)) | (choice < 0) | (choice > n_levels - 1)
    if bad.any():
        raise AnalysisError(f"paired comparisons: {int(bad.sum())} choice(s) not a whole number in "
                            f"0..{n_levels - 1} (first: {choice[bad][0]:g})")
    left, right = condition_codes(data["left"], conditions), condition_codes(data["right"], conditions)
    if (left < 0).any() or (right < 0).any():
        unknown = np.concatenate([data["left"].to_numpy(dtype=object)[left < 0],
                                  data["right"].to_numpy(dtype=object)[right < 0]])
        names = ", ".join(sorted(map(str, pd.unique(unknown))))
        raise AnalysisError(f"paired comparisons: condition(s) {names} in the answers not among "
                            f"{', '.join(conditions)}")
    if (left == right).any():
        raise AnalysisError(f"paired comparisons: {int((left == right).sum())} answer(s) compare "
                            "a condition with itself")
    return _Coded(data, left, right, choice.astype(np.int64))
