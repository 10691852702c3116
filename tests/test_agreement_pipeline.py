"""`glidemed analyze` with automated scores: the images each rater saw, report, summary, and
the refusal to join scores of older images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from glidemed.analysis.agreement import seen_images
from glidemed.analysis.ingest import ingest_responses
from glidemed.cli import main
from glidemed.generate.runner import run_generation
from glidemed.paths import analysis_dir, images_dir, key_dir, responses_dir, scores_dir
from glidemed.scores.run import run_scoring
from glidemed.simulate import simulate_responses
from glidemed.study import load_study
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key
from scores_factory import write_small_study
from tiny_clip import save_tiny_open_clip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A small study generated, built, rated by 4 simulated raters and scored by a tiny CLIP."""
    root = tmp_path_factory.mktemp("agree")
    env = {"GLIDEMED_BUILD_DIR": str(root / "build"), "HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        study = load_study(write_small_study(root / "study", images_per_prompt=3))
        run_generation(study, images_dir(study), progress=False)
        build_survey(study, workers=1)
        key = load_key(key_dir(study) / "key.json")
        simulate_responses(study, key, 4, responses_dir(study), seed=5)
        clip = save_tiny_open_clip(root / "oc")
        run_scoring(study, [f"oc=local-dir:{clip}"], progress=False, device="cpu")
        yield study, root, env
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_rater_plan_gives_the_images_of_each_response(scored):
    study, root, env = scored
    key = load_key(key_dir(study) / "key.json")
    df, _, _ = ingest_responses(study, key, [responses_dir(study)])
    seen = seen_images(study, df, key)
    for path in sorted(responses_dir(study).glob("*.json")):
        data = json.loads(path.read_text())
        rater = data["rater"]["id"]
        for panel in data["panels"]:
            if panel["repeat"]:
                continue
            files = {key.panels[panel["token"]].images[t] for t in panel["images"]}
            mine = seen[(seen["rater"] == rater) & (seen["panel"] == panel["token"])]
            assert set(mine["file"]) == files and len(mine) == study.images_per_panel


@pytest.fixture(scope="module")
def analysed(scored):
    """`glidemed analyze` in a fresh process, which must not import torch or a model library."""
    study, root, env = scored
    code = ("import sys; from glidemed.cli import main; "
            f"main(['analyze', {str(study.path)!r}, '--bootstrap', '40'], standalone_mode=False); "
            "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'torchmetrics') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return study, result.stdout.strip().splitlines()[-1]


def test_analysis_with_scores_never_imports_torch(analysed):
    assert analysed[1] == "[]"


def test_analyze_adds_the_agreement(analysed):
    study = analysed[0]
    out = analysis_dir(study)
    for name in ("agreement.csv", "agreement.tex", "agreement_models.csv",
                 "agreement_recommendation.csv", "figures/agreement.png", "figures/agreement.svg"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "agreement.csv")
    metrics = {f"{m}:oc" for m in ("clipscore", "style_zeroshot", "style_zeroshot_top1", "retrieval")}
    assert set(table["metric"]) == metrics
    assert set(table["style"]) == {"histo", "xray", "all"}
    assert set(table["aspect"]) == {"style", "content"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agreement"]["agreement"][0]["metric"] in metrics
    assert summary["agreement"]["models"][0]["name"] == "oc"
    assert "agreement.csv" in summary["outputs"]
    soup = BeautifulSoup((out / "report.html").read_text(), "html.parser")
    section = soup.find("h2", id="agreement")
    assert section is not None and "Automated scores" in section.get_text()
    assert soup.find("table", id="table-agreement_recommendation") is not None
    assert soup.find("figure", id="fig-agreement") is not None
    # each rating's score is the mean over the images that rater saw
    ratings = pd.read_csv(out / "ratings.csv")
    assert table.loc[table["style"] == "all", "n_ratings"].max() <= ratings["score"].notna().sum()


def test_scores_of_older_images_are_refused(scored, tmp_path):
    study, root, env = scored
    scores_file = scores_dir(study) / "scores.csv"
    meta_path = scores_file.with_suffix(".json")
    saved = meta_path.read_text()
    meta = json.loads(saved)
    meta["images"][0]["sha256"] = "0" * 64  # as if scored before the image was re-made
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "scores.csv").write_bytes(scores_file.read_bytes())
    (stale / "scores.json").write_text(json.dumps(meta))
    out = tmp_path / "analysis"
    result = CliRunner().invoke(main, ["analyze", str(study.path), "--bootstrap", "0", "--out",
                                       str(out), "--scores", str(stale / "scores.csv")], env=env)
    assert result.exit_code == 1
    assert "differ from the manifest" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    # the default scores file: the analysis runs, the report says why there is no agreement
    try:
        meta_path.write_text(json.dumps(meta))
        result = CliRunner().invoke(main, ["analyze", str(study.path), "--bootstrap", "0", "--out",
                                           str(out)], env=env)
        assert result.exit_code == 0, result.output
        assert not (out / "agreement.csv").exists()
        assert "automated scores not analysed" in (out / "report.html").read_text()
    finally:
        meta_path.write_text(saved)


@pytest.mark.parametrize("change, message", [
    (lambda meta: meta.update(study_id="other"), "scores of study 'other'"),
    (lambda meta: meta.update(schema="something/9"), "not a glidemed scores description"),
])
def test_foreign_scores_files_are_refused(scored, tmp_path, change, message):
    study, root, env = scored
    source = scores_dir(study)
    meta = json.loads((source / "scores.json").read_text())
    change(meta)
    (tmp_path / "scores.csv").write_bytes((source / "scores.csv").read_bytes())
    (tmp_path / "scores.json").write_text(json.dumps(meta))
    result = CliRunner().invoke(main, ["analyze", str(study.path), "--bootstrap", "0", "--out",
                                       str(tmp_path / "a"), "--scores", str(tmp_path / "scores.csv")],
                                env=env)
    assert result.exit_code == 1 and message in result.output


def _analyze_copy(scored, tmp_path, meta_text: str | None = None, csv_text: str | None = None):
    """`analyze --scores` of a copy of the study's scores, its scores.json and/or scores.csv
    replaced; returns the CLI result and the output folder."""
    study, root, env = scored
    source = scores_dir(study)
    (tmp_path / "scores.json").write_text(meta_text if meta_text is not None else
                                          (source / "scores.json").read_text())
    (tmp_path / "scores.csv").write_text(csv_text if csv_text is not None else
                                         (source / "scores.csv").read_text())
    out = tmp_path / "a"
    result = CliRunner().invoke(main, ["analyze", str(study.path), "--bootstrap", "0", "--out",
                                       str(out), "--scores", str(tmp_path / "scores.csv")], env=env)
    return result, out


def _meta(scored) -> dict:
    return json.loads((scores_dir(scored[0]) / "scores.json").read_text())


def _foreign_image(meta: dict) -> None:
    meta["images"].append(dict(meta["images"][0], prompt_id="not-a-prompt"))


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(images=[]), "images: [] should be non-empty"),
    (lambda m: m.pop("images"), "'images' is a required property"),
    (lambda m: m.update(images={"a": 1}), "images: {'a': 1} is not of type 'array'"),
    (lambda m: m["images"][0].update(index="0"), "images[0].index: '0' is not of type 'integer'"),
    (lambda m: m["images"][0].update(index=-1), "images[0].index: -1 is less than the minimum"),
    (lambda m: m["images"][0].update(sha256="abc"), "images[0].sha256: 'abc' does not match"),
    (lambda m: m.update(study_id=7), "study_id: 7 is not of type 'string'"),
    (lambda m: m["images"].pop(), "are not among the scored images"),
    (_foreign_image, "not-a-prompt/0 (not in the manifest)"),
])
def test_scores_descriptions_of_any_shape_must_match_the_images(scored, tmp_path, change, message):
    meta = _meta(scored)
    change(meta)
    result, out = _analyze_copy(scored, tmp_path, meta_text=json.dumps(meta))
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ('{"schema": "glidemed-scores/1", "study_id": "\\ud800"}', "not valid Unicode"),
    ('{"schema": "glidemed-scores/1", "schema": "glidemed-scores/1"}', "appears twice"),
    ('{"schema": "glidemed-scores/1", "study_id": NaN}', "NaN is not a JSON number"),
    ("[1, 2]", "not a glidemed scores description"),
])
def test_scores_descriptions_are_decoded_as_outside_json(scored, tmp_path, text, message):
    result, out = _analyze_copy(scored, tmp_path, meta_text=text)
    assert result.exit_code == 1 and message in result.output and "scores.json" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_every_bad_row_of_scores_csv_is_named_at_once(scored, tmp_path):
    study = scored[0]
    table = pd.read_csv(scores_dir(study) / "scores.csv", dtype=str, keep_default_na=False)
    last = table["index"].astype(int).max()
    table.loc[0, "value"] = "nan"
    table.loc[1, "value"] = "inf"
    table.loc[2, "value"] = "high"
    table.loc[3, "index"] = str(last + 1)  # an image that was never scored
    table.loc[4, "index"] = "x"
    table.loc[5, "condition"] = "elsewhere"
    table.loc[7, "index"] = table.loc[6, "index"]
    table.loc[7, ["condition", "prompt_id", "metric"]] = table.loc[6, ["condition", "prompt_id", "metric"]]
    result, out = _analyze_copy(scored, tmp_path, csv_text=table.to_csv(index=False))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "scores.csv: 7 problem(s)" in line
    for text in ["row 2: value 'nan' is not a finite number", "row 3: value 'inf'",
                 "row 4: value 'high'", f"row 5: image {table.loc[3, 'condition']}/",
                 "is not among the scored images", "row 6: index 'x' is not a whole number",
                 "row 7: unknown condition 'elsewhere'", "row 9: the same image and metric as row 8"]:
        assert text in line
    assert not out.exists()


