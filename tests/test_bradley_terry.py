"""glidemed.analysis.bradley_terry against R BradleyTerry2::BTm (tests/reference/bt_simulated.R)
and on the data where no finite abilities exist."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from scipy import stats

from glidemed.analysis.bradley_terry import BT_COLUMNS, bradley_terry
from glidemed.errors import AnalysisError

REFERENCE = ROOT / "tests" / "reference"


def decisive(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    table = table[table["winner"].notna() & (table["winner"] != "")]
    loser = table["right"].where(table["winner"] == table["left"], table["left"])
    return table["winner"], loser


def test_abilities_and_standard_errors_equal_btm():
    r = json.loads((REFERENCE / "bt_simulated.json").read_text())
    table = pd.read_csv(REFERENCE / "bt_simulated.csv", keep_default_na=False)
    winners, losers = decisive(table)
    assert len(winners) == r["n_decisive"]
    got = bradley_terry(winners, losers, r["conditions"])
    assert list(got.columns) == BT_COLUMNS and list(got["condition"]) == r["conditions"]
    np.testing.assert_allclose(got["ability"], r["ability"], atol=1e-4)
    np.testing.assert_allclose(got["se"], r["se"], atol=1e-4)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(got["ci_high"] - got["ability"], z * np.array(r["se"]), atol=1e-4)
    assert got["n_comparisons"].sum() == 2 * r["n_decisive"]


def test_the_reference_condition_and_its_order_are_the_callers():
    r = json.loads((REFERENCE / "bt_simulated.json").read_text())
    table = pd.read_csv(REFERENCE / "bt_simulated.csv", keep_default_na=False)
    winners, losers = decisive(table)
    reordered = ["sdxl", "sd15", "flux", "glide"]
    got = bradley_terry(winners, losers, reordered).set_index("condition")["ability"]
    expected = dict(zip(r["conditions"], np.array(r["ability"]) - r["ability"][1]))
    for name in reordered:
        assert got[name] == pytest.approx(expected[name], abs=1e-4)


@pytest.mark.parametrize("winners, losers, phrase", [
    (["a", "a", "b"], ["b", "c", "c"], "every comparison with the other conditions"),
    (["a", "b", "a", "b"], ["b", "a", "b", "a"], "c never compared"),
    (["a", "b", "a", "b", "c", "d", "c", "d", "a"], ["b", "a", "b", "a", "d", "c", "d", "c", "c"],
     "every comparison with the other conditions"),  # {a,b} beat {c,d} every time
    (["a", "x"], ["b", "a"], "condition(s) x not among"),
    (["a", "b"], ["a", "a"], "compared with itself"),
])
def test_data_without_finite_abilities_are_named(winners, losers, phrase):
    with pytest.raises(AnalysisError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        bradley_terry(winners, losers, ["a", "b", "c"] + (["d"] if "d" in winners else []))


def test_lopsided_but_finite_data_satisfy_the_likelihood_equations():
    wins = np.array([[0, 300, 40], [1, 0, 25], [2, 6, 0]])  # wins[i, j]: i beat j
    names = ["a", "b", "c"]
    pairs = [(i, j) for i in range(3) for j in range(3) for _ in range(wins[i, j])]
    got = bradley_terry(pd.Series([names[i] for i, _ in pairs]),
                        pd.Series([names[j] for _, j in pairs]), names)
    ability = got["ability"].to_numpy()
    p = 1 / (1 + np.exp(ability[None, :] - ability[:, None]))  # P(i beats j)
    expected_wins = ((wins + wins.T) * p).sum(axis=1)
    np.testing.assert_allclose(expected_wins, wins.sum(axis=1), atol=1e-8)
    assert got["ability"].iloc[1] < -4 and np.isfinite(got["se"]).all()
