"""Simulated raters: the model, the tidy table, and response files that pass ingest."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.special import expit

from glidemed.analysis.ingest import ingest_responses
from glidemed.analysis.tidy import TIDY_COLUMNS
from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.simulate import (
    PAPER_DEFAULTS,
    SimParams,
    build_model,
    design_prompts,
    load_params,
    make_params,
    parse_effect,
    simulate_ratings,
    simulate_responses,
)
from glidemed.study import load_study
from glidemed.responses.chain import chain_problems, replay
from glidemed.survey.key import load_key
from glidemed.survey.randomize import rater_plan

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "glidemed" / "schemas" / "response.schema.json").read_text())
REFERENCE = json.loads((ROOT / "tests" / "reference" / "simulate_defaults.json").read_text())
STYLES = ["microscopy", "histopathology", "xray", "mri", "ct", "photo", "poster", "illustration"]


@pytest.fixture(scope="module")
def kather():
    return load_study(ROOT / "surveys" / "kather2022")


@pytest.fixture(scope="module")
def demo():
    return load_study(ROOT / "surveys" / "demo")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small study with repeats and a rater profile, generated and built for real."""
    folder = tmp_path_factory.mktemp("built")
    study_file = folder / "study" / "study.toml"
    study_file.parent.mkdir()
    study_file.write_text((ROOT / "surveys" / "demo" / "study.toml").read_text()
                          .replace('id = "demo"', 'id = "simbuild"')
                          .replace("size = 256", "size = 32")
                          .replace("[survey]\n", "[survey]\nrepeat_panels = 3\n"))
    runner = CliRunner()
    env = {"GLIDEMED_BUILD_DIR": str(folder / "build")}
    for command in (["generate", str(study_file), "--no-progress"], ["build", str(study_file)]):
        result = runner.invoke(main, command, env=env)
        assert result.exit_code == 0, result.output
    study = load_study(study_file)
    key_path = folder / "build" / "simbuild" / "key" / "key.json"
    return study, key_path, load_key(key_path).data, env


# ---------------------------------------------------------------- defaults and the model

def test_defaults_are_the_r_fit(kather):
    """The module's defaults are the rounded clmm fit stored beside its R script."""
    for aspect in ("style", "content"):
        ref, mine = REFERENCE[aspect], PAPER_DEFAULTS[aspect]
        np.testing.assert_allclose(mine.cutpoints, ref["cutpoints"], atol=0.006)
        np.testing.assert_allclose([mine.styles[s] for s in STYLES],
                                   [ref["style"][s] for s in STYLES], atol=0.006)
        assert mine.detailed == pytest.approx(ref["detail_detailed"], abs=0.006)
        assert mine.rater_sd == pytest.approx(ref["rater_sd"], abs=0.006)
        assert mine.prompt_sd == pytest.approx(ref["prompt_sd"], abs=0.006)
    assert SimParams().prompt_correlation == pytest.approx(REFERENCE["prompt_correlation"], abs=0.006)


def test_defaults_resemble_the_paper_medians(kather):
    """Per-style medians of per-prompt medians (3 raters, like the paper), pooled over seeds."""
    paper = {"style": [2, 3, 1, 0, 0, 2, 3, 3], "content": [2, 2, 1, 0, 0, 2, 1, 2]}
    frames = [simulate_ratings(kather, 3, seed=s, conditions=["clip"]).assign(seed=s)
              for s in range(5)]
    df = pd.concat(frames)
    per_prompt = df.groupby(["seed", "aspect", "style", "prompt_id"])["score"].median()
    medians = per_prompt.groupby(["aspect", "style"]).median()
    for aspect, expected in paper.items():
        got = np.array([medians[(aspect, s)] for s in STYLES], dtype=float)
        assert np.all(np.abs(got - expected) <= 1), (aspect, got)
        assert np.sum(got != expected) <= 1, (aspect, got)


