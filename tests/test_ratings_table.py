"""`analyze --ratings`: the table is checked like a response file, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from glidemed.analysis.ingest import ingest_responses
from glidemed.analysis.ratings_table import read_ratings_table
from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.study import load_study
from response_factory import make_key, make_response, write_json

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "surveys" / "demo" / "study.toml"
STUDY = load_study(DEMO)
KEY = make_key(STUDY)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("responses")
    paths = [write_json(folder / f"{r}.json", make_response(STUDY, KEY, r, seed=i))
             for i, r in enumerate(["ann", "ben", "cat"])]
    ratings, _, _ = ingest_responses(STUDY, KEY, paths)
    path = folder / "ratings.csv"
    ratings.to_csv(path, index=False)
    return path


def edited(table: Path, tmp_path: Path, change) -> Path:
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    change(df)
    path = tmp_path / "edited.csv"
    df.to_csv(path, index=False)
    return path


def test_a_valid_table_reads_back(table):
    df = read_ratings_table(table, STUDY)
    assert len(df) == 3 * len(KEY["panels"]) * 2 and str(df["score"].dtype) == "Int64"


def test_every_problem_at_once_with_row_numbers(table, tmp_path):
    def change(df):
        df.loc[0, "score"] = "7"
        df.loc[1, "score"] = "-1"
        df.loc[2, "aspect"] = "colour"
        df.loc[3, "rater"] = "  "
        df.loc[4, "score"] = "2.5"
        df.loc[5, "score"] = "abc"
        df.loc[6, "condition"] = "unknown-model"
        df.loc[7, "seconds"] = "1e309"
        df.loc[8, "repeat"] = "maybe"
        df.loc[len(df)] = df.loc[20]  # a rating given twice
    with pytest.raises(AnalysisError) as info:
        read_ratings_table(edited(table, tmp_path, change), STUDY)
    message = info.value.message
    assert "edited.csv: 10 problem(s): " in message
    for phrase in ["row 2: score 7 is out of range 0-4 for aspect 'style'",
                   "row 3: score -1 is out of range 0-4",
                   "row 4: unknown aspect 'colour' (study aspects: style, content)",
                   "row 5: empty rater id",
                   "row 6: score '2.5' is not a whole number",
                   "row 7: score 'abc' is not a whole number",
                   "row 8: unknown condition 'unknown-model'",
                   "row 9: seconds '1e309' is not a finite number >= 0",
                   "row 10: repeat 'maybe' is not true or false",
                   "the same rating as row 22"]:
        assert phrase in message, phrase
    assert "\n" not in message


def test_cli_reports_the_table_in_one_line(table, tmp_path):
    path = edited(table, tmp_path, lambda df: df.__setitem__("score", "9"))
    result = CliRunner().invoke(main, ["analyze", str(DEMO), "--ratings", str(path),
                                       "--out", str(tmp_path / "out"), "--bootstrap", "0"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "problem(s): row 2: score 9 is out of range" in result.output
    assert "... and " in result.output and len(result.output.strip().splitlines()) == 1
