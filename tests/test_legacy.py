"""Legacy import of the seed study's spreadsheet format."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from glidemed.analysis.legacy import exclusion_counts, read_legacy_spreadsheet
from glidemed.analysis.tidy import TIDY_COLUMNS, read_ratings_csv
from glidemed.cli import main
from glidemed.errors import AnalysisError
from glidemed.study import load_study

HEADER = ["Prompt", "Style_Observer1", "Content_Observer1", "Style_Observer2", "Content_Observer2",
          "Style_Median"]


def write_xlsx(path, rows, header=HEADER, sheet="raw data"):
    book = Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(header)
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


@pytest.fixture
def small(make_study):
    return load_study(make_study())


def test_seed_spreadsheet_counts_and_mapping(kather_xlsx):
    study = load_study("kather2022")
    df = read_legacy_spreadsheet(study, kather_xlsx)
    assert list(df.columns[:len(TIDY_COLUMNS)]) == TIDY_COLUMNS and "nonsensical" in df.columns
    assert len(df) == 272 * 3 * 2
    assert set(df["rater"]) == {"observer1", "observer2", "observer3"}
    assert set(df["condition"]) == {"clip"} and not df["repeat"].any()
    assert (df["panel"] == df["prompt_id"]).all()
    assert df["prompt_id"].nunique() == 272
    # counted in the sheet: 'missing' once for observer 2 (both aspects), 'nonsensical' 54 times
    assert exclusion_counts(df) == {"usable": 1522, "nonsensical": 108, "missing": 2}
    first = df[(df["prompt_id"] == "microscopy.brain.short") & (df["rater"] == "observer1")]
    assert dict(zip(first["aspect"], first["score"])) == {"style": 0, "content": 1}
    zero = read_legacy_spreadsheet(study, kather_xlsx, nonsensical="zero")
    assert exclusion_counts(zero) == {"usable": 1630, "missing": 2}
    assert (zero.loc[zero["nonsensical"], "score"] == 0).all()


def test_codes_whitespace_and_nonsensical_modes(small, tmp_path):
    path = write_xlsx(tmp_path / "r.xlsx", [
        ["  A histopathological image of the lungs ", 3, "nonsensical", " missing", 2, 2],
        ["An x-ray image of the heart", "Nonsensical", 1, None, "4", 0],
    ])
    df = read_legacy_spreadsheet(small, path)
    assert len(df) == 8
    cells = {(r.prompt_id, r.rater, r.aspect): (r.score, r.exclusion, r.nonsensical)
             for r in df.itertuples()}
    assert cells[("histo.lungs.short", "observer1", "style")] == (3, "", False)
    assert cells[("histo.lungs.short", "observer1", "content")][1:] == ("nonsensical", True)
    assert cells[("histo.lungs.short", "observer2", "style")][1:] == ("missing", False)
    assert cells[("xray.heart.short", "observer2", "style")][1] == "missing"  # empty cell
    assert cells[("xray.heart.short", "observer2", "content")] == (4, "", False)
    zero = read_legacy_spreadsheet(small, path, nonsensical="zero")
    assert exclusion_counts(zero) == {"usable": 6, "missing": 2}
    assert zero.loc[zero["nonsensical"], "score"].tolist() == [0, 0]


@pytest.mark.parametrize("row, message", [
    (["A histopathological image of the moon", 1, 1, 1, 1, 1], "'A histopathological image of the moon'"),
    (["An x-ray image of the heart", 5, 1, 1, 1, 1], "score 5 is not one of"),
    (["An x-ray image of the heart", 2.5, 1, 1, 1, 1], "score 2.5"),
    (["An x-ray image of the heart", "great", 1, 1, 1, 1], "'great' is neither"),
])
def test_bad_cells_name_the_problem(small, tmp_path, row, message):
    path = write_xlsx(tmp_path / "bad.xlsx", [row])
    with pytest.raises(AnalysisError, match="bad.xlsx") as info:
        read_legacy_spreadsheet(small, path)
    assert message in str(info.value)


def test_bad_files(small, tmp_path):
    with pytest.raises(AnalysisError, match="no sheet 'raw data'"):
        read_legacy_spreadsheet(small, write_xlsx(tmp_path / "s.xlsx", [], sheet="other"))
    with pytest.raises(AnalysisError, match="appears twice"):
        read_legacy_spreadsheet(small, write_xlsx(tmp_path / "d.xlsx", [
            ["An x-ray image of the heart", 1, 1, 1, 1, 1]] * 2))
    with pytest.raises(AnalysisError, match="names no aspect"):
        read_legacy_spreadsheet(small, write_xlsx(tmp_path / "a.xlsx", [],
                                                  header=["Prompt", "Colour_Observer1"]))
    with pytest.raises(AnalysisError, match="both hold observer 1's style ratings"):
        read_legacy_spreadsheet(small, write_xlsx(tmp_path / "o.xlsx", [], header=[
            "Prompt", "Style_Observer1", "style_observer01"]))
    with pytest.raises(AnalysisError, match="'Content Observer2' looks like ratings"):
        read_legacy_spreadsheet(small, write_xlsx(tmp_path / "m.xlsx", [], header=[
            "Prompt", "Style_Observer1", "Content Observer2"]))
    text = tmp_path / "t.xlsx"
    text.write_text("not a spreadsheet")
    with pytest.raises(AnalysisError, match="cannot read spreadsheet"):
        read_legacy_spreadsheet(small, text)
    with pytest.raises(AnalysisError, match="--nonsensical"):
        read_legacy_spreadsheet(small, write_xlsx(tmp_path / "n.xlsx", []), nonsensical="drop")


def test_cli_import_ratings_round_trip(make_study, tmp_path):
    study = make_study()
    path = write_xlsx(tmp_path / "r.xlsx", [["An x-ray image of the heart", 1, "nonsensical",
                                             "missing", 2, 1]])
    out = tmp_path / "out" / "ratings.csv"
    result = CliRunner().invoke(main, ["import-ratings", str(study), str(path), "--nonsensical",
                                       "zero", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 usable, 1 missing" in result.output
    back = read_ratings_csv(out, ["nonsensical"])
    expected = read_legacy_spreadsheet(load_study(study), path, nonsensical="zero")
    pd.testing.assert_frame_equal(back, expected.reset_index(drop=True))
    bad = CliRunner().invoke(main, ["import-ratings", str(study), str(tmp_path / "nope.xlsx")])
    assert bad.exit_code == 1 and "nope.xlsx: no such file" in bad.output
