"""Ordinal regression, checked against R ordinal::clm (tests/reference/kather2022_stats.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stats_factory import make_tidy

from glidemed.analysis.legacy import read_legacy_spreadsheet
from glidemed.analysis.ordinal import QuasiSeparationWarning, fit_ordinal
from glidemed.analysis.results import TABLE_COLUMNS
from glidemed.errors import AnalysisError
from glidemed.study import load_study

REFERENCE = json.loads((Path(__file__).parent / "reference" / "kather2022_stats.json").read_text())


def r_name(term: str) -> str:
    """'style[T.xray]' -> R's 'stylexray'."""
    return term.replace("[T.", "").rstrip("]") if "[T." in term else term


@pytest.mark.parametrize("aspect", ["style", "content"])
def test_matches_r_clm(kather_xlsx, aspect):
    df = read_legacy_spreadsheet(load_study("kather2022"), kather_xlsx, nonsensical="zero")
    result = fit_ordinal(df, "score ~ style + detail + condition", aspect)
    ref = REFERENCE[aspect]["clm"]
    assert result.model == "fixed" and result.converged and result.aspect == aspect
    assert result.formula == "score ~ style + detail"
    assert any("'condition' dropped" in note for note in result.notes)
    assert result.n == ref["n"] == 815
    assert result.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    assert list(result.table.columns) == TABLE_COLUMNS
    want = dict(zip(ref["terms"], zip(ref["estimate"], ref["se"])))
    table = result.table.assign(r=result.table["term"].map(r_name)).set_index("r")
    assert sorted(table.index) == sorted(want)
    for term, (estimate, se) in want.items():
        assert table.loc[term, "estimate"] == pytest.approx(estimate, abs=1e-4), term
        assert table.loc[term, "se"] == pytest.approx(se, rel=1e-3), term
    effects = table[table["kind"] == "effect"]
    np.testing.assert_allclose(effects["odds_ratio"], np.exp(effects["estimate"]))
    assert (effects["or_ci_low"] < effects["odds_ratio"]).all()
    assert (table.loc[table["kind"] == "cutpoint", "estimate"].diff().dropna() > 0).all()
    assert json.dumps(result.summary(), default=float)  # JSON-ready


def test_sign_convention_and_reference_level():
    shift = {"histo": 0, "ct": 1, "xray": -1}
    df = make_tidy(lambda rng, row: 2 + shift[row["style"]] + rng.integers(-2, 3),
                   topics=[f"t{i}" for i in range(8)], seed=2)
    result = fit_ordinal(df, "score ~ style", "style")
    est = result.table.set_index("term")["estimate"]
    assert result.converged and not result.notes
    assert est["style[T.ct]"] > 0.5 and est["style[T.xray]"] < -0.5  # higher scores -> positive
    df["style"] = pd.Categorical(df["style"], categories=["ct", "histo", "xray"])
    flipped = fit_ordinal(df, "score ~ style", "style").table.set_index("term")["estimate"]
    assert "style[T.histo]" in flipped and flipped["style[T.histo]"] < -0.5


def test_unused_levels_removed():
    df = make_tidy(lambda rng, row: int(rng.choice([0, 2, 4])), seed=5)
    result = fit_ordinal(df, "score ~ style + detail", "content")
    cuts = result.table[result.table["kind"] == "cutpoint"]
    assert cuts["term"].tolist() == ["0|2", "2|4"]
    assert np.isfinite(cuts["estimate"]).all() and result.converged


def test_quasi_separation_is_noted_and_warned():
    df = make_tidy(lambda rng, row: 0 if row["style"] == "ct" else int(rng.integers(0, 5)), seed=6)
    with pytest.warns(QuasiSeparationWarning, match="style=ct"):
        result = fit_ordinal(df, "score ~ style", "style")
    assert any("quasi-separation: all 24 scores of style=ct are 0" in n for n in result.notes)
    top = make_tidy(lambda rng, row: 3 + rng.integers(0, 2) if row["style"] == "ct"
                    else rng.integers(0, 4), seed=6)  # ct: 3-4, the others: 0-3
    with pytest.warns(QuasiSeparationWarning, match="every score of style=ct is at or above"):
        fit_ordinal(top, "score ~ style", "style")


def test_no_warning_without_separation():
    df = make_tidy(seed=7, topics=[f"t{i}" for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuasiSeparationWarning)
        result = fit_ordinal(df, "score ~ style + detail", "style")
    assert not any("separation" in n for n in result.notes)


def test_errors():
    df = make_tidy()
    with pytest.raises(AnalysisError, match="colour name no column"):
        fit_ordinal(df, "score ~ style + colour", "style")
    with pytest.raises(AnalysisError, match="fit_clmm"):
        fit_ordinal(df, "score ~ style + (1|rater)", "style")
    with pytest.raises(AnalysisError, match="all 72 scores are 2"):
        fit_ordinal(make_tidy(lambda rng, row: 2), "score ~ style", "style")
    with pytest.raises(AnalysisError, match="no usable ratings"):
        fit_ordinal(df, "score ~ style", "colour")
    with pytest.raises(AnalysisError, match="confounded"):
        fit_ordinal(df, "score ~ style + style_group", "style")
    with pytest.raises(AnalysisError, match="no term has two levels"):
        fit_ordinal(df, "score ~ condition", "style")


def test_collapsed_fit_equals_plain_orderedmodel_on_every_row():
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    df = make_tidy(conditions=("a", "b"), seed=8, topics=[f"t{i}" for i in range(5)])
    result = fit_ordinal(df, "score ~ style + detail + condition", "content")
    assert result.formula == "score ~ style + detail + condition" and not result.notes
    data = df[df["aspect"] == "content"]
    exog = pd.DataFrame({"style[T.xray]": data["style"] == "xray", "style[T.ct]": data["style"] == "ct",
                         "detail[T.detailed]": data["detail"] == "detailed",
                         "condition[T.b]": data["condition"] == "b"}).astype(float)
    endog = pd.Series(pd.Categorical(data["score"].astype(int), ordered=True), index=data.index)
    plain = OrderedModel(endog, exog, distr="logit").fit(method="bfgs", gtol=1e-8, disp=False)
    table = result.table.set_index("term")
    for name in exog.columns:
        assert table.loc[name, "estimate"] == pytest.approx(plain.params[name], abs=1e-5)
        assert table.loc[name, "se"] == pytest.approx(plain.bse[name], rel=1e-3)
    assert result.loglik == pytest.approx(plain.llf, abs=1e-6) and result.n == len(data)
