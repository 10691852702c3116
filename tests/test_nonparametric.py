"""Nonparametric tests, checked against R (tests/reference/kather2022_stats.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stats_factory import make_tidy

from glidemed.analysis.legacy import read_legacy_spreadsheet
from glidemed.analysis.nonparametric import (
    PAIRWISE_COLUMNS,
    TEST_COLUMNS,
    cliffs_delta,
    run_tests,
    signed_rank,
)
from glidemed.errors import AnalysisError
from glidemed.study import load_study

REFERENCE = json.loads((Path(__file__).parent / "reference" / "kather2022_stats.json").read_text())


@pytest.fixture(scope="module")
def paper(kather_xlsx):
    return read_legacy_spreadsheet(load_study("kather2022"), kather_xlsx, nonsensical="zero")


@pytest.mark.parametrize("unit", ["prompt_median", "rating"])
def test_against_r(paper, unit):
    tests, pairs = run_tests(paper, unit)
    zsplit, _ = run_tests(paper, unit, zero_method="zsplit")
    assert list(tests.columns) == TEST_COLUMNS and list(pairs.columns) == PAIRWISE_COLUMNS
    assert (tests["unit"] == unit).all() and (pairs["unit"] == unit).all()
    for aspect in ("style", "content"):
        ref = REFERENCE[aspect][unit]
        mine = tests[tests["aspect"] == aspect].set_index("test")
        kw = mine.loc["kruskal"]
        assert kw["statistic"] == pytest.approx(ref["kruskal"]["statistic"], rel=1e-9)
        assert kw["p"] == pytest.approx(ref["kruskal"]["p"], rel=1e-6)
        group = mine.loc["mannwhitney_group"]
        assert group["comparison"] == "radiology vs rest"
        assert group["statistic"] == pytest.approx(ref["radiology"]["statistic"])
        assert group["p"] == pytest.approx(ref["radiology"]["p"], rel=1e-6)
        detail = mine.loc["wilcoxon_detail"]
        assert detail["n"] == ref["detail"]["n"] and detail["zero_method"] == "pratt"
        assert detail["statistic"] == pytest.approx(ref["detail"]["pratt"]["statistic"])
        assert detail["p"] == pytest.approx(ref["detail"]["pratt"]["p"], rel=1e-6)
        z = zsplit[(zsplit["aspect"] == aspect) & (zsplit["test"] == "wilcoxon_detail")].iloc[0]
        assert z["statistic"] == pytest.approx(ref["detail"]["zsplit"]["statistic"])
        assert z["p"] == pytest.approx(ref["detail"]["zsplit"]["p"], rel=1e-6)
        cond = mine.loc["wilcoxon_condition"]
        assert cond["status"] == "not testable" and "found 1: clip" in cond["reason"]

        got = pairs[pairs["aspect"] == aspect].reset_index(drop=True)
        want = pd.DataFrame(ref["pairwise"])
        assert got[["a", "b"]].values.tolist() == want[["a", "b"]].values.tolist()
        np.testing.assert_allclose(got["u"], want["u"])
        for mine_col, ref_col in [("p_mw", "p_mw"), ("p_mw_holm", "p_mw_holm"),
                                  ("p_mw_bh", "p_mw_BH"), ("p_dunn", "p_dunn"),
                                  ("p_dunn_holm", "p_dunn_holm")]:
            np.testing.assert_allclose(got[mine_col], want[ref_col], rtol=1e-6, err_msg=mine_col)
        assert (got["status"] == "ok").all()


def test_cliffs_delta_by_definition():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 17), rng.integers(0, 5, 11)
    brute = np.mean(np.sign(a[:, None] - b[None, :]))
    assert cliffs_delta(a, b) == pytest.approx(brute)
    assert cliffs_delta([4, 4], [0, 1]) == 1.0 and cliffs_delta([0], [0]) == 0.0


def test_paired_condition_test_matches_manual_pairs():
    df = make_tidy(lambda rng, row: 1 + (row["condition"] == "b") + rng.integers(0, 2),
                   conditions=("a", "b"), seed=4)  # b - a is 0, 1 or 2, never negative
    tests, _ = run_tests(df, "rating")
    row = tests[(tests["test"] == "wilcoxon_condition") & (tests["aspect"] == "style")].iloc[0]
    assert row["comparison"] == "b - a" and row["condition"] == "all" and row["status"] == "ok"
    style = df[df["aspect"] == "style"]
    wide = style.pivot_table(index=["rater", "prompt_id"], columns="condition", values="score")
    d = (wide["b"] - wide["a"]).to_numpy()
    assert row["n"] == len(d) == 72
    assert row["p"] == pytest.approx(signed_rank(d, "pratt")["p"])
    assert row["effect_size"] == 1.0 and row["p"] < 1e-6
    medians, _ = run_tests(df, "prompt_median")
    assert medians.loc[medians["test"] == "wilcoxon_condition", "n"].tolist() == [24, 24]


def test_signed_rank_pratt_keeps_zeros_in_ranking():
    d = np.array([0, 0, 0, 1, 1, 2, -1])
    res = signed_rank(d, "pratt")
    # ranks of |d| with zeros: zeros 1-3 (2), ones 4-6 (5), two 7; R+ = 5+5+7 = 17, R- = 5
    assert res["statistic"] == 5.0 and res["effect_size"] == pytest.approx((17 - 5) / 22)
    assert signed_rank(np.zeros(4), "pratt")["status"] == "not testable"
    assert signed_rank(np.array([]), "zsplit")["reason"] == "no matched pairs"


def test_degenerate_input_is_not_testable():
    flat = make_tidy(lambda rng, row: 2)
    tests, pairs = run_tests(flat, "prompt_median")
    kw = tests[tests["test"] == "kruskal"]
    assert (kw["status"] == "not testable").all() and (kw["reason"] == "all values identical").all()
    assert (pairs["status"] == "not testable").all()
    assert pairs["p_mw"].isna().all() and pairs["p_dunn"].isna().all()
    detail = tests[tests["test"] == "wilcoxon_detail"]
    assert (detail["reason"] == "all differences are zero").all()

    df = make_tidy(shift={"ct": 2}, seed=1)
    gone = df["style"] == "ct"
    df.loc[gone, "score"] = pd.NA
    df.loc[gone, "exclusion"] = "nonsensical"
    tests, pairs = run_tests(df, "rating")
    kw = tests[tests["test"] == "kruskal"].iloc[0]
    assert kw["status"] == "ok" and kw["reason"] == "no data for ct"
    ct = pairs[(pairs["b"] == "ct")]
    assert (ct["status"] == "not testable").all() and (ct["reason"] == "no data for ct").all()
    ok = pairs[pairs["status"] == "ok"]
    assert ok[["p_mw", "p_mw_holm", "p_mw_bh", "p_dunn"]].notna().all().all()
    # every row either has a p-value or says why not
    assert tests.loc[tests["p"].isna(), "status"].eq("not testable").all()


def test_bad_arguments():
    df = make_tidy()
    with pytest.raises(AnalysisError, match="unit"):
        run_tests(df, "panel")
    with pytest.raises(AnalysisError, match="zero_method"):
        run_tests(df, "rating", zero_method="wilcox")


def test_p_adjustments_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from glidemed.analysis.nonparametric import p_adjust_bh, p_adjust_holm

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.04, 0.9, 0.001])
    np.testing.assert_allclose(p_adjust_holm(p), multipletests(p, method="holm")[1])
    np.testing.assert_allclose(p_adjust_bh(p), multipletests(p, method="fdr_bh")[1])
