"""Prompt variants as a study factor: several templates per style, their ids, seeds and
negative prompts, bad input, and the variant in the analysis (tables, models, key results)."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SMALL_STUDY
from response_factory import make_key

from glidemed.analysis.pipeline import run_analysis
from glidemed.cli import main
from glidemed.errors import StudyError
from glidemed.generate.runner import plan_jobs
from glidemed.simulate import simulate_responses
from glidemed.study import MAX_VARIANTS, load_study, parse_study

HISTO = 'template = "A histopathological image of {{description}}"'
VARIANTS = ('templates = ["A histopathological image of {{description}}", '
            '"H&E-stained histology slide of {{description}}, high magnification", '
            '"Microscopy of a tissue section showing {{description}}"]\n'
            'negative = "text, watermark"')


def study_text(histo: str = VARIANTS) -> str:
    return SMALL_STUDY.replace(HISTO, histo).format(images_per_prompt=4, images_per_panel=2)


def problems_of(text: str) -> list[str]:
    with pytest.raises(StudyError) as info:
        parse_study(text)
    return info.value.problems


def test_templates_expand_per_variant_and_one_variant_ids_stay():
    plain = parse_study(study_text(HISTO))
    assert [p.id for p in plain.prompts()][:2] == ["histo.lungs.short", "histo.lungs.detailed"]
    assert {p.variant for p in plain.prompts()} == {"v1"}
    study = parse_study(study_text())
    prompts = study.prompts()
    histo = [p for p in prompts if p.style == "histo"]
    assert len(histo) == 3 * 2 * 2 and len(prompts) == 12 + 4
    assert [p.id for p in histo[:5]] == ["histo.lungs.short.v1", "histo.lungs.detailed.v1",
                                         "histo.heart.short.v1", "histo.heart.detailed.v1",
                                         "histo.lungs.short.v2"]
    assert histo[4].text == "H&E-stained histology slide of the lungs, high magnification"
    assert {p.negative for p in histo} == {"text, watermark"}
    xray = [p for p in prompts if p.style == "xray"]
    assert [p.id for p in xray][0] == "xray.lungs.short.v1" and xray[0].negative == ""


def test_variants_of_a_prompt_share_their_seeds():
    study = parse_study(study_text())
    jobs = plan_jobs(study)
    seeds = {}
    for job in jobs:
        seeds.setdefault((job.condition.name, job.prompt.seed_id, job.index), set()).add(job.seed)
    assert all(len(s) == 1 for s in seeds.values())
    assert len({job.seed for job in jobs}) == len(seeds)  # other prompts, other seeds
    # a style with one template keeps the seeds it had in a study without variants
    plain = parse_study(study_text(HISTO))
    before = {(j.condition.name, j.prompt.id, j.index): j.seed for j in plan_jobs(plain)
              if j.prompt.style == "xray"}
    after = {(j.condition.name, j.prompt.seed_id, j.index): j.seed for j in jobs
             if j.prompt.style == "xray"}
    assert before == after


@pytest.mark.parametrize("histo, problem", [
    (HISTO + '\ntemplates = ["Microscopy of {{description}}"]',
     "styles[0]: give template or templates (the prompt variants), not both"),
    ("templates = []", "styles[0].templates: empty; expected at least one template"),
    ('template = ""', "styles[0].templates: empty; expected at least one template"),
    ('label2 = "x"', "styles[0].template: missing; expected a string (or templates = [...], "
                     "one per prompt variant)"),
    ('templates = ["A slide of {{description}}", "A slide"]',
     "styles[0].templates[1]: must contain '{description}', got 'A slide'"),
    ("templates = [" + ", ".join(f'"v{i} {{{{description}}}}"' for i in range(MAX_VARIANTS + 1)) + "]",
     f"styles[0].templates: {MAX_VARIANTS + 1} variants; at most {MAX_VARIANTS}"),
    ('templates = ["A {{description}}", "A {{description}}"]',
     "styles[0].templates: the same template twice"),
])
def test_bad_templates_are_one_line_each(histo, problem):
    assert problem in problems_of(study_text(histo))


def test_prompts_command_prints_the_variant(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(study_text(), encoding="utf-8")
    result = CliRunner().invoke(main, ["prompts", str(path)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows[4]["id"] == "histo.lungs.short.v2" and rows[4]["variant"] == "v2"
    assert rows[4]["negative"] == "text, watermark"


def test_negative_prompt_reaches_the_pipeline_per_image():
    from glidemed.generate.diffusers_pipeline import DiffusersGenerator

    generator = DiffusersGenerator.__new__(DiffusersGenerator)
    generator.resolved = {"steps": None, "guidance_scale": None, "negative_prompt": "blurry",
                          "width": None, "height": None}
    generator.call_params = set()
    kwargs = generator.call_arguments(["a", "b"], [None, None], ["text, watermark", None])
    assert kwargs["negative_prompt"] == ["text, watermark", "blurry"]  # the style's wins
    generator.resolved["negative_prompt"] = None
    assert "negative_prompt" not in generator.call_arguments(["a"], [None], [None])


@pytest.mark.slow
def test_the_variant_is_a_factor_of_the_analysis(tmp_path):
    path = tmp_path / "study" / "study.toml"
    path.parent.mkdir()
    path.write_text(study_text(), encoding="utf-8")
    study = load_study(path)
    key = make_key(study)
    simulate_responses(study, key, 3, tmp_path / "responses", seed=5)
    summary = run_analysis(study, [tmp_path / "responses"], tmp_path / "analysis", key=key,
                           n_boot=0)
    ratings = pd.read_csv(tmp_path / "analysis" / "ratings.csv")
    assert set(ratings.loc[ratings["style"] == "histo", "variant"]) == {"v1", "v2", "v3"}
    assert set(ratings.loc[ratings["style"] == "xray", "variant"]) == {"v1"}
    descriptives = pd.read_csv(tmp_path / "analysis" / "descriptives.csv")
    assert {"variant", "style_variant"} <= set(descriptives["by"])
    assert "histo:v3" in set(descriptives.loc[descriptives["by"] == "style_variant", "level"])
    tests = pd.DataFrame(summary["tests"])
    variant_tests = tests[tests["test"] == "wilcoxon_variant"]
    assert set(variant_tests["comparison"]) == {"v2 - v1", "v3 - v1"}
    one = variant_tests[(variant_tests["unit"] == "prompt_median") & (variant_tests["aspect"] == "style")
                        & (variant_tests["condition"] == "alpha") & (variant_tests["comparison"] == "v2 - v1")]
    medians = pd.read_csv(tmp_path / "analysis" / "prompt_medians.csv")
    medians = medians[(medians["aspect"] == "style") & (medians["condition"] == "alpha")
                      & (medians["style"] == "histo")]
    wide = medians.assign(base=medians["prompt_id"].str.rsplit(".", n=1).str[0],
                          variant=medians["prompt_id"].str.rsplit(".", n=1).str[1]
                          ).pivot(index="base", columns="variant", values="score")
    d = (wide["v2"] - wide["v1"]).dropna().to_numpy()
    from scipy import stats
    expected = stats.wilcoxon(d, zero_method="pratt", correction=False, method="approx")
    assert one.iloc[0]["n"] == len(d) and one.iloc[0]["p"] == pytest.approx(expected.pvalue)
    primary = [m for m in summary["models"] if m["role"] == "primary"]
    assert all(m["formula"].endswith("+ variant + (1|rater) + (1|prompt_id)") for m in primary)
    terms = {c["term"] for m in primary for c in m["coefficients"]}
    assert {"variant[T.v2]", "variant[T.v3]"} <= terms
    texts = [k["text"] for k in summary["key_results"]]
    assert any(t.startswith("Prompt variant: v2 vs v1, style: odds ratio") for t in texts)
    assert summary["design"]["variants"] == {"Histopathology": 3}
    assert "Prompt variants (templates) per style: Histopathology 3 (other styles one)" in (
        tmp_path / "analysis" / "methods.md").read_text()


def test_the_shipped_prompt_study_keeps_the_papers_templates_as_v1():
    from conftest import ROOT

    paper = {p.id: p.text for p in load_study(ROOT / "surveys" / "kather2022").prompts()}
    study = load_study(ROOT / "surveys" / "kather2022-prompts")
    prompts = study.prompts()
    assert len(prompts) == 3 * len(paper) and all(len(s.variants) == 3 for s in study.styles)
    assert {p.seed_id: p.text for p in prompts if p.variant == "v1"} == paper


# --- pre-screening ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from tiny_clip import save_tiny_open_clip

    return f"tiny=local-dir:{save_tiny_open_clip(tmp_path_factory.mktemp('clip') / 'tiny')}"


def variant_study(folder, text: str | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(text or study_text(), encoding="utf-8")
    return load_study(folder / "study.toml")


@pytest.mark.slow
def test_prescreen_ranks_variants_and_derives_a_study(tmp_path, monkeypatch, tiny_clip):
    from glidemed.prescreen import PROVENANCE, RANKING_COLUMNS, run_prescreen

    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "build"))
    study = variant_study(tmp_path / "study")
    report = run_prescreen(study, [tiny_clip], images=3, keep=1, n_boot=200, progress=False)
    folder = tmp_path / "build" / "small" / "prescreen"
    assert report.ranked and report.made == 16 * 3 and report.metric == "style_zeroshot:tiny"
    ranking = pd.read_csv(folder / "ranking.csv")
    assert list(ranking.columns) == RANKING_COLUMNS
    assert set(ranking["style"]) == {"histo"} and set(ranking["variant"]) == {"v1", "v2", "v3"}
    assert set(ranking["metric"]) == {"clipscore:tiny", "style_zeroshot:tiny",
                                      "style_zeroshot_top1:tiny", "retrieval:tiny"}
    # the means are the plain means of scores.csv per variant (an independent computation)
    scores = pd.read_csv(folder / "scores" / "scores.csv")
    histo = scores[scores["prompt_id"].str.startswith("histo.")]
    plain = histo.groupby([histo["prompt_id"].str[-2:], "metric"])["value"].mean()
    for row in ranking.itertuples():
        assert row.mean == pytest.approx(plain[(row.variant, row.metric)])
        assert row.ci_low <= row.mean <= row.ci_high
    zero = ranking[ranking["metric"] == "style_zeroshot:tiny"].set_index("variant")
    best = zero.drop(index="v1")["mean"].idxmax()
    assert report.kept == {"histo": ["v1", best]} and zero.at[best, "rank"] <= 2
    derived = load_study(folder / "study.toml")
    assert derived.id == "small-prescreened"
    assert derived.style("histo").variants == [study.style("histo").variants[0],
                                               study.style("histo").variants[int(best[1:]) - 1]]
    assert derived.style("xray").variants == study.style("xray").variants
    provenance = json.loads((folder / PROVENANCE).read_text())
    from glidemed.fileio import sha256_file
    assert provenance["source_sha256"] == sha256_file(study.path)
    assert provenance["ranking_sha256"] == sha256_file(folder / "ranking.csv")
    assert provenance["metric"] == "style_zeroshot:tiny"
    for ext in ("png", "svg", "pdf", "csv"):
        assert (folder / f"ranking_figure.{ext}").is_file()
    # again: nothing rendered or embedded anew, another metric re-ranks
    again = run_prescreen(study, [tiny_clip], images=3, keep=1, metric="clipscore",
                          n_boot=200, progress=False)
    assert again.made == 0 and again.metric == "clipscore:tiny"


@pytest.mark.parametrize("options, problem", [
    ({"keep": 3}, "--keep 3: expected 1..2, the variants a style has besides its first"),
    ({"clip": ["bad=local-dir:/nowhere/at/all"]}, "--clip: local-dir:/nowhere/at/all"),
    ({"images": 0}, "--images: expected 1..64 images per prompt variant, got 0"),
    ({"condition": "gamma"}, "--condition 'gamma': not a generated condition of the study"),
])
def test_prescreen_bad_input_renders_nothing(tmp_path, monkeypatch, tiny_clip, options, problem):
    from glidemed.errors import GlidemedError
    from glidemed.prescreen import run_prescreen

    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "build"))
    study = variant_study(tmp_path / "study")
    clip = options.pop("clip", [tiny_clip])
    with pytest.raises(GlidemedError) as info:
        run_prescreen(study, clip, progress=False, **options)
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "build" / "small" / "prescreen" / "images").exists()


def test_prescreen_needs_variants(tmp_path, tiny_clip):
    from glidemed.prescreen import PrescreenError, run_prescreen

    study = variant_study(tmp_path / "study", study_text(HISTO))
    with pytest.raises(PrescreenError, match="no style gives several templates"):
        run_prescreen(study, [tiny_clip], progress=False)


@pytest.mark.slow
def test_prescreen_command_and_the_derived_study_in_the_archive(tmp_path, monkeypatch, tiny_clip):
    from glidemed.archive.pack import _collect

    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "build"))
    study = variant_study(tmp_path / "study")
    result = CliRunner().invoke(main, ["prescreen", str(study.path), "--clip", tiny_clip,
                                       "--images", "1", "--keep", "2", "--bootstrap", "20",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "kept histo: v1, v" in result.output and "ranked by style_zeroshot:tiny" in result.output
    derived = load_study(tmp_path / "build" / "small" / "prescreen" / "study.toml")
    assert len(derived.style("histo").variants) == 3
    for stage in ("key", "survey", "analysis"):
        (tmp_path / "build" / derived.id / stage).mkdir(parents=True)
    members = _collect(derived, images=False)
    assert {"study/study.toml", "study/prescreen.json", "study/ranking.csv"} <= set(members)


def test_stratified_tau_b_is_scipys_within_one_stratum_and_counts_only_within():
    from scipy import stats

    from glidemed.analysis.prescreen_check import stratified_tau_b

    x, y = [1, 2, 3, 4, 4, 2], [2, 1, 3, 3, 4, 0]
    assert stratified_tau_b(["a"] * 6, x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    # two strata: pairs across them never count (one concordant, one discordant pair here)
    assert stratified_tau_b(["a", "a", "b", "b"], [1, 2, 10, 20], [5, 6, 2, 1]) == 0


@pytest.mark.slow
def test_analysis_of_a_prescreened_study_checks_the_prescreen(tmp_path, monkeypatch, tiny_clip):
    from glidemed.prescreen import run_prescreen

    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "build"))
    source = variant_study(tmp_path / "study")
    report = run_prescreen(source, [tiny_clip], images=2, keep=2, n_boot=50, progress=False)
    study = load_study(report.study_path)
    key = make_key(study)
    simulate_responses(study, key, 3, tmp_path / "responses", seed=2)
    summary = run_analysis(study, [tmp_path / "responses"], tmp_path / "analysis", key=key,
                           n_boot=50)
    check = summary["prescreen"]
    assert check["provenance"]["source_sha256"] and check["notes"] == []
    taus = pd.read_csv(tmp_path / "analysis" / "prescreen_tau.csv")
    assert set(taus["aspect"]) == {"style", "content"} and (taus["n_variants"] == 3).all()
    variants = pd.read_csv(tmp_path / "analysis" / "prescreen_check.csv")
    ratings = pd.read_csv(tmp_path / "analysis" / "ratings.csv")
    used = ratings[(ratings["exclusion"].isna()) & (~ratings["repeat"])]
    for row in variants.itertuples():
        mine = used[(used["aspect"] == row.aspect) & (used["style"] == row.style)
                    & (used["variant"] == row.variant)]
        assert row.expert_mean == pytest.approx(mine["score"].mean())
    texts = [k["text"] for k in summary["key_results"]]
    assert any(t.startswith("The pre-screen (style_zeroshot:tiny) against the experts") for t in texts)


# --- style x variant interaction, against R ordinal --------------------------------------------

def variants_reference():
    from conftest import ROOT

    data = pd.read_csv(ROOT / "tests" / "reference" / "variants_simulated.csv")
    data = data.assign(aspect="style", exclusion="", repeat=False)
    data["score"] = data["score"].astype("Int64")
    reference = json.loads((ROOT / "tests" / "reference" / "variants_simulated.json").read_text())
    return data, reference


def r_name(term: str) -> str:
    """'style[T.b]:variant[T.v2]' -> R's 'styleb:variantv2'."""
    return ":".join(part.replace("[T.", "").rstrip("]") for part in term.split("]:"))


