"""Acceptance: the published results of Kather et al. (2022) from their published ratings.

'nonsensical' counted as 0, per-prompt medians across the three observers (34 prompts per
style); the paper's pairwise matrix compares styles two-sided and unadjusted, here with the
Mann-Whitney U test. Two readings of "nonsensical as 0" are checked: each flagged rating
counts 0 ('per_rating', glidemed's default) and a prompt any observer flagged counts 0
('any_rater', which reproduces the paper's sheet 'matrix_nonsensical_as_zero' cell by cell).
"""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
from conftest import ROOT

from glidemed.analysis.descriptives import prompt_medians
from glidemed.analysis.legacy import read_legacy_spreadsheet
from glidemed.analysis.nonparametric import run_tests
from glidemed.analysis.pipeline import run_analysis
from glidemed.analysis.tidy import apply_nonsensical
from glidemed.study import load_study

# What the paper reports, stored with its source beside the published ratings.
PAPER = json.loads((ROOT / "surveys" / "kather2022" / "published" / "paper_results.json")
                   .read_text(encoding="utf-8"))
STYLES = PAPER["styles"]
PUBLISHED = PAPER["medians"]
RADIOLOGY = set(PAPER["radiology"])
RULES = ["per_rating", "any_rater"]


@pytest.fixture(scope="module")
def ratings(kather_xlsx):
    return read_legacy_spreadsheet(load_study("kather2022"), kather_xlsx, nonsensical="zero")


@pytest.mark.parametrize("rule", RULES)
def test_style_medians_equal_the_published_ones(ratings, rule):
    medians = prompt_medians(ratings, rule)
    for aspect, published in PUBLISHED.items():
        part = medians[medians["aspect"] == aspect]
        assert part.groupby("style").size().to_dict() == {s: 34 for s in STYLES}
        got = part.groupby("style")["score"].median()
        assert [got[s] for s in STYLES] == published


@pytest.mark.parametrize("rule", RULES)
def test_each_radiology_style_differs_from_each_other_style(ratings, rule):
    _, pairs = run_tests(ratings, "prompt_median", nonsensical_rule=rule)
    across = pairs[pairs["a"].isin(RADIOLOGY) != pairs["b"].isin(RADIOLOGY)]
    assert len(across) == 2 * 3 * 5
    assert (across["status"] == "ok").all()
    worst = across.groupby("aspect")["p_mw"].max()
    assert worst["style"] < 0.05 and worst["content"] < 0.05, worst


def test_any_rater_rule_reproduces_the_papers_matrix(ratings, kather_xlsx):
    sheet = pd.read_excel(kather_xlsx, sheet_name="matrix_nonsensical_as_zero")
    columns = [c for c in sheet.columns if c != "prompt"]  # style, content per image style
    medians = prompt_medians(ratings, "any_rater")
    for i, style in enumerate(STYLES):
        for j, aspect in enumerate(["style", "content"]):
            mine = medians[(medians["style"] == style) & (medians["aspect"] == aspect)]
            assert mine["score"].tolist() == sheet[columns[2 * i + j]].astype(float).tolist()


def test_per_rating_rule_differs_from_the_sheet_only_where_an_observer_flagged(ratings):
    per_rating = prompt_medians(ratings, "per_rating")
    any_rater = prompt_medians(ratings, "any_rater")
    merged = per_rating.merge(any_rater, on=["prompt_id", "aspect"], suffixes=("", "_paper"))
    differ = merged[merged["score"] != merged["score_paper"]]
    flagged = set(ratings.loc[ratings["nonsensical"], "prompt_id"])
    assert set(differ["prompt_id"]) <= flagged
    assert len(differ) == 10 and (differ["score_paper"] == 0).all()  # 5 prompts x 2 aspects


def test_paper_mode_reproduces_the_papers_matrix_in_the_tidy_table(ratings, kather_xlsx):
    """--nonsensical paper applies the sheet's rule to the ratings, so every later
    analysis (tests, bootstrap, models) sees the same data as the paper's medians."""
    sheet = pd.read_excel(kather_xlsx, sheet_name="matrix_nonsensical_as_zero")
    columns = [c for c in sheet.columns if c != "prompt"]
    medians = prompt_medians(apply_nonsensical(ratings, "paper"), "per_rating")
    for i, style in enumerate(STYLES):
        for j, aspect in enumerate(["style", "content"]):
            mine = medians[(medians["style"] == style) & (medians["aspect"] == aspect)]
            assert mine["score"].tolist() == sheet[columns[2 * i + j]].astype(float).tolist()
    assert not medians.equals(prompt_medians(ratings, "per_rating"))


def _comparison_script():
    path = ROOT / "surveys" / "kather2022" / "compare_with_paper.py"
    spec = importlib.util.spec_from_file_location("compare_with_paper", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reproduced(kather_xlsx, tmp_path_factory):
    """What `make reproduce` analyses: the published spreadsheet, 'nonsensical' as the paper."""
    out = tmp_path_factory.mktemp("reproduce") / "analysis"
    run_analysis(load_study("kather2022"), ratings=kather_xlsx, out_dir=out,
                 nonsensical="paper", n_boot=0)
    return out


def test_reproduce_agrees_with_the_paper(reproduced):
    lines, agree = _comparison_script().compare(reproduced, PAPER)
    assert agree, "\n".join(lines)
    assert sum("DIFFERS" in line for line in lines) == 0
    assert len([line for line in lines if line.startswith("radiology vs")]) == 2


def test_reproduce_names_a_median_that_differs(reproduced):
    changed = json.loads(json.dumps(PAPER))
    changed["medians"]["content"][STYLES.index("poster")] = 3
    lines, agree = _comparison_script().compare(reproduced, changed)
    assert not agree
    assert [line.split()[:2] for line in lines if "DIFFERS" in line] == [["poster", "content"]]
