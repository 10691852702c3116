"""Agreement of automated scores with ratings: correlations, bootstrap and model against
scipy, glidemed's crossed bootstrap and R ordinal::clmm, on data with a known answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from glidemed.analysis.agreement import (correlation_table, model_table, recommendation_table,
                                         weighted_kendall_tau_b, weighted_spearman)
from glidemed.analysis.bootstrap import crossed_bootstrap
from agreement_sim import simulate_agreement

REFERENCE = Path(__file__).resolve().parent / "reference"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_correlations_equal_scipy_on_the_expanded_sample(seed):
    rng = np.random.default_rng(seed)
    n = 60
    x = rng.normal(size=n).round(1)  # ties in the score
    y = rng.integers(0, 5, n).astype(float)  # and many in the rating
    W = rng.integers(0, 4, (6, n)).astype(float)
    taus, rhos = weighted_kendall_tau_b(x, y, W), weighted_spearman(x, y, W)
    for b, w in enumerate(W.astype(int)):
        xe, ye = np.repeat(x, w), np.repeat(y, w)
        assert taus[b] == pytest.approx(stats.kendalltau(xe, ye).statistic, abs=1e-12)
        assert rhos[b] == pytest.approx(stats.spearmanr(xe, ye).statistic, abs=1e-12)


def test_bootstrap_intervals_are_the_crossed_bootstrap_of_scipy():
    df = simulate_agreement(seed=3, n_raters=4, n_topics=4)
    table = correlation_table(df, ["good"], n_boot=60, seed=9)

    def statistic(data, style=None):
        part = data if style is None else data[data["style"] == style]
        return {"tau": stats.kendalltau(part["good"], part["score"]).statistic,
                "rho": stats.spearmanr(part["good"], part["score"]).statistic}

    for style in ["histo", None]:
        ref = crossed_bootstrap(df, lambda d: statistic(d, style), n_boot=60, seed=9)
        row = table[table["style"] == (style or "all")].iloc[0]
        tau, rho = ref.set_index("term").loc["tau"], ref.set_index("term").loc["rho"]
        assert row["kendall_tau_b"] == pytest.approx(tau["estimate"])
        assert row["spearman"] == pytest.approx(rho["estimate"])
        assert (row["tau_ci_low"], row["tau_ci_high"]) == pytest.approx((tau["ci_low"], tau["ci_high"]))
        assert (row["spearman_ci_low"], row["spearman_ci_high"]) == pytest.approx(
            (rho["ci_low"], rho["ci_high"]))


def test_known_score_agrees_and_noise_does_not():
    df = simulate_agreement(seed=11, n_raters=6, n_topics=12, aspects=("style", "content"))
    table = correlation_table(df, ["good", "noise"], n_boot=300, seed=1)
    good = table[table["metric"] == "good"]
    noise = table[table["metric"] == "noise"]
    assert (good["tau_ci_low"] > 0.05).all()
    assert ((noise["tau_ci_low"] < 0) & (noise["tau_ci_high"] > 0)).all()
    overall = good[(good["style"] == "all") & (good["aspect"] == "style")].iloc[0]
    part = df[df["aspect"] == "style"]
    assert overall["kendall_tau_b"] == pytest.approx(stats.kendalltau(part["good"], part["score"])[0])
    assert overall["n_ratings"] == len(part) and overall["n_raters"] == 6
    advice = recommendation_table(table)
    assert set(advice["best_metric"]) == {"good"} and advice["excludes_zero"].all()
    assert len(advice) == 2 * 4  # (3 styles + all) x 2 aspects


def test_a_rank_metric_is_recommended_in_its_direction():
    df = simulate_agreement(seed=12, n_raters=6, n_topics=12)
    df["retrieval:m"] = -df["good"]  # a rank: lower is better
    df["clipscore:m"] = df["noise"]
    table = correlation_table(df, ["retrieval:m", "clipscore:m"], n_boot=100, seed=2)
    assert (table.loc[table["metric"] == "retrieval:m", "kendall_tau_b"] < 0).all()
    advice = recommendation_table(table)
    assert set(advice["best_metric"]) == {"retrieval:m"}
    assert advice["excludes_zero"].all() and (advice["oriented_tau_b"] > 0).all()


def test_model_with_the_score_as_covariate_matches_r_clmm():
    ref = json.loads((REFERENCE / "agreement_simulated.json").read_text())
    df = pd.read_csv(REFERENCE / "agreement_simulated.csv")
    df = df.assign(aspect="style", panel=df["prompt_id"], exclusion="")
    models, notes = model_table(df, ["good"])
    row = models.iloc[0]
    clmm = ref["clmm"]
    assert row["model"] == "mixed" and row["converged"]
    assert row["score_sd"] == pytest.approx(df["good"].std(ddof=1))
    assert row["estimate"] == pytest.approx(clmm["beta"]["automated"], abs=2e-3)
    assert row["se"] == pytest.approx(clmm["se"]["automated"], rel=1e-2)
    assert row["n"] == clmm["n"]
    # and R's rank correlations
    table = correlation_table(df, ["good"], n_boot=0, seed=0)
    assert table.set_index("style").loc["all", "kendall_tau_b"] == pytest.approx(ref["kendall"])
    assert table.set_index("style").loc["all", "spearman"] == pytest.approx(ref["spearman"])
    for style, tau in ref["kendall_by_style"].items():
        assert table.set_index("style").loc[style, "kendall_tau_b"] == pytest.approx(tau)


def test_fixed_model_with_few_raters_matches_r_clm():
    from glidemed.analysis.ordinal import fit_ordinal

    ref = json.loads((REFERENCE / "agreement_simulated.json").read_text())["clm"]
    df = pd.read_csv(REFERENCE / "agreement_simulated.csv")
    df = df.assign(aspect="style", exclusion="")
    fit = fit_ordinal(df, "score ~ automated + style", "style")
    effects = fit.table.set_index("term")
    assert effects.loc["automated", "estimate"] == pytest.approx(ref["beta"]["automated"], abs=1e-4)
    assert effects.loc["automated", "se"] == pytest.approx(ref["se"]["automated"], rel=1e-3)
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-4)
    few = df[df["rater"].isin(["r00", "r01"])]
    models, _ = model_table(few, ["good"])
    assert models.iloc[0]["model"] == "fixed" and "(1|" not in models.iloc[0]["formula"]


def test_constant_score_gets_a_note_not_a_crash():
    df = simulate_agreement(seed=4, n_raters=3, n_topics=3)
    df["flat"] = 1.0
    models, notes = model_table(df, ["flat"])
    assert models.empty and "does not vary" in notes[0]
    table = correlation_table(df, ["flat"], n_boot=20, seed=0)
    assert table["kendall_tau_b"].isna().all() and recommendation_table(table).empty
