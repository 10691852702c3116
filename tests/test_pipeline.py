"""End to end: generate and build a placeholder study, simulate raters, `glidemed analyze`."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from glidemed.analysis import pipeline
from glidemed.analysis.pipeline import run_analysis
from glidemed.analysis.tidy import read_ratings_csv
from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.generate.runner import run_generation
from glidemed.paths import analysis_dir, images_dir, key_dir, responses_dir
from glidemed.simulate import simulate_responses
from glidemed.study import load_study
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "surveys" / "demo" / "study.toml"
OUTPUTS = ["ratings.csv", "ledger.csv", "profiles.csv", "descriptives.csv", "descriptives.tex",
           "prompt_medians.csv", "tests.csv", "tests.tex", "pairwise.csv", "pairwise.tex",
           "ordinal.csv", "ordinal.tex", "reliability.csv", "reliability.tex",
           "bootstrap_medians.csv", "bootstrap_medians.tex", "report.html",
           "summary.json"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The demo study generated and built under a temporary build folder, with 4 simulated
    raters' response files and one file that is not a response."""
    build = tmp_path_factory.mktemp("build")
    old = os.environ.get("GLIDEMED_BUILD_DIR")
    os.environ["GLIDEMED_BUILD_DIR"] = str(build)
    try:
        study = load_study(DEMO)
        run_generation(study, images_dir(study), progress=False)
        build_survey(study, workers=1)
        key = load_key(key_dir(study) / "key.json")
        simulate_responses(study, key, 4, responses_dir(study), seed=3)
        (responses_dir(study) / "notes.txt").write_text("not a response")
        yield study, build
    finally:
        if old is None:
            os.environ.pop("GLIDEMED_BUILD_DIR", None)
        else:
            os.environ["GLIDEMED_BUILD_DIR"] = old


@pytest.fixture(scope="module")
def analysed(built):
    study, build = built
    result = CliRunner().invoke(main, ["analyze", str(DEMO), "--bootstrap", "50", "--seed", "2"],
                                env={"GLIDEMED_BUILD_DIR": str(build)})
    return study, analysis_dir(study), result


def test_cli_analyses_default_folders(analysed):
    _, out, result = analysed
    assert result.exit_code == 0, result.output
    assert "1 rejected" in result.output and "(reasons in ledger.csv)" in result.output
    assert result.output.strip().endswith(f"-> {out}/report.html")
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_summary_counts_match_tables(analysed):
    study, out, _ = analysed
    summary = json.loads((out / "summary.json").read_text())
    ratings = read_ratings_csv(out / "ratings.csv", ["nonsensical"])
    ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False)
    counts = summary["counts"]
    files = counts["files"]  # a simulated rater may leave a rating blank: partial
    assert files["rejected"] == 1 and files.get("accepted", 0) + files.get("partial", 0) == 4
    assert counts["raters"] == 4 == ratings["rater"].nunique()
    assert counts["ratings"] == len(ratings)
    usable = ratings["score"].notna() & (ratings["exclusion"] == "")
    assert counts["usable_ratings"] == usable.sum()
    assert sum(counts["exclusions"].values()) == (~usable).sum()
    assert ledger["n_ratings"].sum() == ratings["score"].notna().sum() + counts["exclusions"].get(
        "nonsensical", 0)
    notes = ledger[ledger["file"].str.endswith("notes.txt")]
    assert notes[["status", "reason"]].values.tolist() == [
        ["rejected", "invalid JSON: Expecting value at line 1, column 1"]]
    assert summary["options"] == {"model": "score ~ style + detail + condition",
                                  "nonsensical": "exclude", "flagged": "exclude",
                                  "bootstrap": 50, "seed": 2}
    for model in summary["models"]:
        assert {"formula", "aspect", "n", "loglik", "converged", "coefficients"} <= set(model)
    tests = pd.read_csv(out / "tests.csv")
    assert len(summary["tests"]) == len(tests)
    assert set(tests["unit"]) == {"prompt_median", "rating"}
    hashes = summary["outputs"]
    assert "report.html" in hashes and "figures/distribution.svg" in hashes


def test_ratings_option_reproduces_the_analysis(analysed, tmp_path):
    study, out, _ = analysed
    again = run_analysis(study, ratings=out / "ratings.csv", out_dir=tmp_path / "again",
                         n_boot=50, seed=2)
    first = json.loads((out / "summary.json").read_text())
    assert again["tests"] == first["tests"]
    assert again["counts"]["usable_ratings"] == first["counts"]["usable_ratings"]
    assert [m["coefficients"] for m in again["models"]] == [m["coefficients"] for m in first["models"]]


def test_nonsensical_zero_counts_flagged_panels(analysed, tmp_path):
    study, out, _ = analysed
    summary = run_analysis(study, ratings=out / "ratings.csv", out_dir=tmp_path / "zero",
                           nonsensical="zero", n_boot=0)
    first = json.loads((out / "summary.json").read_text())
    flagged = first["counts"]["exclusions"].get("nonsensical", 0)
    assert summary["counts"]["usable_ratings"] == first["counts"]["usable_ratings"] + flagged


