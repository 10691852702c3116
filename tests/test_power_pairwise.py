"""glidemed.simulate.pairwise (the paired-comparison answer model) and glidemed.power_pairwise,
each against a closed form or a binomial band computed here, with fixed seeds."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, logit

from glidemed.errors import AnalysisError
from glidemed.power_pairwise import POWER_COLUMNS, pairwise_power, write_pairwise_power
from glidemed.simulate.pairwise import (
    ANSWER_COLUMNS,
    draw_choices,
    pairwise_thresholds,
    simulate_answers,
)

CONDITIONS = ["a", "b", "c", "d"]
NO_RANDOM_EFFECTS = dict(rater_sd=0.0, prompt_sd=0.0)


def band(n: int, p: float, level: float = 0.999) -> tuple[float, float]:
    """Central binomial interval of a share of ``n`` trials with probability ``p``."""
    low, high = stats.binom.interval(level, n, p)
    return low / n, high / n


def level_probabilities(eta: float, n_levels: int, tie_share: float) -> np.ndarray:
    """P(choice = j) from the construction written out: cumulative shares at eta 0 of
    s, 2s, ..., then 1 - ..., 1 - s with s = (1 - tie) / (L - 1), shifted by eta on the logit scale."""
    s = (1 - tie_share) / (n_levels - 1)
    half = (n_levels - 1) // 2
    at_zero = [s * (j + 1) for j in range(half)] + [1 - s * (half - j) for j in range(half)]
    cumulative = expit(logit(np.array(at_zero)) - eta)
    return np.diff(np.concatenate([[0.0], cumulative, [1.0]]))


# --------------------------------------------------------------------------- thresholds

@pytest.mark.parametrize("tie_share", [0.0, 0.1, 0.5])
def test_three_level_thresholds_are_the_closed_form(tie_share):
    c = np.log((1 + tie_share) / (1 - tie_share))
    np.testing.assert_allclose(pairwise_thresholds(3, tie_share), [-c, c], atol=1e-12)


@pytest.mark.parametrize("n_levels, tie_share", [(3, 0.1), (5, 0.2), (7, 0.35), (5, 0.0)])
def test_thresholds_give_the_tie_share_and_even_sides_at_zero(n_levels, tie_share):
    theta = pairwise_thresholds(n_levels, tie_share)
    probabilities = np.diff(np.concatenate([[0.0], expit(theta), [1.0]]))
    middle = (n_levels - 1) // 2
    assert len(theta) == n_levels - 1 and np.all(np.diff(theta) >= 0)
    assert probabilities[middle] == pytest.approx(tie_share, abs=1e-12)
    others = np.delete(probabilities, middle)
    np.testing.assert_allclose(others, (1 - tie_share) / (n_levels - 1), atol=1e-12)
    np.testing.assert_allclose(theta, -theta[::-1], atol=1e-12)


# --------------------------------------------------------------------------- draws

def test_draw_choices_frequencies_match_the_model():
    rng = np.random.default_rng(20240601)
    n, n_levels, tie_share = 40_000, 5, 0.2
    theta = pairwise_thresholds(n_levels, tie_share)
    for eta in (-1.0, 0.0, 0.7):
        choices = draw_choices(rng, np.full(n, eta), theta)
        observed = np.bincount(choices, minlength=n_levels)
        expected = n * level_probabilities(eta, n_levels, tie_share)
        assert observed.sum() == n and choices.min() >= 0 and choices.max() < n_levels
        assert stats.chisquare(observed, expected).pvalue > 1e-3, (eta, observed, expected)


def test_draw_choices_keeps_the_shape_of_eta():
    choices = draw_choices(np.random.default_rng(1), np.zeros((4, 3)), pairwise_thresholds(3, 0.1))
    assert choices.shape == (4, 3) and choices.dtype.kind == "i"


# --------------------------------------------------------------------------- answers

def test_every_pair_once_per_rater_prompt_and_aspect():
    answers = simulate_answers(np.random.default_rng(3), CONDITIONS, {"b": 0.4}, 5, 7,
                               aspects=["realism", "content"])
    assert list(answers.columns) == ANSWER_COLUMNS
    assert len(answers) == 5 * 7 * 6 * 2
    assert answers["rater"].nunique() == 5 and answers["prompt_id"].nunique() == 7
    pairs = answers.apply(lambda r: frozenset((r["left"], r["right"])), axis=1)
    expected = {frozenset(p) for p in combinations(CONDITIONS, 2)}
    for _, group in pairs.groupby([answers["rater"], answers["prompt_id"], answers["aspect"]]):
        assert sorted(map(sorted, group)) == sorted(map(sorted, expected))
    # one screen per pair: its sides are the same for every aspect
    sides = answers.groupby(["rater", "prompt_id", pairs.map(lambda p: "".join(sorted(p)))])["left"]
    assert sides.nunique().max() == 1


def test_winner_follows_the_choice():
    answers = simulate_answers(np.random.default_rng(4), CONDITIONS, {"a": 1.0}, 4, 10, n_levels=5,
                               tie_share=0.3)
    assert set(answers["choice"]) == set(range(5))
    left, right, tie = answers["choice"] < 2, answers["choice"] > 2, answers["choice"] == 2
    assert (answers.loc[left, "winner"] == answers.loc[left, "left"]).all()
    assert (answers.loc[right, "winner"] == answers.loc[right, "right"]).all()
    assert (answers.loc[tie, "winner"] == "").all()


def test_some_pairs_per_prompt_are_distinct_and_drawn_per_rater_and_prompt():
    answers = simulate_answers(np.random.default_rng(5), CONDITIONS, {}, 30, 20, pairs_per_prompt=2)
    assert len(answers) == 30 * 20 * 2
    pair = answers["left"].where(answers["left"] < answers["right"], answers["right"]) + \
        answers["right"].where(answers["left"] < answers["right"], answers["left"])
    per_visit = pair.groupby([answers["rater"], answers["prompt_id"]])
    assert (per_visit.nunique() == 2).all()
    counts = pair.value_counts()
    assert len(counts) == 6
    low, high = band(len(pair), 1 / 6)
    assert ((counts / len(pair)).between(low, high)).all(), counts


def test_sides_are_balanced():
    answers = simulate_answers(np.random.default_rng(6), CONDITIONS, {}, 40, 50)
    first_on_left = (answers["left"] < answers["right"]).mean()
    low, high = band(len(answers), 0.5)
    assert low <= first_on_left <= high
    assert (answers["left"] != answers["right"]).all()


@pytest.mark.parametrize("position_bias", [0.0, 0.8])
def test_position_bias_makes_the_right_side_win(position_bias):
    tie_share = 0.1
    answers = simulate_answers(np.random.default_rng(7), ["a", "b"], {}, 50, 200, tie_share=tie_share,
                               position_bias=position_bias, **NO_RANDOM_EFFECTS)
    decisive = answers[answers["winner"] != ""]
    right_share = (decisive["winner"] == decisive["right"]).mean()
    theta = logit((1 - tie_share) / 2)
    expected = expit(theta + position_bias) / (expit(theta + position_bias) + expit(theta - position_bias))
    low, high = band(len(decisive), expected)
    assert low <= right_share <= high
    if position_bias:
        assert right_share > band(len(decisive), 0.5)[1]


def test_answers_are_reproducible_from_the_generator():
    one = simulate_answers(np.random.default_rng(8), CONDITIONS, {"c": -0.5}, 3, 4, pairs_per_prompt=3)
    two = simulate_answers(np.random.default_rng(8), CONDITIONS, {"c": -0.5}, 3, 4, pairs_per_prompt=3)
    pd.testing.assert_frame_equal(one, two)


# --------------------------------------------------------------------------- power

def test_no_difference_rejects_at_alpha():
    table = pairwise_power(["a", "b", "c"], {}, [4], [15], n_sim=1000, seed=11, compare=("b", "c"))
    assert list(table.columns) == POWER_COLUMNS
    row = table.iloc[0]
    assert row["n_failed"] == 0 and row["n_sim"] == 1000
    low, high = band(1000, 0.05)
    assert low <= row["power"] <= high


def bt_wald_power(abilities: list[float], per_pair: float, a: int, b: int, alpha: float = 0.05) -> float:
    """Normal-approximation power of the Wald test of ability[a] - ability[b] from the
    Bradley-Terry Fisher information of ``per_pair`` decisive comparisons of every pair."""
    k = len(abilities)
    information = np.zeros((k, k))
    for i, j in combinations(range(k), 2):
        p = expit(abilities[i] - abilities[j])
        x = np.zeros(k)
        x[i], x[j] = 1.0, -1.0
        information += per_pair * p * (1 - p) * np.outer(x, x)
    contrast = np.zeros(k)
    contrast[a], contrast[b] = 1.0, -1.0
    covariance = np.linalg.inv(information[1:, 1:])  # condition 0 fixed at 0
    se = np.sqrt(contrast[1:] @ covariance @ contrast[1:])
    shift, z = (abilities[a] - abilities[b]) / se, stats.norm.ppf(1 - alpha / 2)
    return stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)


def test_power_without_ties_or_random_effects_matches_the_fisher_information():
    # No ties: every answer is decisive and the model is exactly Bradley-Terry.
    n_sim = 600
    table = pairwise_power(["a", "b", "c"], {"b": 0.2}, [6], [40], n_sim=n_sim, seed=12, tie_share=0.0,
                           compare=("b", "c"), **NO_RANDOM_EFFECTS)
    expected = bt_wald_power([0.0, 0.2, 0.0], 6 * 40, 1, 2)
    assert 0.3 < expected < 0.7
    assert table["power"].iloc[0] == pytest.approx(expected, abs=3.3 * np.sqrt(expected * (1 - expected) / n_sim))


def test_power_with_ties_matches_the_binomial_of_the_decisive_answers():
    # Two conditions, five levels, 30 % ties: a wins with expit(theta + d), b with
    # expit(theta - d), theta = logit((1 - tie) / 2); the fit sees their decisive share.
    n_sim, tie_share, d, answers = 600, 0.3, 0.3, 5 * 40
    theta = logit((1 - tie_share) / 2)
    a_wins, b_wins = expit(theta + d), expit(theta - d)
    decisive = answers * (a_wins + b_wins)
    expected = bt_wald_power([logit(a_wins / (a_wins + b_wins)), 0.0], decisive, 0, 1)
    assert 0.3 < expected < 0.7
    table = pairwise_power(["a", "b"], {"a": d}, [5], [40], n_sim=n_sim, seed=13, n_levels=5,
                           tie_share=tie_share, **NO_RANDOM_EFFECTS)
    assert table["power"].iloc[0] == pytest.approx(expected, abs=3.3 * np.sqrt(expected * (1 - expected) / n_sim))


def test_non_estimable_studies_are_counted_and_not_rejections():
    # one rater, one prompt, no ties: a single decisive answer, whose winner won everything
    table = pairwise_power(["a", "b"], {"a": 3.0}, [1], [1], n_sim=20, tie_share=0.0)
    assert table.iloc[0][["power", "n_failed", "mcse"]].tolist() == [0.0, 20, 0.0]


def test_power_is_reproducible_and_each_cell_has_its_own_seed():
    options = dict(n_sim=30, seed=3, compare=("c", "a"))
    both = pairwise_power(["a", "b", "c"], {"c": 0.5}, [2, 3], [5], **options)
    again = pairwise_power(["a", "b", "c"], {"c": 0.5}, [2, 3], [5], **options)
    alone = pairwise_power(["a", "b", "c"], {"c": 0.5}, [3], [5], **options)
    pd.testing.assert_frame_equal(both, again)
    pd.testing.assert_frame_equal(both.iloc[[1]].reset_index(drop=True), alone)
    assert both.attrs["compare"] == ["c", "a"] and both.attrs["difference"] == 0.5


def test_written_files(tmp_path):
    table = pairwise_power(["a", "b"], {"a": 0.4}, [2, 4], [5, 10], n_sim=10)
    paths = write_pairwise_power(table, tmp_path / "power")
    assert [p.name for p in paths] == ["power_pairwise.csv", "power_pairwise.json",
                                       "power_pairwise.png", "power_pairwise.svg",
                                       "power_pairwise.pdf"]
    pd.testing.assert_frame_equal(pd.read_csv(paths[0]), table, check_dtype=False)
    settings = json.loads(paths[1].read_text())
    assert settings["compare"] == ["a", "b"] and settings["n_sim"] == 10 and settings["tie_share"] == 0.1
    assert paths[2].read_bytes().startswith(b"\x89PNG") and b"<svg" in paths[3].read_bytes()
    assert paths[4].read_bytes().startswith(b"%PDF")


def test_unwritable_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    table = pairwise_power(["a", "b"], {}, [2], [3], n_sim=2)
    with pytest.raises(AnalysisError, match="cannot write the power analysis"):
        write_pairwise_power(table, tmp_path / "file" / "power")


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("changes, message", [
    (dict(n_levels=4), "odd number of levels, 3 or more"),
    (dict(n_levels=1), "odd number of levels, 3 or more"),
    (dict(tie_share=1.0), r"tie share: expected a number in \[0, 1\), got 1.0"),
    (dict(tie_share=-0.1), r"tie share: expected a number in \[0, 1\)"),
    (dict(abilities={"e": 1.0}), r"unknown condition\(s\) e \(conditions: a, b, c, d\)"),
    (dict(conditions=["a"], abilities={}), "two or more distinct conditions, got \\['a'\\]"),
    (dict(conditions=["a", "a"], abilities={}), "two or more distinct conditions"),
    (dict(pairs_per_prompt=7), r"pairs per prompt: expected 0 \(all\) to 6 for 4 conditions, got 7"),
    (dict(rater_sd=-1.0), "rater_sd and prompt_sd must be at least 0"),
    (dict(n_raters=0), "at least 1 rater"),
])
def test_bad_input_is_named(changes, message):
    args = dict(conditions=CONDITIONS, abilities={"a": 0.5}, n_raters=2, n_prompts=2) | changes
    with pytest.raises(ValueError, match=message):
        simulate_answers(np.random.default_rng(0), **args)


@pytest.mark.parametrize("changes, message", [
    (dict(compare=("a", "x")), "compare expects two different conditions among a, b, c, got 'a' and 'x'"),
    (dict(compare=("b", "b")), "compare expects two different conditions"),
    (dict(rater_counts=[0, 2]), "rater and prompt counts of at least 1"),
    (dict(n_sim=0), "n_sim >= 1"),
    (dict(alpha=1.5), r"alpha in \(0, 1\)"),
    (dict(tie_share=1.0), r"tie share: expected a number in \[0, 1\)"),
    (dict(abilities={"z": 1.0}), r"unknown condition\(s\) z"),
])
def test_bad_power_input_is_one_line_analysis_error(changes, message):
    args = dict(conditions=["a", "b", "c"], abilities={}, rater_counts=[2], prompt_counts=[3]) | changes
    with pytest.raises(AnalysisError, match=message):
        pairwise_power(**args)