@pytest.mark.parametrize("kind", ["fixed", "mixed"])
def test_style_by_variant_interaction_equals_r(kind):
    from glidemed.analysis.models import fit_model

    data, reference = variants_reference()
    want = reference[kind]
    formula = "score ~ style * variant + detail" + (" + (1|rater) + (1|prompt_id)" if kind == "mixed" else "")
    result = fit_model(data, formula, "style")
    table = result.table.set_index("term")
    effects = table[table["kind"] == "effect"]
    assert sorted(r_name(t) for t in effects.index) == sorted(want["beta"])
    assert result.loglik == pytest.approx(want["loglik"], abs=1e-3 if kind == "fixed" else 0.05)
    for term, row in effects.iterrows():
        assert row["estimate"] == pytest.approx(want["beta"][r_name(term)], abs=2e-3), term
        assert row["se"] == pytest.approx(want["se"][r_name(term)], rel=0.01), term
    # R's aliased interactions (style c has no v2, v3) are left out with a note each
    for name in ("style[T.c]:variant[T.v2]", "style[T.c]:variant[T.v3]"):
        assert any(note.startswith(f"coefficient {name} not estimable") for note in result.notes)
    assert "style:variant" in result.formula


def test_interaction_terms_in_words_and_bad_ones():
    from glidemed.analysis.formula import parse_formula
    from glidemed.analysis.labels import Labels
    from glidemed.errors import AnalysisError

    parsed = parse_formula("score ~ style * variant + detail", ["score", "style", "variant", "detail"])
    assert parsed.fixed == ("style", "variant", "style:variant", "detail")
    assert parse_formula("score ~ style:variant", ["score", "style", "variant"]).fixed == ("style:variant",)
    with pytest.raises(AnalysisError, match="name no column"):
        parse_formula("score ~ style * varaint", ["score", "style", "variant"])
    with pytest.raises(AnalysisError, match="cannot read term"):
        parse_formula("score ~ style * variant * detail", ["score", "style", "variant", "detail"])
    study = parse_study(study_text())
    assert Labels.of(study).term("style[T.xray]:variant[T.v2]", {"style": "histo", "variant": "v1"}) \
        == "Style: X-ray vs Histopathology × Prompt variant: v2 vs v1"


def test_the_prompts_demo_study_has_variants_and_a_style_without():
    from conftest import ROOT

    study = load_study(ROOT / "surveys" / "prompts-demo")
    assert [len(s.variants) for s in study.styles] == [3, 3, 1]
