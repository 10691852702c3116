"""Power analysis by simulation: calibration under the null, monotone in raters, outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.power import (
    POWER_COLUMNS,
    _mann_whitney,
    default_groups,
    make_comparison,
    power_analysis,
    prompt_medians,
    study_p_value,
    write_power,
)
from glidemed.simulate import (
    SimParams,
    build_model,
    ratings_from_sessions,
    simulate_ratings,
    simulate_sessions,
)
from glidemed.study import load_study

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo():
    return load_study(ROOT / "surveys" / "demo")


def test_null_power_is_alpha(demo):
    """With no difference the rejection rate is alpha within Monte Carlo error (3 SE)."""
    table = power_analysis(demo, [3], [72], difference=0.0, n_sims=600, method="mann-whitney",
                           seed=2)
    power = table["power"].iloc[0]
    assert abs(power - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 600), power
    assert table["n_failed"].iloc[0] == 0


def test_power_rises_with_raters_and_difference(demo):
    table = power_analysis(demo, [1, 10], [36], difference=0.6, n_sims=150,
                           method="mann-whitney", seed=1).set_index("raters")
    low, high = table.loc[1], table.loc[10]
    assert high["power"] - low["power"] > 3 * math.hypot(low["mcse"], high["mcse"]), table
    bigger = power_analysis(demo, [10], [36], difference=1.2, n_sims=150,
                            method="mann-whitney", seed=1)["power"].iloc[0]
    assert bigger > high["power"]


def test_table_columns_and_mcse(demo):
    table = power_analysis(demo, [2, 3], [18, 36], difference=0.8, n_sims=40,
                           method="mann-whitney", seed=4)
    assert list(table.columns) == POWER_COLUMNS
    assert len(table) == 4 and (table["n_sims"] == 40).all()
    expected = np.sqrt(table["power"] * (1 - table["power"]) / (table["n_sims"] - table["n_failed"]))
    np.testing.assert_allclose(table["mcse"], expected)
    assert table.attrs["groups"] == ["histopathology", "radiology"]


def test_results_do_not_depend_on_jobs(demo):
    kwargs = {"difference": 0.7, "n_sims": 30, "method": "mann-whitney", "seed": 9}
    one = power_analysis(demo, [3, 4], [18], jobs=1, **kwargs)
    two = power_analysis(demo, [3, 4], [18], jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one, two)


def test_score_difference_is_what_raters_give(demo):
    """The latent shift found for '1 point' gives a 1-point gap in simulated mean scores."""
    comparison = make_comparison(demo, ("histopathology", "radiology"), 1.0, aspect="style")
    df = simulate_ratings(demo, 300, n_prompts=360, params=comparison.params(SimParams()),
                          seed=3, aspects=["style"])
    means = df.groupby("style_group")["score"].mean()
    assert means["histopathology"] - means["radiology"] == pytest.approx(1.0, abs=0.08)
    logit = make_comparison(demo, ("histopathology", "radiology"), 1.5, scale="logit")
    assert logit.delta == 1.5


def test_fast_path_matches_the_table_path(demo):
    """The numpy Mann-Whitney used in bulk equals the test on the tidy table."""
    comparison = make_comparison(demo, default_groups(demo), 0.5)
    model = build_model(demo, comparison.params(SimParams(missing=0.1, dropout=0.5)), 36,
                        aspects=["style"])
    styles = np.array([p.style for p in model.prompts])
    arms = (np.isin(styles, comparison.first_styles), np.isin(styles, comparison.second_styles))
    for seed in range(3):
        sessions = simulate_sessions(model, 4, seed)
        df = ratings_from_sessions(model, sessions)
        assert _mann_whitney(prompt_medians(model, sessions), arms) == pytest.approx(
            study_p_value(df, comparison, "mann-whitney"), rel=1e-12)


def test_mixed_method_rejects_at_alpha_under_the_null_and_finds_a_large_difference(demo):
    null = power_analysis(demo, [3], [36], difference=0.0, n_sims=80, method="mixed", seed=1)
    assert null["n_failed"].iloc[0] == 0
    assert abs(null["power"].iloc[0] - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 80)
    large = power_analysis(demo, [3], [36], difference=1.5, n_sims=10, method="mixed", seed=1)
    assert large["n_failed"].iloc[0] == 0 and large["power"].iloc[0] == 1.0


def test_bad_requests(demo):
    with pytest.raises(AnalysisError, match="no style or style group"):
        power_analysis(demo, [3], [18], groups=("histopathology", "mri"), n_sims=2,
                       method="mann-whitney")
    with pytest.raises(AnalysisError, match="allows differences below 4"):
        power_analysis(demo, [3], [18], difference=4.5, n_sims=2, method="mann-whitney")
    with pytest.raises(AnalysisError, match="--method"):
        power_analysis(demo, [3], [18], n_sims=2, method="t-test")
    with pytest.raises(AnalysisError, match="at least 2 raters"):
        power_analysis(demo, [1], [18], n_sims=2, method="mixed")


def test_write_power_files(demo, tmp_path):
    table = power_analysis(demo, [2, 3], [18], difference=1.0, n_sims=10, method="mann-whitney")
    paths = write_power(table, tmp_path)
    assert sorted(p.name for p in paths) == ["power.csv", "power.json", "power.png", "power.svg"]
    back = pd.read_csv(tmp_path / "power.csv")
    assert list(back.columns) == POWER_COLUMNS and len(back) == 2
    with Image.open(tmp_path / "power.png") as image:
        assert image.size[0] > 300
    assert (tmp_path / "power.svg").read_text().lstrip().startswith("<?xml")


def test_cli_power(demo, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["power", str(demo.path), "--raters", "2,4", "--prompts", "18",
                                  "--sims", "10", "--method", "mann-whitney", "--out",
                                  str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "power.csv").is_file() and (tmp_path / "power.png").is_file()
    assert "raters" in result.output
    result = runner.invoke(main, ["power", str(demo.path), "--groups", "histopathology,nope",
                                  "--sims", "2", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "'nope' is no style" in result.output
    result = runner.invoke(main, ["power", str(demo.path), "--raters", "3,x"])
    assert result.exit_code == 2 and "comma-separated" in result.output


@pytest.mark.slow
def test_mixed_null_power_is_alpha():
    """The mixed model's Wald test keeps alpha on the seed study's design (3 SE, 100 studies)."""
    kather = load_study(ROOT / "surveys" / "kather2022")
    table = power_analysis(kather, [3], [272], difference=0.0, n_sims=100, method="mixed",
                           seed=3, jobs=2)
    row = table.iloc[0]
    assert row["n_failed"] <= 3
    assert abs(row["power"] - 0.05) < 3 * math.sqrt(0.05 * 0.95 / (100 - row["n_failed"])), row


def test_user_effect_moves_the_first_group(demo):
    base = make_comparison(demo, ("histopathology", "radiology"), 1.0, scale="logit")
    moved = make_comparison(demo, ("histopathology", "radiology"), 1.0, scale="logit",
                            params=SimParams(effects={"style:histopathology": 2.5}))
    # the default is the histopathology effect that R's clmm fitted to the paper's ratings
    fitted = json.loads((ROOT / "tests" / "reference" / "simulate_defaults.json").read_text())
    assert base.first_value == round(fitted["style"]["style"]["histopathology"], 2)
    assert moved.first_value == 2.5
    effects = moved.params(SimParams()).effects
    assert effects["style/style:xray"] == effects["style/style:ct"] == 1.5
