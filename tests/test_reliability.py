"""Rater agreement, checked against R (tests/reference/kather2022_reliability.R)."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from stats_factory import make_tidy

from glidemed.analysis.legacy import read_legacy_spreadsheet
from glidemed.analysis.reliability import (
    RELIABILITY_COLUMNS,
    _item_coincidences,
    alpha_from_coincidences,
    bootstrap_alpha,
    reliability_table,
    weighted_kappa,
)
from glidemed.study import load_study

REFERENCE = json.loads((Path(__file__).parent / "reference" / "kather2022_reliability.json").read_text())


def test_against_r(kather_xlsx):
    df = read_legacy_spreadsheet(load_study("kather2022"), kather_xlsx, nonsensical="zero")
    table = reliability_table(df, n_boot=200, seed=1)
    assert list(table.columns) == RELIABILITY_COLUMNS
    for aspect in ("style", "content"):
        ref = REFERENCE[aspect]
        rows = table[table["aspect"] == aspect].set_index(["measure", "raters"])
        alpha = rows.loc[("krippendorff_alpha_ordinal", "all")]
        assert alpha["estimate"] == pytest.approx(ref["alpha"], rel=1e-9)
        assert alpha["n_items"] == 272 and alpha["ci_low"] < alpha["estimate"] < alpha["ci_high"]
        for pair, kappa in ref["kappa"].items():
            assert rows.loc[("cohen_kappa_quadratic", pair), "estimate"] == pytest.approx(kappa, rel=1e-9)
        for measure in ("icc2_1", "icc3_1"):
            row = rows.loc[(measure, "all")]
            assert row["role"] == "secondary" and row["n_items"] == 271
            assert row["estimate"] == pytest.approx(ref[measure]["ICC"], rel=1e-9)
            assert row["ci_low"] == pytest.approx(ref[measure]["lower bound"], rel=1e-6)
            assert row["ci_high"] == pytest.approx(ref[measure]["upper bound"], rel=1e-6)
        assert not rows.index.get_level_values(0).str.startswith("intra").any()


def test_alpha_matches_krippendorff_package_and_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, (4, 30)).astype(float)
    values[:2] = np.clip(values[2] + rng.integers(-1, 2, (2, 30)), 0, 4)  # some agreement
    values[rng.random(values.shape) < 0.2] = np.nan
    values = values[:, np.sum(~np.isnan(values), axis=0) >= 2]
    mine = alpha_from_coincidences(_item_coincidences(values, [0, 1, 2, 3, 4]).sum(axis=0))
    package = krippendorff.alpha(reliability_data=values, level_of_measurement="ordinal",
                                 value_domain=[0, 1, 2, 3, 4])
    assert mine == pytest.approx(package, rel=1e-12)
    first = bootstrap_alpha(values, [0, 1, 2, 3, 4], 300, 5)
    again = bootstrap_alpha(values, [0, 1, 2, 3, 4], 300, 5)
    np.testing.assert_array_equal(first, again)
    assert np.percentile(first, 2.5) < package < np.percentile(first, 97.5)
    assert not np.array_equal(first, bootstrap_alpha(values, [0, 1, 2, 3, 4], 300, 6))


def test_bootstrap_resample_equals_alpha_of_resampled_matrix():
    rng = np.random.default_rng(9)
    values = np.clip(rng.integers(0, 5, 25)[None, :] + rng.integers(-1, 2, (3, 25)), 0, 4).astype(float)
    index = rng.integers(0, 25, 25)
    contrib = _item_coincidences(values, [0, 1, 2, 3, 4])
    weights = np.bincount(index, minlength=25)
    via_weights = alpha_from_coincidences(np.tensordot(weights, contrib, axes=1))
    direct = krippendorff.alpha(reliability_data=values[:, index], level_of_measurement="ordinal",
                                value_domain=[0, 1, 2, 3, 4])
    assert via_weights == pytest.approx(direct, rel=1e-12)


def test_weighted_kappa_matches_sklearn():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 5, 50)
    b = np.clip(a + rng.integers(-2, 2, 50), 0, 4)
    want = cohen_kappa_score(a, b, labels=[0, 1, 2, 3, 4], weights="quadratic")
    assert weighted_kappa(a, b, [0, 1, 2, 3, 4]) == pytest.approx(want, rel=1e-12)


def test_intra_rater_from_repeats():
    df = make_tidy(seed=3)
    repeats = df[(df["rater"] == "r1") & (df["detail"] == "short")].copy()
    repeats["repeat"] = True
    changed = repeats.index[0]
    repeats.loc[changed, "score"] = (repeats.loc[changed, "score"] + 1) % 5
    table = reliability_table(pd.concat([df, repeats]), n_boot=0)
    intra = table[table["measure"].str.startswith("intra")].set_index(["aspect", "measure", "raters"])
    aspect = repeats.loc[changed, "aspect"]
    other = "content" if aspect == "style" else "style"
    assert intra.loc[(other, "intra_rater_exact_agreement", "r1"), "estimate"] == 1.0
    assert intra.loc[(other, "intra_rater_kappa_quadratic", "all"), "estimate"] == pytest.approx(1.0)
    row = intra.loc[(aspect, "intra_rater_exact_agreement", "all")]
    assert row["n_items"] == 12 and row["estimate"] == pytest.approx(11 / 12)
    assert ("r2" not in intra.index.get_level_values("raters"))
    # repeats do not enter the inter-rater measures
    base = reliability_table(df, n_boot=0)
    keep = ~table["measure"].str.startswith("intra")
    pd.testing.assert_frame_equal(table[keep].reset_index(drop=True), base)


def test_degenerate_input():
    flat = reliability_table(make_tidy(lambda rng, row: 2), n_boot=10)
    assert (flat["status"] == "not testable").all()
    assert flat["reason"].str.len().gt(0).all()
    single = reliability_table(make_tidy(raters=("only",)), n_boot=10)
    assert (single["status"] == "not testable").all() and len(single) == 2 * 3  # alpha + 2 ICC
