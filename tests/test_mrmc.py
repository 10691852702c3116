"""glidemed.analysis.mrmc against the published Van Dyke results and from-definition AUCs."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from glidemed.analysis import mrmc as m
from tests.conftest import ROOT

VANDYKE = ROOT / "tests" / "data" / "vandyke" / "vandyke.csv"
PUBLISHED = json.loads((ROOT / "tests" / "reference" / "mrmc_vandyke_published.json").read_text())


def near(value: float, printed: str) -> None:
    """``value`` rounds to ``printed`` (half a unit of its last printed digit)."""
    exponent = Decimal(printed).as_tuple().exponent
    tolerance = 0.5 * 10.0 ** exponent * (1 + 1e-9) + 1e-15
    assert abs(value - float(printed)) <= tolerance, f"{value} does not print as {printed}"


def near_means(means: pd.DataFrame, expected: list[dict]) -> None:
    """Each treatment's row against its printed se (and df) and CI."""
    for (_, row), ref in zip(means.iterrows(), expected, strict=True):
        near(row["se"], ref["se"])
        if "df" in ref:
            near(row["df"], ref["df"])
        near(row["ci_low"], ref["ci"][0])
        near(row["ci_high"], ref["ci"][1])


def near_difference(diff: pd.Series, ref: dict) -> None:
    """A pairwise difference against its printed se and CI."""
    near(diff["se"], ref["se"])
    near(diff["ci_low"], ref["ci"][0])
    near(diff["ci_high"], ref["ci"][1])


@pytest.fixture(scope="module")
def vandyke():
    return m.mrmc(VANDYKE)


@pytest.fixture(scope="module")
def vandyke_delong():
    return m.mrmc(VANDYKE, cov_method="delong")


def test_components_and_means_match_published(vandyke):
    ref = PUBLISHED["issue"]
    for value, printed in zip(vandyke.auc.mean(axis=1), ref["auc_means"]):
        near(value, printed)
    for name, printed in ref["components"].items():
        near(getattr(vandyke.components, name), printed)


def test_rrrc_matches_published(vandyke):
    ref = PUBLISHED["issue"]["rrrc"]
    a = vandyke.rrrc
    near(a.statistic, ref["F"])
    near(a.df1, ref["df1"])
    near(a.df2, ref["df2"])
    near(a.p, ref["p"])
    diff = a.differences.iloc[0]
    assert (diff["first"], diff["second"]) == ("1", "2")
    near(diff["ci_low"], ref["ci"][0])
    near(diff["ci_high"], ref["ci"][1])
    near(diff["p"], ref["p"])  # t^2 = F with one numerator df


def test_frrc_matches_published(vandyke):
    ref, doc = PUBLISHED["issue"]["frrc"], PUBLISHED["mrmcaov"]["frrc"]
    a = vandyke.frrc
    near(a.statistic, ref["chi2"])
    near(a.p, ref["p"])
    assert a.df1 == 1 and a.df2 is None
    diff = a.differences.iloc[0]
    near(diff["estimate"], doc["difference"]["estimate"])
    near(diff["statistic"], doc["difference"]["z"])
    near_difference(diff, doc["difference"])
    near_means(a.means, doc["means"])
    aucs = vandyke.reader_aucs.set_index(["treatment", "reader"])
    for expected in doc["reader_aucs"]:
        row = aucs.loc[(expected["treatment"], expected["reader"])]
        near(row["auc"], expected["auc"])
        near(row["se"], expected["se"])


def test_rrfc_matches_published(vandyke):
    ref, doc = PUBLISHED["issue"]["rrfc"], PUBLISHED["mrmcaov"]["rrfc"]
    a = vandyke.rrfc
    near(a.statistic, ref["F"])
    near(a.df1, ref["df1"])
    near(a.df2, ref["df2"])
    near(a.p, ref["p"])
    diff = a.differences.iloc[0]
    near(diff["statistic"], doc["difference"]["t"])
    near_difference(diff, doc["difference"])
    near_means(a.means, doc["means"])


def test_delong_matches_published(vandyke_delong):
    doc = PUBLISHED["mrmcaov"]["delong"]
    for name, printed in doc["components"].items():
        near(getattr(vandyke_delong.components, name), printed)
    a = vandyke_delong.rrrc
    near(a.statistic, doc["rrrc"]["F"])
    near(a.df2, doc["rrrc"]["df2"])
    near(a.p, doc["rrrc"]["p"])
    near_difference(a.differences.iloc[0], doc["rrrc"])
    near_means(a.means, doc["means"])


# --------------------------------------------------------------------------- from the definitions

def _random_readings(rng, t=2, r=3, n_pos=7, n_neg=9, levels=5):
    truth = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    rng.shuffle(truth)
    latent = truth[None, None, :] * 1.0 + rng.normal(size=(t, r, len(truth)))
    ratings = np.clip(np.round(latent * 1.2 + 3), 1, levels)  # ties on a 1-5 scale
    return truth, ratings


