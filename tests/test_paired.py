"""glidemed.analysis.paired: the ordinal paired-comparison mixed model against R ordinal::clmm
(tests/reference/paired_simulated.R), win rates and their crossed bootstrap against direct
computations, Bradley-Terry from answers, and bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from glidemed.analysis.bootstrap import crossed_draws
from glidemed.analysis.bradley_terry import bradley_terry
from glidemed.analysis.paired import (PAIRED_COLUMNS, WIN_RATE_COLUMNS, paired_bradley_terry,
                                      paired_model, win_rates)
from glidemed.errors import AnalysisError

REFERENCE = ROOT / "tests" / "reference"
CONDITIONS = ["sd15", "sdxl", "glide"]
RADIOLOGY = {"xray": "radiology", "ct": "radiology"}


def reference_answers() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "paired_simulated.csv", keep_default_na=False)


def mirrored(answers: pd.DataFrame, n_levels: int) -> pd.DataFrame:
    """The same answers with the sides swapped: a preference for the right becomes one for
    the left."""
    return answers.assign(left=answers["right"], right=answers["left"],
                          choice=n_levels - 1 - answers["choice"])


def small_answers() -> pd.DataFrame:
    """5 raters x 6 prompts of the reference table, 3 levels (0-1 -> 0, 2 -> 1, 3-4 -> 2)."""
    table = reference_answers()
    table = table[table["rater"].isin([f"r{i:02d}" for i in range(5)])
                  & table["prompt_id"].isin([f"p{i:03d}" for i in range(6)])]
    return table.assign(choice=table["choice"].map({0: 0, 1: 0, 2: 1, 3: 2, 4: 2}))


def test_mixed_model_equals_clmm():
    r = json.loads((REFERENCE / "paired_simulated.json").read_text())
    other_aspect = mirrored(reference_answers(), 5).assign(aspect="content")
    answers = pd.concat([reference_answers(), other_aspect], ignore_index=True)
    got = paired_model(answers, CONDITIONS, "style", n_levels=5)
    assert list(got.table.columns) == PAIRED_COLUMNS and got.aspect == "style"
    assert got.fit.converged and r["converged"] and got.fit.n == r["n"]
    assert got.fit.loglik == pytest.approx(r["loglik"], abs=1e-4)
    table = got.table.set_index("term")
    abilities = table[table["kind"] == "ability"]
    assert list(abilities.index) == CONDITIONS
    assert abilities.loc["sd15", ["estimate", "se", "ci_low", "ci_high"]].tolist() == [0, 0, 0, 0]
    for name in CONDITIONS[1:]:
        assert abilities.loc[name, "estimate"] == pytest.approx(r["beta"][f"x_{name}"], abs=1e-4)
        assert abilities.loc[name, "se"] == pytest.approx(r["se"][f"x_{name}"], abs=1e-4)
    cuts = table[table["kind"] == "cutpoint"]
    assert list(cuts.index) == list(r["cutpoints"])
    np.testing.assert_allclose(cuts["estimate"], list(r["cutpoints"].values()), atol=1e-4)
    np.testing.assert_allclose(cuts["se"], list(r["cutpoint_se"].values()), atol=1e-4)
    for group, sd in r["sd"].items():
        assert table.loc[f"sd({group})", "estimate"] == pytest.approx(sd, abs=1e-4)
    bias = table.loc["right"]
    assert bias["kind"] == "position_bias"
    assert bias["estimate"] == pytest.approx(r["position_bias"], abs=1e-4)
    assert bias["se"] == pytest.approx(r["position_bias_se"], abs=1e-4)
    assert bias["ci_high"] - bias["estimate"] == pytest.approx(1.959964 * bias["se"], rel=1e-6)


def test_swapping_the_sides_negates_the_position_bias_only():
    answers = reference_answers()
    straight = paired_model(answers, CONDITIONS, None, 5).table.set_index("term")["estimate"]
    swapped = paired_model(mirrored(answers, 5), CONDITIONS, None, 5).table.set_index("term")["estimate"]
    assert straight["right"] > 0.1
    assert swapped["right"] == pytest.approx(-straight["right"], abs=1e-4)
    for term in CONDITIONS + ["sd(rater)", "sd(prompt_id)"]:
        assert swapped[term] == pytest.approx(straight[term], abs=1e-4), term


def test_a_level_never_chosen_leaves_the_position_bias_out():
    answers = reference_answers()
    answers = answers.assign(choice=answers["choice"].replace({1: 0}))
    got = paired_model(answers, CONDITIONS, "style", n_levels=5)
    assert np.isnan(got.table.set_index("term").loc["right", "estimate"])
    assert any("never chosen" in note for note in got.notes)


def test_an_ability_confounded_with_the_side_is_an_error():
    answers = reference_answers()
    two = answers[answers[["left", "right"]].isin(["sd15", "glide"]).all(axis=1)]
    glide_right = two["right"] == "glide"
    two = pd.concat([two[~glide_right], mirrored(two[glide_right], 5)])  # glide always left
    with pytest.raises(AnalysisError, match="ability of glide cannot be told apart"):
        paired_model(two, ["sd15", "glide"], "style", n_levels=5)


def plain_win_rates(answers: pd.DataFrame, group_of) -> dict:
    """(aspect, group, condition, opponent) -> (win rate, n) from the winner column."""
    out = {}
    for _, row in answers.iterrows():
        for group in ("all", group_of(row["style"])):
            for me, other in ((row["left"], row["right"]), (row["right"], row["left"])):
                wins, n = out.get((row["aspect"], group, me, other), (0.0, 0))
                score = 0.5 if row["winner"] == "" else float(row["winner"] == me)
                out[(row["aspect"], group, me, other)] = (wins + score, n + 1)
    return {key: (wins / n, n) for key, (wins, n) in out.items()}


def test_win_rates_equal_a_plain_count():
    answers = reference_answers()
    answers = pd.concat([answers, mirrored(answers, 5).assign(aspect="content")], ignore_index=True)
    got = win_rates(answers, CONDITIONS, 5, groups=RADIOLOGY, n_boot=20)
    assert list(got.columns) == WIN_RATE_COLUMNS
    assert got["group"].unique().tolist() == ["all", "radiology", "photo", "poster"]
    assert len(got) == 2 * 4 * 6
    expected = plain_win_rates(answers, lambda style: RADIOLOGY.get(style, style))
    for row in got.itertuples():
        rate, n = expected[(row.aspect, row.group, row.condition, row.opponent)]
        assert row.win_rate == pytest.approx(rate, abs=1e-12) and row.n == n
    by_column = win_rates(answers.assign(style_group=answers["style"].map(lambda s: RADIOLOGY.get(s, s))),
                          CONDITIONS, 5, groups="style_group", n_boot=20)
    pd.testing.assert_frame_equal(by_column, got)


def test_bootstrap_equals_a_naive_loop_over_the_same_draws():
    answers = small_answers()
    n_boot, seed = 40, 11
    got = win_rates(answers, CONDITIONS, 3, groups=RADIOLOGY, n_boot=n_boot, seed=seed)
    draws = crossed_draws(answers, n_boot, seed)
    group_of = lambda style: RADIOLOGY.get(style, style)  # noqa: E731
    boot: dict[tuple, list[float]] = {}
    for b in range(n_boot):
        copies = []
        for rater, rater_copies in zip(draws.raters, draws.rater_counts[b]):
            for prompt, prompt_copies in zip(draws.prompts, draws.prompt_counts[b]):
                block = answers[(answers["rater"] == rater) & (answers["prompt_id"] == prompt)]
                copies += [block] * (rater_copies * prompt_copies)
        for key, (rate, _) in plain_win_rates(pd.concat(copies), group_of).items():
            boot.setdefault(key, []).append(rate)
    for row in got.itertuples():
        values = boot.get((row.aspect, row.group, row.condition, row.opponent), [])
        low, high = np.percentile(values, [2.5, 97.5])
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)


def test_pairs_never_shown_together_have_no_rate():
    answers = small_answers()
    answers = answers[~answers[["left", "right"]].isin(["glide"]).any(axis=1) | (answers["style"] == "xray")]
    got = win_rates(answers, CONDITIONS, 3, groups=RADIOLOGY, n_boot=10).set_index(
        ["group", "condition", "opponent"])
    assert got.loc[("photo", "glide", "sd15"), "n"] == 0
    assert got.loc[("photo", "glide", "sd15"), ["win_rate", "ci_low", "ci_high"]].isna().all()
    assert got.loc[("radiology", "glide", "sd15"), "n"] > 0


def test_bradley_terry_from_answers_equals_the_decisive_winners():
    answers = small_answers()
    decisive = answers[answers["winner"] != ""]
    loser = decisive["right"].where(decisive["winner"] == decisive["left"], decisive["left"])
    pd.testing.assert_frame_equal(paired_bradley_terry(answers, CONDITIONS, "style"),
                                  bradley_terry(decisive["winner"], loser, CONDITIONS))


@pytest.mark.parametrize("change, conditions, n_levels, message", [
    (lambda t: t.assign(left=t["left"].replace("sdxl", "sdxl2")), CONDITIONS, 3,
     "condition(s) sdxl2 in the answers not among sd15, sdxl, glide"),
    (lambda t: t, ["sd15"], 3, "expected two or more distinct conditions"),
    (lambda t: t, ["sd15", "sd15", "glide"], 3, "expected two or more distinct conditions"),
    (lambda t: t, CONDITIONS, 4, "odd number of levels"),
    (lambda t: t.assign(choice=t["choice"] + 1), CONDITIONS, 3, "choice(s) not a whole number in 0..2"),
    (lambda t: t.assign(choice=t["choice"] - 0.5), CONDITIONS, 3, "not a whole number in 0..2"),
    (lambda t: t.assign(right=t["left"]), CONDITIONS, 3, "compare a condition with itself"),
    (lambda t: t.drop(columns="rater"), CONDITIONS, 3, "lack column(s) rater"),
    (lambda t: t.assign(aspect="content"), CONDITIONS, 3, "no answers of aspect 'style'"),
])
def test_bad_input_is_named(change, conditions, n_levels, message):
    answers = change(small_answers())
    analyses = [lambda: paired_model(answers, conditions, "style", n_levels),
                lambda: paired_bradley_terry(answers, conditions, "style", n_levels)]
    if "aspect" not in message:
        analyses.append(lambda: win_rates(answers, conditions, n_levels, n_boot=5))
    for analysis in analyses:
        with pytest.raises(AnalysisError, match=re.escape(message)):
            analysis()
