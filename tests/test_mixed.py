"""The cumulative link mixed model against R's ordinal::clmm, its gradient, bad inputs and
the coverage of its confidence intervals on simulated studies with known effects."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from clmm_sim import CUTPOINTS, DETAIL_EFFECTS, STYLE_EFFECTS, simulate_clmm
from conftest import ROOT, require_kather_xlsx

from glidemed.analysis import mixed
from glidemed.analysis.formula import parse_formula
from glidemed.analysis.mixed import fit_clmm
from glidemed.errors import AnalysisError

REFERENCE = ROOT / "tests" / "reference"
KATHER_FORMULA = "score ~ style + detail + (1|rater) + (1|prompt_id)"
# the sheet's 8 styles, 34 prompts each, in sheet order (as in clmm_kather2022.R)
KATHER_STYLES = ["microscopy", "histopathology", "xray", "mri", "ct", "photo", "poster",
                 "illustration"]


def kather_tidy() -> pd.DataFrame:
    """The published ratings as a tidy table, built exactly as clmm_kather2022.R builds it."""
    raw = pd.read_excel(require_kather_xlsx(), sheet_name="raw data", dtype=str)
    rows = []
    for i, row in raw.iterrows():
        for obs in (1, 2, 3):
            for aspect, column in (("style", "Style"), ("content", "Content")):
                value = str(row[f"{column}_Observer{obs}"]).strip()
                ok = value in {"0", "1", "2", "3", "4"}
                rows.append({"rater": f"observer{obs}", "prompt_id": f"p{i + 1:03d}",
                             "style": KATHER_STYLES[i // 34],
                             "detail": "detailed" if "," in row["Prompt"] else "short",
                             "aspect": aspect, "score": int(value) if ok else pd.NA,
                             "exclusion": "" if ok else value})
    df = pd.DataFrame(rows)
    df["score"] = df["score"].astype("Int64")
    return df


def r_name(term: str) -> str:
    """'style[T.mri]' -> R's 'stylemri'."""
    match = re.fullmatch(r"(\w+)\[T\.(.+)\]", term)
    return match.group(1) + match.group(2)


def assert_matches_r(result, ref: dict) -> None:
    table = result.table.set_index("term")
    assert result.converged and ref["converged"]
    assert result.n == ref["n"]
    assert result.loglik == pytest.approx(ref["loglik"], abs=0.05)
    effects = table[table["kind"] == "effect"]
    assert sorted(r_name(t) for t in effects.index) == sorted(ref["beta"])
    for term, row in effects.iterrows():
        want = ref["beta"][r_name(term)]
        assert abs(row["estimate"] - want) <= max(0.02, 0.02 * abs(want)), term
        assert row["se"] == pytest.approx(ref["se"][r_name(term)], rel=0.02), term
    cuts = table[table["kind"] == "cutpoint"]
    assert list(cuts.index) == list(ref["cutpoints"])
    for term, row in cuts.iterrows():
        want = ref["cutpoints"][term]
        assert abs(row["estimate"] - want) <= max(0.02, 0.02 * abs(want)), term
        assert row["se"] == pytest.approx(ref["cutpoint_se"][term], rel=0.02), term
    sds = table[table["kind"] == "random_sd"]
    assert sorted(sds.index) == sorted(f"sd({g})" for g in ref["sd"])
    for group, want in ref["sd"].items():
        assert sds.loc[f"sd({group})", "estimate"] == pytest.approx(want, rel=0.05), group


@pytest.mark.parametrize("aspect", ["style", "content"])
def test_published_ratings_match_r(aspect):
    ref = json.loads((REFERENCE / "clmm_kather2022.json").read_text())[aspect]
    result = fit_clmm(kather_tidy(), KATHER_FORMULA, aspect)
    assert result.model == "mixed" and result.aspect == aspect
    assert result.formula == "score ~ style + detail + (1|rater) + (1|prompt_id)"
    assert_matches_r(result, ref)
    # effects: Wald CIs and odds ratios follow from estimate and SE
    effects = result.table[result.table["kind"] == "effect"]
    assert np.allclose(effects["ci_high"] - effects["estimate"], 1.959964 * effects["se"])
    assert np.allclose(effects["odds_ratio"], np.exp(effects["estimate"]))
    assert any("3 levels only" in note for note in result.notes)


def test_legacy_import_gives_the_same_fit():
    """The spreadsheet through glidemed's own import (study prompt ids) fits the same model."""
    from glidemed.analysis.legacy import read_legacy_spreadsheet
    from glidemed.study import load_study

    df = read_legacy_spreadsheet(load_study(ROOT / "surveys" / "kather2022" / "study.toml"),
                                 require_kather_xlsx())
    ref = json.loads((REFERENCE / "clmm_kather2022.json").read_text())["content"]
    assert_matches_r(fit_clmm(df, KATHER_FORMULA, "content"), ref)