def test_aucs_match_sklearn_and_jackknife_matches_leave_one_out():
    rng = np.random.default_rng(3)
    truth, ratings = _random_readings(rng)
    auc, cov = m.covariance(ratings, truth, "jackknife")
    flat = ratings.reshape(-1, len(truth))
    for k, row in enumerate(flat):
        assert auc.reshape(-1)[k] == pytest.approx(roc_auc_score(truth, row), abs=1e-12)
    # The jackknife by brute force: recompute every AUC with each case left out.
    n = len(truth)
    pseudo = np.array([[roc_auc_score(np.delete(truth, c), np.delete(row, c)) for c in range(n)]
                       for row in flat])
    centred = pseudo - pseudo.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(cov, (n - 1) / n * centred @ centred.T, rtol=1e-10, atol=1e-14)


def test_delong_matches_definition():
    """DeLong et al. (1988) from the psi kernel over every positive-negative pair."""
    rng = np.random.default_rng(5)
    truth, ratings = _random_readings(rng, t=2, r=2, n_pos=6, n_neg=8)
    _, cov = m.covariance(ratings, truth, "delong")
    flat = ratings.reshape(-1, len(truth))
    pos, neg = flat[:, truth], flat[:, ~truth]
    psi = (np.sign(pos[:, :, None] - neg[:, None, :]) + 1) / 2  # (k, pos, neg)
    theta = psi.mean(axis=(1, 2))
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    m_pos, n_neg = pos.shape[1], neg.shape[1]
    s10 = np.array([[((v10[a] - theta[a]) * (v10[b] - theta[b])).sum() / (m_pos - 1)
                     for b in range(len(flat))] for a in range(len(flat))])
    s01 = np.array([[((v01[a] - theta[a]) * (v01[b] - theta[b])).sum() / (n_neg - 1)
                     for b in range(len(flat))] for a in range(len(flat))])
    np.testing.assert_allclose(cov, s10 / m_pos + s01 / n_neg, rtol=1e-12)


def test_one_treatment_gives_means_and_no_test():
    table = pd.read_csv(VANDYKE, dtype=str)
    result = m.mrmc(table[table["treatment"] == "1"])
    assert result.rrrc.statistic is None and result.rrrc.differences.empty
    row = result.rrrc.means.iloc[0]
    near(row["auc"], PUBLISHED["issue"]["auc_means"][0])
    assert row["ci_low"] < row["auc"] < row["ci_high"] and row["p_vs_half"] < 1e-6


def test_json_has_the_three_analyses(vandyke):
    out = json.loads(json.dumps(vandyke.as_dict()))
    assert out["rrrc"]["df1"] == 1 and "df" in out["frrc"] and out["rrfc"]["df2"] == 4
    assert len(out["rrrc"]["ci95"]) == 1 and len(out["reader_aucs"]) == 10


# --------------------------------------------------------------------------- bad input

@pytest.fixture()
def table():
    return pd.read_csv(VANDYKE, dtype=str)


def write(tmp_path, table) -> str:
    path = tmp_path / "readings.csv"
    table.to_csv(path, index=False)
    return str(path)


def test_truth_differing_between_rows(tmp_path, table):
    table.loc[5, "truth"] = "1" if table.loc[5, "truth"] == "0" else "0"
    with pytest.raises(m.MRMCError, match=r"readings\.csv rows \d+ and \d+: case 6 has truth") as err:
        m.mrmc(write(tmp_path, table))
    assert "\n" not in str(err.value)


def test_reader_missing_cases_is_named_or_dropped_explicitly(tmp_path, table):
    table = table.drop(index=table[(table["reader"] == "3") & (table["case"].isin(["7", "8"]))
                                   & (table["treatment"] == "2")].index)
    path = write(tmp_path, table)
    with pytest.raises(m.MRMCError, match=r"reader 3 did not read 2 of 114 case\(s\) under treatment 2 \(7, 8\)"):
        m.mrmc(path)
    result = m.mrmc(path, incomplete="drop-readers")
    assert result.readings.readers == ["1", "2", "4", "5"]
    assert "3" in result.readings.dropped_readers
    assert result.as_dict()["design"]["dropped_readers"]["3"].startswith("did not read 2")


def test_treatment_with_one_class(tmp_path, table):
    table = table[~((table["treatment"] == "2") & (table["truth"] == "1"))]
    with pytest.raises(m.MRMCError, match="treatment 2 has only negative cases"):
        m.mrmc(write(tmp_path, table))


def test_rating_outside_scale_names_row(tmp_path, table):
    table.loc[10, "rating"] = "7"
    with pytest.raises(m.MRMCError, match=r"readings\.csv row 12: rating 7 is outside the scale 1-5"):
        m.mrmc(write(tmp_path, table), scale=(1, 5))


@pytest.mark.parametrize("column,value,message", [
    ("rating", "high", "rating 'high' is not a number"),
    ("truth", "2", "truth must be 0"),
    ("case", "", "empty case"),
])
def test_bad_cells_name_row(tmp_path, table, column, value, message):
    table.loc[3, column] = value
    with pytest.raises(m.MRMCError, match=rf"readings\.csv row 5: {message}"):
        m.mrmc(write(tmp_path, table))


def test_duplicate_and_missing_column(tmp_path, table):
    with pytest.raises(m.MRMCError, match="rows 2, 1142: reader 1 read case 1 under treatment 1 more than once"):
        m.mrmc(write(tmp_path, pd.concat([table, table.iloc[[0]]])))
    with pytest.raises(m.MRMCError, match="missing column"):
        m.mrmc(write(tmp_path, table.drop(columns="truth")))