def test_scores_follow_the_cumulative_logit(demo):
    """Without random effects, score frequencies match F(theta_k - eta) differences."""
    eta = -0.7
    params = SimParams(effects={"style:histopathology": eta, "detail:detailed": 0.0},
                       rater_sd=0.0, prompt_sd=0.0, missing=0.0)
    df = simulate_ratings(demo, 200, n_prompts=60, params=params, seed=4, aspects=["style"],
                          conditions=["sharp"])
    scores = df.loc[df["style"] == "histopathology", "score"].astype(int).to_numpy()
    cdf = np.append(expit(np.array(PAPER_DEFAULTS["style"].cutpoints) - eta), 1.0)
    expected = np.diff(cdf, prepend=0.0)
    observed = np.bincount(scores, minlength=5) / len(scores)
    se = np.sqrt(expected * (1 - expected) / len(scores))
    assert np.all(np.abs(observed - expected) < 4 * se), (observed, expected)


@pytest.mark.slow
def test_configured_effects_are_recovered(demo):
    """The mixed model (checked against R elsewhere) recovers the configured effects."""
    from glidemed.analysis.mixed import fit_clmm

    params = SimParams(effects={"style:histopathology": 1.0, "style:radiology": -1.0,
                                "detail:detailed": 0.5, "condition:soft": -0.8},
                       rater_sd=0.5, prompt_sd=0.6, missing=0.0)
    df = simulate_ratings(demo, 12, n_prompts=180, params=params, seed=7, aspects=["style"])
    result = fit_clmm(df, "score ~ style_group + detail + condition + (1|rater) + (1|prompt_id)",
                      "style")
    table = result.table.set_index("term")
    truth = {"style_group": {"histopathology": 1.0, "radiology": -1.0},
             "detail": {"detailed": 0.5, "short": 0.0}, "condition": {"sharp": 0.0, "soft": -0.8}}
    intercept = 0.0  # latent value of the reference levels
    for factor, values in truth.items():
        (term,) = [t for t in table.index if t.startswith(f"{factor}[T.")]
        level = term[len(factor) + 3:-1]
        (reference,) = set(values) - {level}
        row = table.loc[term]
        expected = values[level] - values[reference]
        assert abs(row["estimate"] - expected) < 3 * row["se"], (term, row["estimate"], expected)
        intercept += values[reference]
    cuts = table[table["kind"] == "cutpoint"]["estimate"].to_numpy()
    np.testing.assert_allclose(cuts, np.array(PAPER_DEFAULTS["style"].cutpoints) - intercept,
                               atol=0.35)
    assert table.loc["sd(prompt_id)", "estimate"] == pytest.approx(0.6, abs=0.2)
    assert table.loc["sd(rater)", "estimate"] == pytest.approx(0.5, abs=0.3)


def test_group_medians_follow_effects(demo):
    """A lower latent effect gives lower scores; style keys beat their group."""
    params = SimParams(effects={"style:radiology": -3.0, "style:ct": 2.0})
    df = simulate_ratings(demo, 5, params=params, seed=1)
    means = df.groupby("style")["score"].mean()
    assert means["xray"] < means["histopathology"] < means["ct"]


def test_aspect_specific_effect_wins(demo):
    model = build_model(demo, SimParams(effects={"style:xray": -1.0, "content/style:xray": 2.0}),
                        conditions=["sharp"])
    xray = np.array([p.style == "xray" for p in model.prompts])[model.panel_prompt]
    short = np.array([p.detail == "short" for p in model.prompts])[model.panel_prompt]
    assert set(model.fixed[xray & short, 0]) == {-1.0}  # style aspect
    assert set(model.fixed[xray & short, 1]) == {2.0}  # content aspect


def test_unknown_styles_map_by_group(make_study):
    study = load_study(make_study())  # styles 'histo' (own group) and 'xray' (radiology)
    model = build_model(study, conditions=["alpha"], aspects=["style"])
    by_style = {p.style: model.fixed[i * 1, 0] for i, p in enumerate(model.prompts)
                if p.detail == "short"}
    table = PAPER_DEFAULTS["style"].styles
    assert by_style["xray"] == table["xray"]  # known key
    assert by_style["histo"] == pytest.approx(np.mean(
        [table[s] for s in ("microscopy", "histopathology", "photo", "poster", "illustration")]))


