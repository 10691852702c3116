"""Descriptive statistics and per-prompt medians."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from stats_factory import make_tidy

from glidemed.analysis.descriptives import DESCRIPTIVE_COLUMNS, describe_ratings, prompt_medians


@pytest.fixture
def table():
    # r1 scores 0, r2 scores 1, r3 scores the style's index (histo 0, xray 1, ct 2) + 2
    order = {"histo": 0, "xray": 1, "ct": 2}
    value = {"r1": lambda s: 0, "r2": lambda s: 1, "r3": lambda s: order[s] + 2}
    return make_tidy(lambda rng, row: value[row["rater"]](row["style"]))


def row(desc, by, level, aspect="style"):
    hit = desc[(desc["by"] == by) & (desc["level"] == level) & (desc["aspect"] == aspect)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_columns_and_hand_computed_values(table):
    desc = describe_ratings(table)
    assert list(desc.columns) == DESCRIPTIVE_COLUMNS + [f"n_{k}" for k in range(5)]
    assert set(desc["by"]) == {"all", "style", "style_group", "condition", "detail", "rater"}
    # style ct: 8 prompts x scores (0, 1, 4) -> 24 ratings; quartiles of 8x0, 8x1, 8x4 (type 7)
    ct = row(desc, "style", "ct")
    assert (ct["n"], ct["n_excluded"], ct["median"], ct["mean"]) == (24, 0, 1.0, 5 / 3)
    assert (ct["q1"], ct["q3"], ct["iqr"]) == (0.0, 4.0, 4.0)
    assert [ct[f"n_{k}"] for k in range(5)] == [8, 8, 0, 0, 8]
    radiology = row(desc, "style_group", "radiology")  # xray + ct: 0x16, 1x16, 3x8, 4x8
    assert radiology["n"] == 48 and radiology["median"] == 1.0
    assert np.isclose(radiology["q3"], np.percentile([0] * 16 + [1] * 16 + [3] * 8 + [4] * 8, 75))
    assert row(desc, "rater", "r2")["mean"] == 1.0
    assert row(desc, "all", "all")["n"] == 72


def test_exclusions_and_repeats_are_counted_not_used(table):
    table.loc[0, ["score", "exclusion"]] = [pd.NA, "missing"]
    extra = table.iloc[[1]].copy()
    extra["repeat"] = True
    extra["score"] = 4
    desc = describe_ratings(pd.concat([table, extra], ignore_index=True))
    total = row(desc, "all", "all", table.loc[0, "aspect"])
    assert (total["n"], total["n_excluded"]) == (71, 1)


def test_profiles(table):
    profiles = pd.DataFrame({"rater": ["r1", "r2"], "specialty": ["pathology", None],
                             "years": [3, 10]})
    desc = describe_ratings(table, profiles)
    assert row(desc, "profile:specialty", "pathology")["mean"] == 0.0
    assert row(desc, "profile:specialty", "(no answer)")["mean"] == 1.0
    assert row(desc, "profile:specialty", "(no profile)")["n"] == 24  # r3 has no profile
    assert row(desc, "profile:years", "10")["n"] == 24


def test_prompt_medians(table):
    table = table[~((table["rater"] == "r3") & (table["prompt_id"] == "ct.lungs.short"))]
    med = prompt_medians(table)
    assert list(med.columns) == ["prompt_id", "style", "style_group", "topic", "detail",
                                 "condition", "aspect", "score", "n_raters"]
    assert len(med) == 48  # 24 prompts x 2 aspects
    by = med.set_index(["prompt_id", "aspect"])
    assert by.loc[("ct.heart.short", "style"), "score"] == 1.0  # median of 0, 1, 4
    assert by.loc[("ct.lungs.short", "style"), ["score", "n_raters"]].tolist() == [0.5, 2]


def test_empty_table():
    empty = make_tidy().iloc[0:0]
    assert prompt_medians(empty).empty
    assert describe_ratings(empty).empty


def test_nonsensical_rules(table):
    from glidemed.analysis.tidy import apply_nonsensical
    from glidemed.errors import AnalysisError

    flag = (table["rater"] == "r3") & (table["prompt_id"] == "ct.heart.short")
    table.loc[flag, "nonsensical"] = True
    zero, excluded = apply_nonsensical(table, "zero"), apply_nonsensical(table, "exclude")
    key = ("ct.heart.short", "style")
    assert prompt_medians(zero).set_index(["prompt_id", "aspect"]).loc[key, "score"] == 0.0  # 0, 1, 0
    assert prompt_medians(zero, "any_rater").set_index(["prompt_id", "aspect"]).loc[key, "score"] == 0.0
    assert prompt_medians(excluded).set_index(["prompt_id", "aspect"]).loc[key, "score"] == 0.5
    kept = prompt_medians(excluded, "any_rater")
    assert len(kept) == 46 and "ct.heart.short" not in set(kept["prompt_id"])
    with pytest.raises(AnalysisError, match="nonsensical_rule"):
        prompt_medians(table, "majority")
