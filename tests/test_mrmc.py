"""glidemed.analysis.mrmc against the published Van Dyke results and from-definition AUCs."""

from __future__ import annotations

import itertools
import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
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


def jackknife_by_brute_force(truth: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (sklearn) and their jackknife covariance, recomputing every AUC with each case left out."""
    flat = ratings.reshape(-1, len(truth))
    auc = np.array([roc_auc_score(truth, row) for row in flat])
    n = len(truth)
    pseudo = np.array([[roc_auc_score(np.delete(truth, c), np.delete(row, c)) for c in range(n)]
                       for row in flat])
    centred = pseudo - pseudo.mean(axis=1, keepdims=True)
    return auc.reshape(ratings.shape[:2]), (n - 1) / n * centred @ centred.T


def test_aucs_match_sklearn_and_jackknife_matches_leave_one_out():
    rng = np.random.default_rng(3)
    truth, ratings = _random_readings(rng)
    auc, cov = m.covariance(ratings, truth, "jackknife")
    expected_auc, expected_cov = jackknife_by_brute_force(truth, ratings)
    np.testing.assert_allclose(auc, expected_auc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-10, atol=1e-14)


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


# --------------------------------------------------------------------------- the published constraints
# Each constraint of OR-DBM MRMC / MRMCaov, quoted with its source in
# tests/reference/mrmc_or_constraints.txt, on a simulated data set where it binds, against
# its definition computed here by loops from the brute-force jackknife.

def make_readings(truth: np.ndarray, ratings: np.ndarray) -> m.Readings:
    """Readings with treatments and readers numbered from 1."""
    t, r, n = ratings.shape
    return m.Readings([str(i + 1) for i in range(t)], [str(j + 1) for j in range(r)],
                      [str(c + 1) for c in range(n)], truth, ratings)


def long_table(truth: np.ndarray, ratings: np.ndarray) -> pd.DataFrame:
    """The long CSV layout of ``ratings[treatment, reader, case]``, numbered from 1."""
    t, r, c = np.indices(ratings.shape)
    return pd.DataFrame({"reader": r.ravel() + 1, "treatment": t.ravel() + 1, "case": c.ravel() + 1,
                         "truth": truth[c.ravel()].astype(int), "rating": ratings.ravel()}).astype(str)


def _on_scale(latent: np.ndarray) -> np.ndarray:
    return np.clip(np.round(latent * 1.2 + 3), 1, 5)


def swapped_readers(seed: int, r: int = 4, n_pos: int = 20, n_neg: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Reader j's case noise under treatment 2 is reader j-1's under treatment 1: cov3 > cov2."""
    rng = np.random.default_rng(seed)
    truth = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    shared, own = rng.normal(size=(2, r, len(truth)))
    effect = 1.2 + 0.5 * rng.normal(size=(2, r, 1))  # treatment x reader effects
    latent = np.stack([shared + 0.7 * own, np.roll(shared, 1, axis=0) + 0.7 * own])
    return truth, _on_scale(truth * effect + latent)


def opposed_readers(seed: int, r: int = 3, n_pos: int = 20, n_neg: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Readers 1 and 2 err in opposite directions on every case: cov2 < 0 within each treatment."""
    rng = np.random.default_rng(seed)
    truth = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    noise = rng.normal(size=(2, r, len(truth)))
    noise[:, 1] = -noise[:, 0]
    return truth, _on_scale(truth * 1.5 + noise)


def or_by_definition(truth: np.ndarray, ratings: np.ndarray, level: float = 0.95) -> dict:
    """Two treatments: the OR quantities and the three analyses, one formula at a time."""
    auc, cov = jackknife_by_brute_force(truth, ratings)
    t, r = auc.shape
    assert t == 2
    kinds: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for (i, j), (i2, j2) in itertools.product(itertools.product(range(t), range(r)), repeat=2):
        if (i, j) != (i2, j2):
            kinds[1 if j == j2 else 2 if i == i2 else 3].append(cov[i * r + j, i2 * r + j2])
    cov1, cov2, cov3 = (float(np.mean(kinds[k])) for k in (1, 2, 3))
    var = float(np.mean(np.diag(cov)))
    grand = auc.mean()
    ms_t = r * sum((auc[i].mean() - grand) ** 2 for i in range(t)) / (t - 1)
    ms_tr = sum((auc[i, j] - auc[i].mean() - auc[:, j].mean() + grand) ** 2
                for i in range(t) for j in range(r)) / ((t - 1) * (r - 1))
    diff = auc[0].mean() - auc[1].mean()
    z = stats.norm.ppf((1 + level) / 2)
    out = {"auc": auc, "cov1": cov1, "cov2": cov2, "cov3": cov3, "var_error": var, "ms_t": ms_t, "ms_tr": ms_tr}
    # RRRC: Error term = MS(T*R) + r*max[Cov2 - Cov3,0], ddf_H of Hillis (2007).
    den = ms_tr + r * max(cov2 - cov3, 0.0)
    df2 = den ** 2 / (ms_tr ** 2 / ((t - 1) * (r - 1)))
    se = math.sqrt(2 / r * den)
    q = stats.t.ppf((1 + level) / 2, df2)
    out["rrrc"] = {"F": ms_t / den, "df2": df2, "p": stats.f.sf(ms_t / den, t - 1, df2), "se": se,
                   "ci": (diff - q * se, diff + q * se)}
    # FRRC: X2 = (t-1)*MS(T)/[Var(error) - Cov1 + (r-1)*max(Cov2 - Cov3,0)].
    den = var - cov1 + (r - 1) * max(cov2 - cov3, 0.0)
    se = math.sqrt(2 / r * den)
    out["frrc"] = {"chi2": (t - 1) * ms_t / den, "p": stats.chi2.sf((t - 1) * ms_t / den, t - 1), "se": se,
                   "ci": (diff - z * se, diff + z * se)}
    means: dict[str, list[dict]] = {"rrrc": [], "frrc": []}
    for i in range(t):
        block = cov[i * r:(i + 1) * r, i * r:(i + 1) * r]
        ms_r = float(np.var(auc[i], ddof=1))
        var_i = float(np.mean(np.diag(block)))
        cov2_i = float(np.mean(block[~np.eye(r, dtype=bool)]))
        # RRRC: StdErr = sqrt{1/r * [MS(R) + r*max(Cov2,0)]}, Df = [MS(R)+ max(r*cov2,0)]**2/[(MS(R)**2/(r-1)].
        se = math.sqrt((ms_r + r * max(cov2_i, 0.0)) / r)
        df = (ms_r + max(r * cov2_i, 0.0)) ** 2 / (ms_r ** 2 / (r - 1))
        half = stats.t.ppf((1 + level) / 2, df) * se
        means["rrrc"].append({"cov2": cov2_i, "se": se, "df": df,
                              "raw_ci": (auc[i].mean() - half, auc[i].mean() + half)})
        # FRRC: StdErr = sqrt{1/r * [Var(error) + (r-1)*max(Cov2,0)]}.
        se = math.sqrt((var_i + (r - 1) * max(cov2_i, 0.0)) / r)
        means["frrc"].append({"cov2": cov2_i, "se": se, "raw_ci": (auc[i].mean() - z * se, auc[i].mean() + z * se)})
    for name, rows in means.items():
        for row in rows:  # MRMCaov trunc_ci: pmax(0, lower), pmin(upper, 1)
            row["ci"] = (max(0.0, row["raw_ci"][0]), min(1.0, row["raw_ci"][1]))
    out["means"] = means
    return out


def assert_matches(value: float, expected: float) -> None:
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-13)


def test_max_cov2_minus_cov3_binds_in_frrc_and_rrrc():
    """cov2 < cov3: both the FRRC and the RRRC error terms use max(cov2 - cov3, 0) = 0."""
    truth, ratings = swapped_readers(0)
    ref = or_by_definition(truth, ratings)
    assert ref["cov2"] < ref["cov3"]  # the constraint binds on this data set
    result = m.analyse(make_readings(truth, ratings))
    for name in ("cov1", "cov2", "cov3", "var_error", "ms_t", "ms_tr"):
        assert_matches(getattr(result.components, name), ref[name])
    frrc, diff = result.frrc, result.frrc.differences.iloc[0]
    assert_matches(frrc.statistic, ref["frrc"]["chi2"])
    assert_matches(frrc.p, ref["frrc"]["p"])
    assert_matches(diff["se"], ref["frrc"]["se"])
    assert_matches(diff["ci_low"], ref["frrc"]["ci"][0])
    assert_matches(diff["ci_high"], ref["frrc"]["ci"][1])
    rrrc, diff = result.rrrc, result.rrrc.differences.iloc[0]
    assert_matches(rrrc.statistic, ref["rrrc"]["F"])
    assert_matches(rrrc.df2, ref["rrrc"]["df2"])
    assert_matches(rrrc.p, ref["rrrc"]["p"])
    assert_matches(diff["se"], ref["rrrc"]["se"])
    assert_matches(diff["ci_low"], ref["rrrc"]["ci"][0])
    assert_matches(diff["ci_high"], ref["rrrc"]["ci"][1])
    # var(T:R) is reported as the ANOVA estimate, unconstrained (it can be negative).
    assert_matches(result.components.var_tr, ref["ms_tr"] - ref["var_error"] + ref["cov1"] + ref["cov2"] - ref["cov3"])


def test_max_cov2_binds_in_single_treatment_intervals():
    """cov2 < 0 within each treatment: RRRC and FRRC treatment CIs use max(cov2, 0) = 0."""
    truth, ratings = opposed_readers(1)
    ref = or_by_definition(truth, ratings)
    result = m.analyse(make_readings(truth, ratings))
    for name in ("rrrc", "frrc"):
        for row, expected in zip(getattr(result, name).means.to_dict("records"), ref["means"][name], strict=True):
            assert expected["cov2"] < 0  # the constraint binds on this data set
            assert_matches(row["se"], expected["se"])
            assert_matches(row["ci_low"], expected["ci"][0])
            assert_matches(row["ci_high"], expected["ci"][1])
            if name == "rrrc":
                assert_matches(row["df"], expected["df"])


def test_treatment_intervals_are_truncated_to_0_1():
    """AUCs near 1 with wide intervals: MRMCaov's trunc_ci caps the treatment CIs at 1."""
    rng = np.random.default_rng(2)
    truth = np.r_[np.ones(6, bool), np.zeros(6, bool)]
    ratings = _on_scale(truth * 2.2 + 0.8 * rng.normal(size=(2, 3, 12)))
    ref = or_by_definition(truth, ratings)
    result = m.analyse(make_readings(truth, ratings))
    for name in ("rrrc", "frrc"):
        rows = getattr(result, name).means.to_dict("records")
        assert any(e["raw_ci"][1] > 1 for e in ref["means"][name])  # the truncation binds
        for row, expected in zip(rows, ref["means"][name], strict=True):
            assert_matches(row["ci_low"], expected["ci"][0])
            assert_matches(row["ci_high"], expected["ci"][1])
            assert row["ci_high"] <= 1.0


# The Franken et al. (1992) data (MRMCaov, GPL-3) are not in the repository yet: this check is
# run by hand, `python tests/reference/check_franken.py franken.csv`, until they are.
FRANKEN_PUBLISHED = {  # OR-DBM MRMC 2.51 on Franken1.lrc: tests/reference/mrmc_or_constraints.txt
    "cov2": "0.00048364", "cov3": "0.00051251", "var_tr": "-0.00071276",
    "frrc": {"chi2": "0.32101", "p": "0.5710", "se": "0.01916", "ci": ["-0.02670", "0.04840"]},
    "rrrc": {"F": "4.69", "p": "0.1188", "df2": "3.00", "ci": ["-0.00509", "0.02680"]},
    "rrfc": {"F": "4.69", "p": "0.1188", "ci": ["-0.00509", "0.02680"]},
}


def check_franken(path: Path) -> None:
    """The published data set where cov2 < cov3: OR-DBM MRMC's FRRC chi-square uses the max."""
    result = m.mrmc(path)
    ref, c = FRANKEN_PUBLISHED, result.components
    near(c.cov2, ref["cov2"])
    near(c.cov3, ref["cov3"])
    near(c.var_tr, ref["var_tr"])
    near(result.frrc.statistic, ref["frrc"]["chi2"])
    near(result.frrc.p, ref["frrc"]["p"])
    near_difference(result.frrc.differences.iloc[0], ref["frrc"])
    for name in ("rrrc", "rrfc"):
        a = getattr(result, name)
        near(a.statistic, ref[name]["F"])
        near(a.p, ref[name]["p"])
        near(a.differences.iloc[0]["ci_low"], ref[name]["ci"][0])
        near(a.differences.iloc[0]["ci_high"], ref[name]["ci"][1])
    near(result.rrrc.df2, ref["rrrc"]["df2"])


# --------------------------------------------------------------------------- degenerate variances

def degenerate_readings(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(truth, ratings)`` with 3 readers, 2 treatments (1 for ``one_treatment_all_equal``)."""
    truth, ratings = _random_readings(np.random.default_rng(3), t=2, r=3)
    if kind == "all_equal":
        return truth, np.full_like(ratings, 3.0)
    if kind == "perfect_separation":
        return truth, np.where(truth, 5.0, 1.0) * np.ones_like(ratings)
    if kind == "identical_treatments":
        return truth, np.stack([ratings[0], ratings[0]])
    if kind == "identical_readers":  # every reader reads like reader 1
        return truth, np.repeat(ratings[:, :1], 3, axis=1)
    if kind == "one_treatment_all_equal":
        return truth, np.full_like(ratings[:1], 3.0)
    raise ValueError(kind)


NO_VARIANCE = "no variance between readers or over cases (every reader's AUC is "
# kind: (first line of MRMCResult.degenerate, analyses whose test is not estimable,
#        analyses whose treatment CIs are not estimable)
DEGENERATE = {
    "all_equal": (NO_VARIANCE + "0.5 under treatment 1 and 0.5 under treatment 2", m.ANALYSES, m.ANALYSES),
    "perfect_separation": (NO_VARIANCE + "1 under treatment 1 and 1 under treatment 2", m.ANALYSES, m.ANALYSES),
    "identical_treatments": ("the treatments give every reader the same AUC whichever cases are left out "
                             "(MS(T) = MS(T:R) = 0, var(error) = cov1): no test between treatments is estimable",
                             m.ANALYSES, ()),
    "identical_readers": ("no treatment-by-reader variance (MS(T:R) = 0: every reader's AUC differs alike "
                          "between treatments): RRFC test not estimable; RRRC, FRRC tests given", ("rrfc",), ("rrfc",)),
    "one_treatment_all_equal": (NO_VARIANCE + "0.5 under treatment 1,", (), m.ANALYSES),
}


@pytest.mark.parametrize("kind", DEGENERATE)
def test_degenerate_variance_is_reported_not_raised(kind):
    truth, ratings = degenerate_readings(kind)
    first_line, no_test, no_ci = DEGENERATE[kind]
    result = m.mrmc(long_table(truth, ratings))
    assert result.degenerate[0].startswith(first_line)
    assert all("\n" not in line for line in result.degenerate)
    data = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert data["degenerate"] == result.degenerate
    two = len(result.readings.treatments) == 2
    for name in m.ANALYSES:
        a, out = getattr(result, name), data[name]
        assert ("test" in a.not_estimable) == (name in no_test) and out["not_estimable"] == a.not_estimable
        if name in no_test:
            assert a.statistic is None and a.p is None and out["statistic"] is None and out["ci95"] == [[None, None]]
            assert out["differences"][0]["estimate"] == pytest.approx(ratings_diff(result))
        elif two:
            assert math.isfinite(a.statistic) and 0 <= a.p <= 1
        for row, label in zip(out["treatments"], result.readings.treatments, strict=True):
            missing = f"CI of treatment {label}" in a.not_estimable
            assert missing == (name in no_ci)
            assert (row["ci_low"] is None) == missing and row["auc"] is not None


def ratings_diff(result: m.MRMCResult) -> float:
    return float(result.auc[0].mean() - result.auc[1].mean())


def test_rrrc_with_no_treatment_by_reader_variance_takes_the_infinite_df_limit():
    """MS(T:R) = 0 but cov2 > cov3: RRRC's ddf_H is infinite; F is then chi-square(1) / 1."""
    truth, ratings = degenerate_readings("identical_readers")
    result = m.mrmc(long_table(truth, ratings))
    c, r = result.components, 3
    assert c.ms_tr < 1e-30 and c.cov2 > c.cov3
    f = c.ms_t / (c.ms_tr + r * (c.cov2 - c.cov3))
    assert result.rrrc.df2 == math.inf
    assert_matches(result.rrrc.statistic, f)
    assert_matches(result.rrrc.p, stats.chi2.sf(f, 1))
    assert_matches(result.rrrc.differences.iloc[0]["p"], result.rrrc.p)


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