def test_scores_csv_without_a_value_where_a_metric_has_none_is_accepted(scored, tmp_path):
    study = scored[0]
    table = pd.read_csv(scores_dir(study) / "scores.csv", dtype=str, keep_default_na=False)
    table.loc[0, "value"] = ""  # as the writer writes a metric without a value (NaN)
    result, out = _analyze_copy(scored, tmp_path, csv_text=table.to_csv(index=False))
    assert result.exit_code == 0, result.output
    assert (out / "agreement.csv").is_file()


@pytest.mark.parametrize("rows, message", [
    (["alpha,all,fid,inf,1,2,24,16,10,0"], "row 2: value 'inf' is not a finite number"),
    (["alpha,all,fid,1.5,1,2,24,16,10,0", "alpha,nowhere,fid,x,1,2,-4,16,10,0"],
     "3 problem(s): row 3: unknown style 'nowhere'; row 3: value 'x' is not a finite number; "
     "row 3: n_images '-4' is not a whole number >= 0"),
    (['alpha,all,"fid,1.5,1,2,24,16,10,0'], "cannot read the set scores table"),
])
def test_set_scores_are_checked_row_by_row(scored, tmp_path, rows, message):
    from glidemed.scores.inputs import SET_COLUMNS

    (tmp_path / "set_scores.csv").write_text("\n".join([",".join(SET_COLUMNS), *rows]) + "\n")
    result, out = _analyze_copy(scored, tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "set_scores.csv: " in result.output and message in result.output
    assert not out.exists()


def test_missing_scores_file_is_an_error(scored, tmp_path):
    study, root, env = scored
    result = CliRunner().invoke(main, ["analyze", str(study.path), "--bootstrap", "0", "--out",
                                       str(tmp_path / "a"), "--scores", str(tmp_path / "no.csv")],
                                env=env)
    assert result.exit_code == 1 and "scores file not found" in result.output
