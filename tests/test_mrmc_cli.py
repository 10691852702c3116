"""`glidemed mrmc`: the command around glidemed.analysis.mrmc."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from glidemed.cli import main
from tests.test_mrmc import DEGENERATE, PUBLISHED, VANDYKE, degenerate_readings, long_table, near


def run(*args):
    return CliRunner().invoke(main, ["mrmc", *map(str, args)], catch_exceptions=False)


def test_json_output_holds_the_three_analyses(tmp_path):
    out = tmp_path / "res" / "vandyke.json"
    result = run(VANDYKE, "--json", out)
    assert result.exit_code == 0, result.output
    assert "F = 4.456319, df = (1, 15.25967)" in result.output
    data = json.loads(out.read_text())
    ref = PUBLISHED["issue"]
    near(data["rrrc"]["statistic"], ref["rrrc"]["F"])
    near(data["rrrc"]["df2"], ref["rrrc"]["df2"])
    near(data["rrrc"]["p"], ref["rrrc"]["p"])
    near(data["rrrc"]["ci95"][0][0], ref["rrrc"]["ci"][0])
    near(data["frrc"]["statistic"], ref["frrc"]["chi2"])
    assert data["frrc"]["df"] == 1 and "df2" not in data["frrc"]
    near(data["rrfc"]["statistic"], ref["rrfc"]["F"])
    assert (data["rrfc"]["df1"], data["rrfc"]["df2"]) == (1, 4)
    assert {(r["reader"], r["treatment"]) for r in data["reader_aucs"]} == {
        (str(r), str(t)) for r in range(1, 6) for t in (1, 2)}


def test_delong_option_and_bad_input(tmp_path):
    result = run(VANDYKE, "--cov", "delong")
    assert result.exit_code == 0 and "covariance: delong" in result.output
    table = pd.read_csv(VANDYKE, dtype=str)
    path = tmp_path / "t.csv"
    table[~((table["reader"] == "2") & (table["case"] == "9"))].to_csv(path, index=False)
    result = run(path)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {path}: reader 2 did not read 1 of 114 case(s) under treatment 1 (9); a paired "
        "analysis needs every reader to read every case under every treatment (drop the incomplete "
        "readers explicitly to analyse the rest)"]
    result = run(path, "--drop-incomplete-readers")
    assert result.exit_code == 0 and "left out: reader 2 did not read 1 of 114" in result.output
    assert run(VANDYKE, "--scale", "1,4").output.startswith(f"Error: {VANDYKE} row 6: rating 5 is outside")
    assert run(VANDYKE, "--scale", "5,1").exit_code == 2


@pytest.mark.parametrize("kind", ["all_equal", "identical_treatments", "perfect_separation", "identical_readers"])
def test_degenerate_table_gives_the_estimable_analyses_and_says_why_not_the_others(tmp_path, kind):
    truth, ratings = degenerate_readings(kind)
    path, out = tmp_path / f"{kind}.csv", tmp_path / f"{kind}.json"
    long_table(truth, ratings).to_csv(path, index=False)
    result = run(path, "--json", out)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    first_line, no_test, _ = DEGENERATE[kind]
    assert f"\nnot estimable: {first_line}" in result.output
    assert result.output.count("  test: not estimable") == len(no_test)
    data = json.loads(out.read_text())
    assert data["degenerate"][0].startswith(first_line)
    assert {name for name in ("rrrc", "frrc", "rrfc") if "test" in data[name]["not_estimable"]} == set(no_test)
