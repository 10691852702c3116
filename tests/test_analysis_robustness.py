"""The analysis never aborts on data: numerical failures, empty cells, quasi-separation,
no usable file at all; text cells safe in spreadsheets; simulated files kept apart."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from glidemed.analysis import models
from glidemed.analysis.descriptives import prompt_medians
from glidemed.analysis.figures import medians_figure
from glidemed.analysis.ingest import ingest_responses
from glidemed.analysis.labels import Labels
from glidemed.analysis.pipeline import run_analysis
from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.simulate import simulate_responses
from glidemed.study import load_study
from response_factory import make_key, make_response, write_json

pytestmark = pytest.mark.slow  # whole analyses (small ones)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "surveys" / "demo" / "study.toml"
STUDY = load_study(DEMO)
KEY = make_key(STUDY)


def rated_by(folder: Path, raters: list[str]) -> pd.DataFrame:
    paths = [write_json(folder / f"{r}.json", make_response(STUDY, KEY, r, seed=i))
             for i, r in enumerate(raters)]
    return ingest_responses(STUDY, KEY, paths)[0]


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> pd.DataFrame:
    """Two raters: fixed models only, which keeps these analyses quick."""
    return rated_by(tmp_path_factory.mktemp("responses"), ["ann", "ben"])


def test_condition_without_content_ratings_is_drawn(ratings, tmp_path):
    df = ratings.copy()
    gone = (df["condition"] == df["condition"].iloc[0]) & (df["aspect"] == "content")
    df.loc[gone, "score"] = pd.NA
    df.loc[gone, "exclusion"] = "missing"
    labels = Labels.of(STUDY)
    figure, shown = medians_figure(prompt_medians(df), labels=labels)  # raised KeyError: 0.5
    drawn = {ax.get_title(): [c.get_label() for c in ax.containers] for ax in figure.axes}
    conditions = sorted(df["condition"].unique())
    assert drawn["Style"] == [labels.of_key("condition", c) for c in conditions]
    assert drawn["Content"] == [labels.of_key("condition", c) for c in conditions
                                if c != df["condition"].iloc[0]]
    assert set(shown.loc[shown["aspect"] == "content", "condition"]) == set(conditions) - {
        df["condition"].iloc[0]}
    summary = run_analysis(STUDY, ratings=df, out_dir=tmp_path / "out", n_boot=0)
    assert summary["counts"]["usable_ratings"] > 0
    assert (tmp_path / "out" / "figures" / "style_medians.svg").stat().st_size > 0


def test_a_model_that_fails_numerically_is_reported_and_the_fixed_model_stays(
        tmp_path, monkeypatch):
    ratings = rated_by(tmp_path, ["ann", "ben", "cat"])  # three raters: the mixed model is primary
    real = models.fit_model

    def failing_mixed(df, formula, aspect):
        if "(1|" in formula:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        return real(df, formula, aspect)
    monkeypatch.setattr(models, "fit_model", failing_mixed)
    summary = run_analysis(STUDY, ratings=ratings, out_dir=tmp_path / "out", n_boot=0)
    roles = [(m["role"], m["model"]) for m in summary["models"]]
    assert roles == [("sensitivity", "fixed")] * 2
    report = (tmp_path / "out" / "report.html").read_text()
    assert "could not be fitted: numerical failure (LinAlgError: Matrix is not positive definite)" in report


def separated(ratings: pd.DataFrame) -> pd.DataFrame:
    df = ratings.copy()
    ct = (df["style"] == df["style"].iloc[0]) & (df["aspect"] == "style") & (df["exclusion"] == "")
    df.loc[ct, "score"] = 0
    return df


def test_quasi_separation_is_one_line_not_a_python_warning(ratings, tmp_path):
    path = tmp_path / "ratings.csv"
    separated(ratings).to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails the command
        result = CliRunner().invoke(main, ["analyze", str(DEMO), "--ratings", str(path),
                                           "--out", str(tmp_path / "cli"), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "quasi-separation" in line]
    assert lines and all(line.startswith("note: ") for line in lines)
    assert "Warning" not in result.output and ".py:" not in result.output


def test_ledger_written_when_no_file_is_usable_and_earlier_analysis_kept(ratings, tmp_path):
    out = tmp_path / "analysis"
    run_analysis(STUDY, ratings=ratings, out_dir=out, n_boot=0)
    before = (out / "summary.json").read_bytes()
    bad = tmp_path / "bad"
    for i in range(10):
        (bad / f"{i}.json").parent.mkdir(exist_ok=True)
        (bad / f"{i}.json").write_text("{" * (i + 1))
    with pytest.raises(AnalysisError, match=f"every file's reason is in {out}-ledger.csv"):
        run_analysis(STUDY, [bad], out, key=KEY, n_boot=0)
    assert (out / "summary.json").read_bytes() == before
    ledger = pd.read_csv(f"{out}-ledger.csv")
    assert len(ledger) == 10 and set(ledger["status"]) == {"rejected"}
    assert ledger["reason"].str.contains("JSON").all()


def test_text_that_a_spreadsheet_would_run_is_neutralised(tmp_path):
    folder = tmp_path / "responses"
    evil = '=HYPERLINK("http://x.invalid","click")'
    write_json(folder / "a.json", make_response(STUDY, KEY, evil, seed=1,
                                                profile={"specialty": "pathology", "years": "+1"}))
    write_json(folder / "b.json", make_response(STUDY, KEY, "@b", seed=2,
                                                profile={"specialty": "pathology", "years": "-c"}))
    run_analysis(STUDY, [folder], tmp_path / "out", key=KEY, n_boot=0)
    ledger = pd.read_csv(tmp_path / "out" / "ledger.csv", dtype=str)
    assert sorted(ledger["rater"]) == sorted(["'" + evil, "'@b"])
    profiles = pd.read_csv(tmp_path / "out" / "profiles.csv", dtype=str)
    assert sorted(profiles["years"]) == ["'+1", "'-c"] and "'" + evil in profiles["rater"].tolist()
    ratings = pd.read_csv(tmp_path / "out" / "ratings.csv", dtype=str)  # data: kept exact
    assert evil in set(ratings["rater"])


def test_simulate_refuses_a_folder_with_real_responses(tmp_path):
    write_json(tmp_path / "real.json", make_response(STUDY, KEY, "real", seed=1))
    with pytest.raises(AnalysisError, match=r"holds 1 file\(s\) not written by glidemed simulate "
                                            r"\(e.g. real.json\)"):
        simulate_responses(STUDY, KEY, 2, tmp_path)
    paths = simulate_responses(STUDY, KEY, 2, tmp_path / "sim")
    again = simulate_responses(STUDY, KEY, 2, tmp_path / "sim")  # its own files: fine
    assert paths == again