@pytest.mark.parametrize("model", ["crossed", "three", "prompt_only"])
def test_simulated_data_match_r(model):
    ref = json.loads((REFERENCE / "clmm_simulated.json").read_text())[model]
    df = pd.read_csv(REFERENCE / "clmm_simulated.csv", dtype={"topic": str})
    formula = ref["formula"].replace(" | ", "|")
    assert_matches_r(fit_clmm(df, formula, None), ref)


def test_gradient_is_exact():
    df = pd.read_csv(REFERENCE / "clmm_simulated.csv")
    formula = parse_formula("score ~ style + detail + (1|rater) + (1|prompt_id) + (1|topic)")
    model = mixed._Laplace(mixed._prepare(df, formula, None))
    par = mixed._start_values(model) + np.random.default_rng(3).normal(0, 0.3, model.n_par)
    _, grad = model.loglik(par, gradient=True)
    numeric = np.empty_like(par)
    for j in range(len(par)):
        step = np.zeros_like(par)
        step[j] = 1e-5
        numeric[j] = (model.loglik(par + step) - model.loglik(par - step)) / 2e-5
    assert np.allclose(grad, numeric, rtol=1e-5, atol=1e-5)


def small() -> pd.DataFrame:
    return simulate_clmm(seed=5, n_raters=4, n_topics=6)


@pytest.mark.parametrize("formula, aspect, message", [
    ("score ~ style + colour + (1|rater)", "style", "colour name no column"),
    ("score ~ style + (1|judge)", "style", "judge name no column"),
    ("score ~ style", "style", "no random term"),
    ("score ~ style + (1|rater)", "content", "no ratings of aspect 'content'"),
])
def test_bad_formula_or_aspect(formula, aspect, message):
    with pytest.raises(AnalysisError, match=message):
        fit_clmm(small(), formula, aspect)


def test_random_effect_with_one_level():
    df = small()
    df = df[df["rater"] == "r00"]
    with pytest.raises(AnalysisError, match=r"\(1\|rater\) has a single level \('r00'\)"):
        fit_clmm(df, "score ~ style + (1|rater) + (1|prompt_id)", "style")


def test_all_scores_in_one_level():
    df = small().assign(score=2)
    with pytest.raises(AnalysisError, match="all .* scores are 2"):
        fit_clmm(df, "score ~ style + (1|rater)", "style")


def test_unused_levels_removed_and_single_level_term_dropped():
    df = small()
    df["score"] = df["score"].map({0: 0, 1: 0, 2: 2, 3: 4, 4: 4})
    df["condition"] = "clip"
    result = fit_clmm(df, "score ~ style + condition + (1|rater) + (1|prompt_id)", "style")
    cuts = result.table[result.table["kind"] == "cutpoint"]["term"].tolist()
    assert cuts == ["0|2", "2|4"]
    assert result.formula == "score ~ style + (1|rater) + (1|prompt_id)"
    assert any("'condition' dropped" in note for note in result.notes)


def test_excluded_and_other_aspects_left_out():
    df = small()
    other = df.assign(aspect="content", score=0)
    excluded = df.head(10).assign(exclusion="nonsensical", score=pd.NA)
    both = pd.concat([df, other, excluded], ignore_index=True)
    result = fit_clmm(both, "score ~ style + (1|rater) + (1|prompt_id)", "style")
    alone = fit_clmm(df, "score ~ style + (1|rater) + (1|prompt_id)", "style")
    assert result.n == len(df)
    assert result.loglik == pytest.approx(alone.loglik, abs=1e-8)


def test_separation_reports_the_level():
    df = small()
    df.loc[df["style"] == "b", "score"] = 4
    with pytest.raises(AnalysisError, match=r"separation.*level 'b' of 'style'.*highest.*drop"):
        fit_clmm(df, "score ~ style + (1|rater) + (1|prompt_id)", "style")
    result = fit_clmm(df, "score ~ style + (1|rater) + (1|prompt_id)", "style", strict=False)
    assert not result.converged and any("separation" in note for note in result.notes)
    df = small()
    b = df["style"] == "b"
    df.loc[b, "score"] = df.loc[b, "score"].clip(lower=3)
    df.loc[~b, "score"] = df.loc[~b, "score"].clip(upper=3)
    with pytest.raises(AnalysisError, match=r"every score of level 'b' of 'style' is at or above"):
        fit_clmm(df, "score ~ style + (1|rater) + (1|prompt_id)", "style")


def test_non_convergence_is_an_error_that_suggests_dropping_a_term(monkeypatch):
    monkeypatch.setattr(mixed, "MAX_ITER", 1)
    monkeypatch.setattr(mixed, "_polish", lambda model, par, hess, conv, msg: (par, hess, conv, msg))
    with pytest.raises(AnalysisError, match=r"did not converge: .*dropping a term, e\.g\. \(1\|"):
        fit_clmm(small(), "score ~ style + detail + (1|rater) + (1|prompt_id)", "style")
    result = fit_clmm(small(), "score ~ style + detail + (1|rater) + (1|prompt_id)", "style",
                      strict=False)
    assert not result.converged and any("did not converge" in note for note in result.notes)


