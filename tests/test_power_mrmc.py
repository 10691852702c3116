"""Sizing a reader study: Hillis' OR method against RJafroc, the Roe-Metz simulation against theory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from glidemed.analysis import mrmc as orh
from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.power_mrmc import (
    ORComponents,
    RoeMetz,
    cases_needed,
    hillis_power,
    load_roe_metz,
    roe_metz_components,
    roe_metz_power,
    simulate_ratings,
)
from tests.test_mrmc import VANDYKE, degenerate_readings, long_table, make_readings, swapped_readers

EFFECT = -0.043800322  # Van Dyke's observed difference, as RJafroc's tests use it


@pytest.fixture(scope="module")
def vandyke_components():
    return ORComponents.from_result(orh.mrmc(VANDYKE))


@pytest.mark.parametrize("analysis,readers,cases,expected", [
    # tests/reference/mrmc_power_rjafroc.txt (RJafroc tests/testthat/test-SsSampleSizeRoc.R)
    ("rrrc", 10, 165, 0.80541995),
    ("frrc", 10, 131, 0.80091813),
    ("rrfc", 10, 53, 0.80496663),
    ("rrrc", 6, 111, 0.5526116),
])
def test_hillis_power_matches_rjafroc(vandyke_components, analysis, readers, cases, expected):
    power = hillis_power(vandyke_components, readers, cases, EFFECT, analysis=analysis)
    assert power == pytest.approx(expected, abs=5e-8)


def _hillis_rrrc_by_definition(c, readers: int, cases: int, pilot_cases: int, d: float) -> float:
    """Hillis et al. (2011) eqn. 9-10 (tests/reference/mrmc_or_constraints.txt, section 7)."""
    spread = max(c.cov2 - c.cov3, 0.0)
    var_tr = max(c.ms_tr - c.var_error + c.cov1 + spread, 0.0)  # eqn. 9, then truncated at 0
    k = pilot_cases / cases
    den = var_tr + k * (c.var_error - c.cov1 + (readers - 1) * spread)
    df2 = den ** 2 / ((var_tr + k * (c.var_error - c.cov1 - spread)) ** 2 / (readers - 1))
    return float(stats.ncf.sf(stats.f.ppf(0.95, 1, df2), 1, df2, readers * d ** 2 / (2 * den)))


def test_power_var_tr_uses_max_cov2_minus_cov3():
    """cov2 < cov3 in the pilot: var(T:R) by eqn. 9; a study the pilot's size has its RRRC error term."""
    truth, ratings = swapped_readers(0)
    result = orh.analyse(make_readings(truth, ratings))
    c, (r, n) = result.components, (len(result.readings.readers), len(truth))
    assert c.cov2 < c.cov3 and c.ms_tr - c.var_error + c.cov1 > 0  # binds, and var(T:R) stays positive
    comps = ORComponents.from_result(result)
    assert comps.var_tr == pytest.approx(c.ms_tr - c.var_error + c.cov1, rel=1e-12)
    error_term = c.ms_tr + r * max(c.cov2 - c.cov3, 0.0)  # the pilot's own RRRC denominator
    d = 0.05
    expected = stats.ncf.sf(stats.f.ppf(0.95, 1, result.rrrc.df2), 1, result.rrrc.df2, r * d ** 2 / (2 * error_term))
    assert hillis_power(comps, r, n, d) == pytest.approx(expected, rel=1e-9)
    for readers, cases in ((8, 200), (3, 30)):
        assert hillis_power(comps, readers, cases, d) == pytest.approx(
            _hillis_rrrc_by_definition(c, readers, cases, n, d), rel=1e-9)


def test_power_truncates_negative_var_tr():
    """Eqn. 9 below 0 in the pilot: var(T:R) = 0 in the power."""
    truth, ratings = swapped_readers(1)
    result = orh.analyse(make_readings(truth, ratings))
    c = result.components
    assert c.cov2 < c.cov3 and c.ms_tr - c.var_error + c.cov1 + max(c.cov2 - c.cov3, 0.0) < 0  # binds
    comps = ORComponents.from_result(result)
    for readers, cases in ((4, 45), (8, 200)):
        assert hillis_power(comps, readers, cases, 0.05) == pytest.approx(
            _hillis_rrrc_by_definition(c, readers, cases, len(truth), 0.05), rel=1e-9)


def test_cases_needed_is_the_smallest_that_reaches_the_target(vandyke_components):
    k = cases_needed(vandyke_components, 10, EFFECT, 0.8)
    assert hillis_power(vandyke_components, 10, k, EFFECT) >= 0.8 > hillis_power(vandyke_components, 10, k - 1, EFFECT)
    assert 131 < k < 165  # RJafroc: 165 cases give 0.805
    # Two readers with a var(T:R) floor: more cases cannot reach 0.99.
    assert cases_needed(vandyke_components, 2, EFFECT, 0.99, most=10_000) is None


def test_roe_metz_typical_reader_has_the_set_auc():
    model = RoeMetz(var_r=0.0, var_tr=0.0)
    ratings, truth = simulate_ratings(model, [0.8, 0.65], 4, 4000, np.random.default_rng(1))
    auc, cov = orh.covariance(ratings, truth)
    se = np.sqrt(np.diag(cov).reshape(auc.shape).mean(axis=1) / 4)
    assert abs(auc[0].mean() - 0.8) < 4 * se[0] and abs(auc[1].mean() - 0.65) < 4 * se[1]
    assert truth.sum() == 2000


