"""Simulated pairwise answers: a cumulative-logit paired-comparison model.

A pairwise answer shows one prompt's image from condition ``a`` on the left and from ``b``
on the right; the rater picks one of ``L`` (odd) levels, 0 = "left is (much) better",
``(L-1)/2`` = "both equal", ``L-1`` = "right is (much) better". The model::

    eta = ability[b] - ability[a] + u[rater] + v[prompt] + position_bias
    P(choice <= j) = logistic(theta[j] - eta),   j = 0 .. L-2

so a larger ``eta`` moves the answer to the right; ``position_bias > 0`` favours the right
side whatever is shown there. ``u ~ N(0, rater_sd^2)`` and ``v ~ N(0, prompt_sd^2)`` are
drawn per rater and aspect and per prompt and aspect. This is R ``ordinal::clmm`` on the
``x_right - x_left`` design with ``(1|rater) + (1|prompt)``.

Thresholds (:func:`pairwise_thresholds`): at ``eta = 0`` the middle level has probability
``tie_share`` and each of the other ``L - 1`` levels ``(1 - tie_share) / (L - 1)``, so the
cumulative probabilities at ``eta = 0`` are ``F_j = (j + 1) s`` below the middle and
``F_j = 1 - (L - 1 - j) s`` from the middle on, with ``s = (1 - tie_share) / (L - 1)``, and
``theta_j = logit(F_j)``; they are symmetric, ``theta_j = -theta_{L-2-j}``. For ``L = 3``:
``theta = (-c, c)`` with ``c = log((1 + tie_share) / (1 - tie_share))``.

Since ``F_{m-1} = (1 - tie_share) / 2`` for every ``L`` (``m = (L-1)/2``), condition ``a``
wins (any level on its side) with probability ``logistic(logit((1 - tie_share) / 2) + d)``,
with ``d = ability[a] - ability[b]`` on either side when the side effects
``u + v + position_bias`` are 0 (they are subtracted from ``d`` when ``a`` is on the left and
added when it is on the right).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

ANSWER_COLUMNS = ["rater", "prompt_id", "aspect", "left", "right", "choice", "winner"]


def pairwise_thresholds(n_levels: int, tie_share: float) -> np.ndarray:
    """The ``n_levels - 1`` increasing thresholds: at ``eta = 0`` the middle level has
    probability ``tie_share`` and the others share the rest evenly (see the module doc)."""
    check_levels(n_levels, tie_share)
    side = (1 - tie_share) / (n_levels - 1)
    half = (n_levels - 1) // 2
    below = side * np.arange(1, half + 1)  # F_0 .. F_{m-1}
    cumulative = np.concatenate([below, 1 - below[::-1]])
    return logit(cumulative)


def draw_choices(rng: np.random.Generator, eta: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """One choice index (0 .. len(thresholds)) per ``eta``, by the inverse CDF of
    ``P(choice <= j) = logistic(thresholds[j] - eta)``."""
    eta = np.asarray(eta, dtype=float)
    cumulative = expit(np.asarray(thresholds)[None, :] - eta.reshape(-1, 1))
    u = rng.random((eta.size, 1))
    return (u > cumulative).sum(axis=1).reshape(eta.shape)


def check_levels(n_levels: int, tie_share: float) -> None:
    if isinstance(n_levels, bool) or not isinstance(n_levels, (int, np.integer)) \
            or n_levels < 3 or n_levels % 2 == 0:
        raise ValueError(f"pairwise levels: expected an odd number of levels, 3 or more "
                         f"(the middle one a tie), got {n_levels!r}")
    if not 0 <= tie_share < 1:
        raise ValueError(f"pairwise tie share: expected a number in [0, 1), got {tie_share!r}")


def check_model(conditions: list[str], abilities: dict[str, float], n_levels: int,
                tie_share: float, rater_sd: float = 0.0, prompt_sd: float = 0.0,
                pairs_per_prompt: int = 0) -> None:
    """Raise ValueError (one line) on the first bad input of :func:`simulate_answers`."""
    if len(conditions) < 2 or len(set(conditions)) != len(conditions):
        raise ValueError(f"pairwise conditions: expected two or more distinct conditions, "
                         f"got {list(conditions)}")
    unknown = [name for name in abilities if name not in conditions]
    if unknown:
        raise ValueError(f"pairwise abilities: unknown condition(s) {', '.join(map(str, unknown))} "
                         f"(conditions: {', '.join(conditions)})")
    if not all(np.isfinite(float(v)) for v in abilities.values()):
        raise ValueError(f"pairwise abilities: expected finite numbers, got {abilities}")
    check_levels(n_levels, tie_share)
    if not (rater_sd >= 0 and prompt_sd >= 0):
        raise ValueError(f"pairwise random effects: rater_sd and prompt_sd must be at least 0, "
                         f"got {rater_sd} and {prompt_sd}")
    n_pairs = len(conditions) * (len(conditions) - 1) // 2
    if not 0 <= pairs_per_prompt <= n_pairs:
        raise ValueError(f"pairs per prompt: expected 0 (all) to {n_pairs} for "
                         f"{len(conditions)} conditions, got {pairs_per_prompt}")


def simulate_answers(rng: np.random.Generator, conditions: list[str], abilities: dict[str, float],
                     n_raters: int, n_prompts: int, pairs_per_prompt: int = 0,
                     aspects: tuple[str, ...] | list[str] = ("overall",), n_levels: int = 3,
                     tie_share: float = 0.1, position_bias: float = 0.0, rater_sd: float = 0.3,
                     prompt_sd: float = 0.3) -> pd.DataFrame:
    """Answers of ``n_raters`` raters to ``n_prompts`` prompts, one row per shown pair and
    aspect, with :data:`ANSWER_COLUMNS`; ``winner`` is the better side's condition, or ""
    for the middle level.

    Conditions missing from ``abilities`` have ability 0. Each rater sees, per prompt, every
    unordered pair of conditions (``pairs_per_prompt`` 0) or that many distinct pairs drawn
    at random for that rater and prompt. The sides of each shown pair are drawn at random
    (fair coin) and kept for all its aspects."""
    check_model(conditions, abilities, n_levels, tie_share, rater_sd, prompt_sd, pairs_per_prompt)
    all_pairs = np.array(list(combinations(range(len(conditions)), 2)))
    if n_raters < 1 or n_prompts < 1 or not len(aspects):
        raise ValueError(f"pairwise design: expected at least 1 rater, 1 prompt and 1 aspect, got "
                         f"{n_raters} raters, {n_prompts} prompts, {len(aspects)} aspects")
    shown = pairs_per_prompt or len(all_pairs)
    visits = n_raters * n_prompts
    if shown == len(all_pairs):
        pick = np.tile(np.arange(shown), (visits, 1))
    else:
        pick = np.argsort(rng.random((visits, len(all_pairs))), axis=1)[:, :shown]
    pairs = all_pairs[pick.ravel()]  # (screens, 2), screen = (rater, prompt, k)
    swap = rng.random(len(pairs)) < 0.5
    left = np.where(swap, pairs[:, 1], pairs[:, 0])
    right = np.where(swap, pairs[:, 0], pairs[:, 1])
    rater = np.repeat(np.arange(n_raters), n_prompts * shown)
    prompt = np.tile(np.repeat(np.arange(n_prompts), shown), n_raters)

    n_aspects = len(aspects)
    ability = np.array([float(abilities.get(c, 0.0)) for c in conditions])
    rater_effect = rng.normal(0.0, rater_sd, (n_raters, n_aspects))
    prompt_effect = rng.normal(0.0, prompt_sd, (n_prompts, n_aspects))
    eta = ((ability[right] - ability[left])[:, None] + rater_effect[rater] + prompt_effect[prompt]
           + position_bias)  # (screens, aspects)
    choice = draw_choices(rng, eta, pairwise_thresholds(n_levels, tie_share)).ravel()

    names = np.asarray(conditions, dtype=object)
    left_name, right_name = np.repeat(names[left], n_aspects), np.repeat(names[right], n_aspects)
    middle = (n_levels - 1) // 2
    winner = np.where(choice < middle, left_name, np.where(choice > middle, right_name, ""))
    rater_width, prompt_width = max(2, len(str(n_raters))), max(3, len(str(n_prompts)))
    return pd.DataFrame({
        "rater": np.repeat(np.array([f"sim-{r + 1:0{rater_width}d}" for r in range(n_raters)],
                                    dtype=object)[rater], n_aspects),
        "prompt_id": np.repeat(np.array([f"p{p + 1:0{prompt_width}d}" for p in range(n_prompts)],
                                        dtype=object)[prompt], n_aspects),
        "aspect": np.tile(np.asarray(aspects, dtype=object), len(pairs)),
        "left": left_name, "right": right_name, "choice": choice, "winner": winner,
    }, columns=ANSWER_COLUMNS)