def test_zero_variance_is_reported_at_the_boundary():
    df = simulate_clmm(seed=2, n_raters=6, n_topics=8)
    # a grouping that has nothing to do with the scores
    df["batch"] = np.random.default_rng(0).choice(["x", "y", "z"], len(df))
    result = fit_clmm(df, "score ~ style + (1|batch) + (1|prompt_id)", "style")
    row = result.table.set_index("term").loc["sd(batch)"]
    assert row["estimate"] == 0 and np.isnan(row["se"]) and np.isnan(row["ci_low"])
    assert any("(1|batch) estimated at zero" in note for note in result.notes)
    assert result.converged


@pytest.mark.slow
def test_confidence_intervals_cover_the_true_effects():
    """95% Wald CIs of the fixed effects cover the simulated values at close to 95%, and the
    estimates recover the simulated effects (no visible bias)."""
    effects = {f"style[T.{s}]": v for s, v in STYLE_EFFECTS.items() if s != "a"}
    effects["detail[T.short]"] = DETAIL_EFFECTS["short"]
    cuts = {f"{k}|{k + 1}": c for k, c in enumerate(CUTPOINTS)}
    truth = {**effects, **cuts}
    covered = {t: [] for t in truth}
    estimates = {t: [] for t in truth}
    sds = []
    for seed in range(40):
        df = simulate_clmm(seed=1000 + seed, n_raters=6, n_topics=10, sd_rater=0.6, sd_prompt=1.0)
        table = fit_clmm(df, KATHER_FORMULA, "style").table.set_index("term")
        for term, value in truth.items():
            covered[term].append(table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"])
            estimates[term].append(table.loc[term, "estimate"])
        sds.append(table.loc[["sd(rater)", "sd(prompt_id)"], "estimate"].to_numpy())
    effect_coverage = np.mean([covered[t] for t in effects])
    assert 0.89 <= effect_coverage <= 0.99, effect_coverage
    # cut-points share the rater mean, whose SD (ML, 6 raters) is estimated a little low
    cut_coverage = np.mean([covered[t] for t in cuts])
    assert 0.82 <= cut_coverage <= 0.99, cut_coverage
    for term, value in truth.items():
        assert np.mean(estimates[term]) == pytest.approx(value, abs=0.15), term
    assert np.mean(sds, axis=0) == pytest.approx([0.6, 1.0], rel=0.2)


@pytest.mark.slow
def test_recovers_the_effects_of_glidemeds_simulator():
    """Ratings from glidemed.simulate (the paper's design, known effects): the mixed model's
    95% CIs contain the simulated style, detail and condition effects at about 95%."""
    from glidemed.simulate import SimParams, simulate_ratings
    from glidemed.study import load_study

    study = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    styles = {"microscopy": 0.0, "histopathology": 0.7, "xray": -1.2, "mri": -2.0, "ct": -1.6,
              "photo": -0.5, "poster": 1.0, "illustration": 1.3}
    effects = {f"style:{s}": v for s, v in styles.items()}
    effects.update({"detail:short": 0.0, "detail:detailed": 0.6, "condition:clip": 0.0,
                    "condition:cfg": -0.5})
    truth = {f"style[T.{s}]": v for s, v in styles.items() if s != "microscopy"}
    truth.update({"detail[T.detailed]": 0.6, "condition[T.cfg]": -0.5})
    formula = "score ~ style + detail + condition + (1|rater) + (1|prompt_id)"
    covered, errors = [], {t: [] for t in truth}
    for seed in range(15):
        df = simulate_ratings(study, 5, n_prompts=64, params=SimParams(effects=effects), seed=seed,
                              aspects=["style"])
        # the reference levels of the truth above: microscopy, short, clip
        df["style"] = pd.Categorical(df["style"], categories=list(styles))
        df["detail"] = pd.Categorical(df["detail"], categories=["short", "detailed"])
        df["condition"] = pd.Categorical(df["condition"], categories=["clip", "cfg"])
        table = fit_clmm(df, formula, "style").table.set_index("term")
        for term, value in truth.items():
            covered.append(table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"])
            errors[term].append(table.loc[term, "estimate"] - value)
    assert np.mean(covered) >= 0.88, np.mean(covered)
    for term, error in errors.items():
        assert abs(np.mean(error)) < 0.3, term


def test_data_that_once_broke_the_cholesky_step_match_r():
    """10 raters x 18 prompts simulated with the demo defaults (seed 141): the Schur
    complement lost positive definiteness to rounding during the search (LinAlgError)."""
    ref = json.loads((REFERENCE / "clmm_seed141.json").read_text())
    df = pd.read_csv(REFERENCE / "clmm_seed141.csv")
    assert_matches_r(fit_clmm(df, ref["formula"].replace(" | ", "|"), "style"), ref)