def test_ratings_table_shape_and_determinism(demo):
    params = SimParams(missing=0.1, dropout=0.5, flag_rate=0.1)
    a = simulate_ratings(demo, 6, params=params, seed=3)
    b = simulate_ratings(demo, 6, params=params, seed=3)
    c = simulate_ratings(demo, 6, params=params, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["score"].equals(c["score"])
    assert list(a.columns) == TIDY_COLUMNS + ["nonsensical"]
    assert str(a["score"].dtype) == "Int64"
    missing = a["exclusion"] == "missing"
    assert missing.any() and a.loc[missing, "score"].isna().all()
    assert a.loc[~missing, "score"].notna().all()
    assert a["nonsensical"].any()
    full = 36 * 2  # panels x aspects
    per_rater = a.groupby("rater").size()
    assert (per_rater < full).any(), "expected a rater who dropped out"
    assert per_rater.max() == full


def test_design_prompts_balanced_and_extended(kather):
    few = design_prompts(kather, 16)
    assert pd.Series([p.style for p in few]).value_counts().tolist() == [2] * 8
    assert sorted(p.detail for p in few) == ["detailed"] * 8 + ["short"] * 8
    many = design_prompts(kather, 600)
    ids = [p.id for p in many]
    assert len(set(ids)) == 600 and any(i.endswith("~2") for i in ids)
    with pytest.raises(AnalysisError, match="at least 1"):
        design_prompts(kather, 0)


def test_bad_parameters_are_reported(demo, tmp_path):
    with pytest.raises(AnalysisError, match="no style 'foo'"):
        simulate_ratings(demo, 2, params=SimParams(effects={"style:foo": 1.0}))
    with pytest.raises(AnalysisError, match="dropout"):
        simulate_ratings(demo, 2, params=SimParams(dropout=1.5))
    with pytest.raises(AnalysisError, match="do not fit aspect"):
        simulate_ratings(demo, 2, params=SimParams(cutpoints=(0.0, 1.0)))
    with pytest.raises(AnalysisError, match="FACTOR:LEVEL"):
        parse_effect("style=1")
    assert parse_effect("Content/Style:xray=-2") == ("content/style:xray", -2.0)
    bad = tmp_path / "params.toml"
    bad.write_text('rater_sd = "big"\nsurprise = 1\n[effects]\n"style:xray" = -1\n')
    with pytest.raises(AnalysisError, match=r"params.toml: 2 problem\(s\).*surprise.*rater_sd"):
        load_params(bad)


def test_params_file_and_overrides(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"rater_sd": 0.2, "dropout": 0.3,
                                "effects": {"condition:soft": -0.5}}))
    params = make_params(path, ["style:xray=-1.5"], dropout=0.1, missing=None)
    assert params.rater_sd == 0.2 and params.dropout == 0.1 and params.missing == 0.002
    assert params.effects == {"condition:soft": -0.5, "style:xray": -1.5}


# ---------------------------------------------------------------- response files

def _validator():
    cls = jsonschema.validators.validator_for(SCHEMA)
    return cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)