def test_roe_metz_reader_variance_spreads_reader_aucs():
    wide = RoeMetz(var_r=0.2, var_tr=0.0)
    ratings, truth = simulate_ratings(wide, [0.75], 40, 600, np.random.default_rng(2))
    auc, _ = orh.covariance(ratings, truth)
    # reader AUC = Phi((mu + R1 - R0) / sqrt(2)), R1 - R0 ~ N(0, 2 var_r): sd of probit(AUC) ~ sqrt(0.2)
    probit = stats.norm.ppf(auc[0])
    assert 0.3 < probit.std(ddof=1) < 0.6


def test_roe_metz_null_rejects_about_alpha():
    result = roe_metz_power(RoeMetz(), [0.75, 0.75], 5, 60, 300, alpha=0.05, seed=4)
    power, mcse, failed = result["rrrc"]
    assert failed == 0 and 0.01 <= power <= 0.10


@pytest.mark.slow
def test_hillis_from_roe_metz_agrees_with_simulation():
    model, aucs = RoeMetz(), [0.75, 0.82]
    comps = roe_metz_components(model, aucs, n_pilots=10, seed=1)
    simulated = roe_metz_power(model, aucs, 6, 120, 300, seed=2)
    for analysis in ("rrrc", "frrc"):
        power, mcse, _ = simulated[analysis]
        assert abs(hillis_power(comps, 6, 120, aucs[0] - aucs[1], analysis=analysis) - power) < 0.03 + 3 * mcse


def test_chance_design_components_and_power(vandyke_components):
    one = ORComponents.from_result(orh.mrmc(VANDYKE), "chance")
    assert one.var_r > 0 and one.cov1 == 0
    # AUC 0.9 vs 0.5 with 5 readers and 114 cases: certain.
    assert hillis_power(one, 5, 114, 0.4, design="chance") > 0.999
    assert hillis_power(one, 5, 114, 0.01, design="chance") < 0.2


def test_roe_metz_power_counts_studies_without_a_test_as_failed():
    """AUCs near 1 on 4 cases: most simulated studies separate perfectly; they are failures, not a crash."""
    for aucs in ([0.995, 0.995], [0.995]):
        result = roe_metz_power(RoeMetz(), aucs, 2, 4, 40, seed=1)
        for name in ("rrrc", "frrc", "rrfc"):
            power, mcse, failed = result[name]
            assert failed > 20 and (math.isnan(power) or 0 <= power <= 1)


def test_hillis_power_is_nan_where_the_error_term_is_0():
    """Identical treatments in the pilot: var(error) = cov1, cov2 = cov3, var(T:R) = 0."""
    comps = ORComponents(cases=50, var_error=0.004, cov1=0.004, cov2=0.002, cov3=0.002, var_tr=0.0, var_r=0.01)
    for name in ("rrrc", "frrc", "rrfc"):
        assert math.isnan(hillis_power(comps, 5, 50, 0.05, analysis=name))
        assert cases_needed(comps, 5, 0.05, analysis=name, most=1000) is None


def test_pilot_without_variance_over_cases_is_refused(tmp_path):
    from tests.conftest import ROOT

    truth, ratings = degenerate_readings("perfect_separation")
    pilot = tmp_path / "pilot.csv"
    long_table(truth, ratings).to_csv(pilot, index=False)
    result = CliRunner().invoke(main, ["power", str(ROOT / "surveys" / "demo"), "--design", "turing",
                                       "--method", "hillis", "--pilot", str(pilot), "--auc", "0.9,0.95",
                                       "--out", str(tmp_path / "power")], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: --pilot {pilot}: no variance between readers or over cases")
    assert "sizing a study needs a pilot whose AUCs vary over cases" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_load_roe_metz_file_errors(tmp_path):
    path = tmp_path / "rm.toml"
    path.write_text("[roe_metz]\nvar_r = 0.02\nvar_x = 1\n")
    with pytest.raises(AnalysisError, match="unknown Roe-Metz parameter.*var_x"):
        load_roe_metz(path)
    path.write_text("var_r = 0.02\npositive_share = 0.3\n")
    model = load_roe_metz(path)
    assert (model.var_r, model.positive_share, model.var_c) == (0.02, 0.3, 0.3)
    path.write_text("var_r = -1\n")
    with pytest.raises(AnalysisError, match="var_r must be at least 0"):
        load_roe_metz(path)


def test_power_command_turing_design(tmp_path):
    from tests.conftest import ROOT

    demo = ROOT / "surveys" / "demo"
    out = tmp_path / "power"
    result = CliRunner().invoke(main, ["power", str(demo), "--design", "turing", "--method", "hillis",
                                       "--pilot", str(VANDYKE), "--auc", "0.897,0.941", "--raters", "5,10",
                                       "--cases", "114,165", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "cases needed for power 0.8" in result.output
    settings = json.loads((out / "power_turing.json").read_text())
    assert settings["design"] == "difference" and settings["method"] == "hillis"
    assert {"png", "svg", "csv"} <= {p.suffix.lstrip(".") for p in out.iterdir()}
    rows = (out / "power_turing.csv").read_text().splitlines()
    assert rows[0] == "readers,cases,method,analysis,power,mcse,n_failed" and len(rows) == 1 + 2 * 2 * 3
    result = CliRunner().invoke(main, ["power", str(demo), "--design", "turing", "--auc", "0.5"])
    assert result.exit_code == 1 and "--auc 0.5 is chance itself" in result.output
    result = CliRunner().invoke(main, ["power", str(demo), "--design", "turing", "--pilot", str(VANDYKE)])
    assert result.exit_code == 1 and "only the hillis method uses a pilot" in result.output
    result = CliRunner().invoke(main, ["power", str(demo), "--method", "hillis"])
    assert result.exit_code == 2 and "is a method of --design turing" in result.output