def test_two_raters_fixed_model_is_primary(analysed, tmp_path):
    study, out, _ = analysed
    ratings = read_ratings_csv(out / "ratings.csv", ["nonsensical"])
    two = ratings[ratings["rater"].isin(sorted(ratings["rater"].unique())[:2])]
    summary = run_analysis(study, ratings=two, out_dir=tmp_path / "two", n_boot=0)
    assert [(m["role"], m["model"]) for m in summary["models"]] == [("primary", "fixed")] * 2
    html = (tmp_path / "two" / "report.html").read_text()
    assert "with 2 rater(s) (fewer than 3) no rater random effect is fitted" in html
    assert summary["counts"]["raters"] == 2


def test_disk_full_leaves_previous_analysis(analysed, monkeypatch):
    study, out, _ = analysed
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "render_report", full)
    with pytest.raises(AnalysisError, match="No space left on device. Nothing there was changed"):
        run_analysis(study, ratings=out / "ratings.csv", out_dir=out, n_boot=0)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_refuses_to_replace_a_foreign_folder(analysed, tmp_path):
    study, out, _ = analysed
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(AnalysisError, match="not a glidemed analysis folder"):
        run_analysis(study, ratings=out / "ratings.csv", out_dir=tmp_path, n_boot=0)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_replaces_a_folder_holding_only_the_ratings_it_analyses(analysed, tmp_path):
    """As `glidemed import-ratings` leaves the analysis folder; any other file is kept."""
    study, out, _ = analysed
    table = tmp_path / "ratings.csv"
    table.write_bytes((out / "ratings.csv").read_bytes())
    run_analysis(study, ratings=table, out_dir=tmp_path, n_boot=0)
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "ratings.csv").is_file()
    other = tmp_path / "other"
    (other / "ratings.csv").parent.mkdir()
    (other / "ratings.csv").write_bytes(table.read_bytes())
    (other / "notes.txt").write_text("precious")
    with pytest.raises(AnalysisError, match="not a glidemed analysis folder"):
        run_analysis(study, ratings=other / "ratings.csv", out_dir=other, n_boot=0)
    assert (other / "notes.txt").read_text() == "precious"


def test_no_usable_ratings_names_the_reasons(built, tmp_path):
    study, build = built
    (tmp_path / "empty.json").write_bytes(b"")
    result = CliRunner().invoke(main, ["analyze", str(DEMO), str(tmp_path / "empty.json"),
                                       "--out", str(tmp_path / "out")],
                                env={"GLIDEMED_BUILD_DIR": str(build)})
    assert result.exit_code == 1
    assert "no usable ratings in 1 response file(s): 1 file(s): empty.json: rejected (empty file)" \
        in result.output
    assert "Traceback" not in result.output
    # the ledger is written whatever happens: every file's reason, nothing else
    assert f"every file's reason is in {tmp_path / 'out' / 'ledger.csv'}" in result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ledger.csv"]
    ledger = pd.read_csv(tmp_path / "out" / "ledger.csv")
    assert ledger[["file", "status", "reason"]].values.tolist() == [
        [str(tmp_path / "empty.json"), "rejected", "empty file"]]


@pytest.mark.parametrize("args, message", [
    (["--key", "nope.json"], "nope.json: key not found"),
    (["--model", "score ~ colour"], "term(s) colour name no column"),
    (["no-such-folder"], "no-such-folder: no such response file or folder"),
    (["--ratings", "r.csv", "x.json"], "give either response files or --ratings"),
    (["--flagged", "maybe"], "Invalid value for '--flagged'"),
])
def test_cli_errors_are_one_line(built, args, message):
    _, build = built
    result = CliRunner().invoke(main, ["analyze", str(DEMO), *args],
                                env={"GLIDEMED_BUILD_DIR": str(build)})
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_published_data_full_report(kather_xlsx, tmp_path):
    study = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    summary = run_analysis(study, ratings=kather_xlsx, out_dir=tmp_path / "kather",
                           nonsensical="zero", n_boot=200)
    counts = summary["counts"]
    assert counts["raters"] == 3 and counts["ratings"] == 1632
    medians = pd.read_csv(tmp_path / "kather" / "prompt_medians.csv")
    per_style = medians.groupby(["aspect", "style"], sort=False)["score"].median()
    styles = [s.key for s in study.styles]
    assert [per_style["style", s] for s in styles] == [2, 3, 1, 0, 0, 2, 3, 3]
    assert [per_style["content", s] for s in styles] == [2, 2, 1, 0, 0, 2, 1, 2]
    assert {m["role"] for m in summary["models"]} == {"primary", "sensitivity"}
    assert all(m["converged"] for m in summary["models"])
    assert (tmp_path / "kather" / "report.html").stat().st_size > 50_000


def test_an_empty_responses_folder_says_it_holds_no_json_files(built, tmp_path):
    _, build = built
    empty = tmp_path / "returned"
    (empty / "received").mkdir(parents=True)
    result = CliRunner().invoke(main, ["analyze", str(DEMO), str(empty), "--out",
                                       str(tmp_path / "out")],
                                env={"GLIDEMED_BUILD_DIR": str(build)})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output == f"Error: no .json files in {empty}: no response file to analyse\n"
    (empty / "notes.txt").write_text("not a response")  # a file is a ledger row, never dropped
    result = CliRunner().invoke(main, ["analyze", str(DEMO), str(empty), "--out",
                                       str(tmp_path / "out")],
                                env={"GLIDEMED_BUILD_DIR": str(build)})
    assert result.exit_code == 1 and "no usable ratings in 1 response file(s)" in result.output