def test_response_files_are_valid_and_pass_ingest(built, tmp_path):
    study, _, key, _ = built
    params = SimParams(dropout=0.5, missing=0.05, revise=0.2)
    paths = simulate_responses(study, key, 6, tmp_path, seed=11, params=params)
    assert len(paths) == 6
    validator = _validator()
    responses = [json.loads(p.read_text()) for p in paths]
    panel_images = [sorted(key["panels"][t]["images"]) for t in sorted(key["panels"])]
    for response in responses:
        validator.validate(response)
        assert chain_problems(response) == []
        assert response["build_hash"] == key["build_hash"]
        # order, images and repeats are what the survey page gives this rater
        plan = rater_plan(key["build_hash"], response["rater"]["id"], panel_images,
                          study.images_per_panel, study.survey.repeat_panels)
        tokens = sorted(key["panels"])
        assert response["order"] == [tokens[p["panel"]] for p in plan]
        for panel in response["panels"]:
            assert panel["images"] == plan[panel["position"]]["images"]
            assert panel["repeat"] == plan[panel["position"]]["repeat"]
        # ratings are the replay of the events
        state = replay(response["events"])
        for panel in response["panels"]:
            answered = {k: v for k, v in panel["ratings"].items() if v is not None}
            assert answered == state.get(panel["position"], {"ratings": {}})["ratings"]
        assert set(response["rater"]["profile"]) == {"specialty", "years"}
    assert sum(r["panels"][0]["repeat"] is False for r in responses) == 6
    assert any(sum(p["repeat"] for p in r["panels"]) == 3 for r in responses)
    partial = [r for r in responses if len(r["panels"]) < len(r["order"])]
    assert partial and all(not r["complete"] and r["completed"] is None for r in partial)
    assert any(v is None for r in responses for p in r["panels"] for v in p["ratings"].values())
    corrected = [r for r in responses if len(r["events"]) > sum(
        v is not None for p in r["panels"] for v in p["ratings"].values())
        + sum(sum(p["flags"].values()) + bool(p["comment"]) for p in r["panels"])]
    assert corrected, "expected answers changed after the fact"

    ratings, ledger, profiles = ingest_responses(study, key, paths)
    assert set(ledger["status"]) <= {"accepted", "partial"}
    assert (ledger["status"] == "partial").any()
    assert ratings["rater"].nunique() == 6 and len(profiles) == 6
    assert ratings["repeat"].any()
    n_given = sum(v is not None for r in responses for p in r["panels"] for v in p["ratings"].values())
    assert ratings["score"].notna().sum() == n_given


def test_complete_files_without_gaps(built, tmp_path):
    study, _, key, _ = built
    params = SimParams(missing=0.0, dropout=0.0)
    paths = simulate_responses(study, key, 3, tmp_path, seed=1, params=params)
    responses = [json.loads(p.read_text()) for p in paths]
    assert all(r["complete"] and r["completed"] for r in responses)
    assert all(len(r["panels"]) == len(r["order"]) == len(key["panels"]) + 3 for r in responses)
    _, ledger, _ = ingest_responses(study, key, paths)
    assert list(ledger["status"]) == ["accepted"] * 3


def test_response_files_are_deterministic(built, tmp_path):
    study, _, key, _ = built
    first = simulate_responses(study, key, 2, tmp_path / "a", seed=5)
    again = simulate_responses(study, key, 2, tmp_path / "b", seed=5)
    other = simulate_responses(study, key, 2, tmp_path / "c", seed=6)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]


def test_key_of_another_study_is_refused(built, demo, tmp_path):
    _, _, key, _ = built
    with pytest.raises(AnalysisError, match="belongs to study 'simbuild'"):
        simulate_responses(demo, key, 2, tmp_path)


# ---------------------------------------------------------------- command line

def test_cli_simulate(built, tmp_path):
    study, _, _, env = built
    runner = CliRunner()
    result = runner.invoke(main, ["simulate", str(study.path), "--raters", "3", "--seed", "2",
                                  "--effect", "style:xray=-1.5", "--dropout", "0.2"], env=env)
    assert result.exit_code == 0, result.output
    out = Path(env["GLIDEMED_BUILD_DIR"]) / "simbuild" / "responses"
    assert sorted(p.name for p in out.iterdir()) == [
        "response-sim-01.json", "response-sim-02.json", "response-sim-03.json"]
    result = runner.invoke(main, ["simulate", str(study.path), "--raters", "2"], env=env)
    assert result.exit_code == 0
    assert "also holds 1 simulated file(s) from an earlier run (response-sim-03.json)" in result.output
    result = runner.invoke(main, ["simulate", str(study.path), "--raters", "2", "--out",
                                  str(tmp_path / "x"), "--effect", "style:nope=1"], env=env)
    assert result.exit_code == 1 and "no style 'nope'" in result.output
    assert "Traceback" not in result.output


def test_cli_simulate_before_build(demo, tmp_path):
    result = CliRunner().invoke(main, ["simulate", str(demo.path), "--raters", "2"],
                                env={"GLIDEMED_BUILD_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "run glidemed build demo first" in result.output
    assert str(tmp_path / "demo" / "key" / "key.json") in result.output
