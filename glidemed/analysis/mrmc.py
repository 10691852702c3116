"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski-Rockette with Hillis' df (ORH).

Input is a long table with one row per reading: ``reader, treatment, case, truth, rating``
(``truth`` 1 = positive/diseased/generated, 0 = negative; a higher rating means "more
likely positive"). Every reader reads every case under every treatment (a fully paired,
factorial design).

The steps follow Hillis (2007, 2008) and the R package MRMCaov:

- empirical (trapezoidal, Wilcoxon) AUC per reader and treatment;
- the error covariance matrix of those AUCs over cases, by the jackknife (default; one
  case left out at a time, positives and negatives alike) or by DeLong's method;
- its averages: var(error), cov1 (same reader, different treatments), cov2 (different
  readers, same treatment), cov3 (different readers and treatments), and the ANOVA mean
  squares MS(T), MS(R), MS(T:R) of the AUCs, giving var(R) and var(T:R);
- random readers / random cases (RRRC): F = MS(T) / (MS(T:R) + r max(cov2 - cov3, 0)) with
  Hillis' denominator df; fixed readers / random cases (FRRC): chi-square
  (t - 1) MS(T) / (var(error) - cov1 + (r - 1) max(cov2 - cov3, 0)); random readers / fixed
  cases (RRFC): F = MS(T) / MS(T:R) on (t - 1, (t - 1)(r - 1)) df; every constraint (max(...,
  0), the truncation of CIs) as OR-DBM MRMC 2.51 prints it, whether it binds or not
  (tests/reference/mrmc_or_constraints.txt, with the source lines);
- for every pair of treatments the difference with its test and 95 % CI, and for every
  treatment its mean AUC with a 95 % CI (truncated to [0, 1] as MRMCaov does);
- a variance estimated as 0 (every rating equal, identical treatments or readers, perfect
  separation) leaves the tests and CIs that divide by it not estimable: they are NaN (null in
  JSON), each analysis says which and why (``Analysis.not_estimable``), and
  ``MRMCResult.degenerate`` sums it up in one line per cause; the rest is given.

Pure numpy/scipy/pandas.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from glidemed.errors import AnalysisError

COLUMNS = ("reader", "treatment", "case", "truth", "rating")
COV_METHODS = ("jackknife", "delong")
INCOMPLETE_MODES = ("refuse", "drop-readers")
ANALYSES = ("rrrc", "frrc", "rrfc")


class MRMCError(AnalysisError):
    """An MRMC table cannot be analysed as given."""


# --------------------------------------------------------------------------- input

def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV table of readings; every cell kept as text (validated by :func:`prepare`)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise MRMCError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MRMCError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    table.attrs["source"] = str(path)
    return table


def _natural(labels) -> list[str]:
    """Labels sorted numerically when they all are numbers, else as text."""
    labels = list(dict.fromkeys(labels))
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


@dataclass
class Readings:
    """A validated, fully paired design: ``ratings[treatment, reader, case]``."""

    treatments: list[str]
    readers: list[str]
    cases: list[str]
    truth: np.ndarray  # (cases,) bool, True = positive
    ratings: np.ndarray  # (treatments, readers, cases) float
    dropped_readers: dict[str, str] = field(default_factory=dict)  # reader -> why


def prepare(table: pd.DataFrame, source: str | None = None, scale: tuple[float, float] | None = None,
            incomplete: str = "refuse") -> Readings:
    """Validate a long table and arrange it as :class:`Readings`.

    Raises :class:`MRMCError` (one line naming the file and the row, counting the header
    as row 1) for missing columns or values, a truth that is not 0/1 or differs between
    rows of one case, a duplicated reading, a rating that is no number or lies outside
    ``scale``, a treatment with one truth class, and a reader who did not read every case
    under every treatment (``incomplete="refuse"``, the default). With
    ``incomplete="drop-readers"`` such readers are left out and listed in
    ``dropped_readers``, never silently.
    """
    source = source or table.attrs.get("source", "table")
    if incomplete not in INCOMPLETE_MODES:
        raise MRMCError(f"incomplete: expected one of {', '.join(INCOMPLETE_MODES)}, got {incomplete!r}")
    table = table.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise MRMCError(f"{source}: missing column(s) {', '.join(missing)} "
                        f"(expected {', '.join(COLUMNS)})")
    if table.empty:
        raise MRMCError(f"{source}: no rows")
    rows = np.arange(len(table)) + 2  # file row numbers, header = row 1
    text = {c: table[c].astype(str).str.strip() for c in COLUMNS}
    for column in COLUMNS:
        blank = (text[column] == "") | table[column].isna().to_numpy()
        if blank.any():
            raise MRMCError(f"{source} row {rows[np.argmax(blank)]}: empty {column}")
    truth = pd.to_numeric(text["truth"], errors="coerce")
    bad = ~truth.isin([0, 1])
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise MRMCError(f"{source} row {rows[i]}: truth must be 0 (negative) or 1 (positive), "
                        f"got {text['truth'].iloc[i]!r}")
    rating = pd.to_numeric(text["rating"], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(rating)
    if bad.any():
        i = int(np.argmax(bad))
        raise MRMCError(f"{source} row {rows[i]}: rating {text['rating'].iloc[i]!r} is not a number")
    if scale is not None:
        low, high = scale
        bad = (rating < low) | (rating > high)
        if bad.any():
            i = int(np.argmax(bad))
            raise MRMCError(f"{source} row {rows[i]}: rating {text['rating'].iloc[i]} is outside "
                            f"the scale {low:g}-{high:g}")
    frame = pd.DataFrame({"reader": text["reader"].to_numpy(), "treatment": text["treatment"].to_numpy(),
                          "case": text["case"].to_numpy(), "truth": truth.to_numpy(int),
                          "rating": rating, "row": rows})
    key = ["treatment", "reader", "case"]
    dup = frame.duplicated(key, keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        other = frame[dup & (frame["treatment"] == first["treatment"]) & (frame["reader"] == first["reader"])
                      & (frame["case"] == first["case"])]["row"].tolist()
        raise MRMCError(f"{source} rows {', '.join(map(str, other))}: reader {first['reader']} read case "
                        f"{first['case']} under treatment {first['treatment']} more than once")
    per_case = frame.groupby("case")["truth"].nunique()
    if (per_case > 1).any():
        case = per_case[per_case > 1].index[0]
        part = frame[frame["case"] == case]
        first = part.iloc[0]
        other = part[part["truth"] != first["truth"]].iloc[0]
        raise MRMCError(f"{source} rows {first['row']} and {other['row']}: case {case} has truth "
                        f"{first['truth']} for reader {first['reader']}/treatment {first['treatment']} "
                        f"but {other['truth']} for reader {other['reader']}/treatment {other['treatment']}")
    for treatment, part in frame.groupby("treatment"):
        classes = set(part["truth"])
        if len(classes) < 2:
            raise MRMCError(f"{source}: treatment {treatment} has only {'positive' if 1 in classes else 'negative'} "
                            f"cases (row {part['row'].iloc[0]} ...); an AUC needs both classes")
    treatments, readers, cases = (_natural(frame[c]) for c in ("treatment", "reader", "case"))
    dropped: dict[str, str] = {}
    counts = frame.groupby("reader").size()
    expected = len(treatments) * len(cases)
    incomplete_readers = [r for r in readers if counts.get(r, 0) < expected]
    if incomplete_readers:
        whys = {}
        for reader in incomplete_readers:
            part = frame[frame["reader"] == reader]
            for treatment in treatments:
                seen = set(part.loc[part["treatment"] == treatment, "case"])
                lacking = [c for c in cases if c not in seen]
                if lacking:
                    shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
                    whys[reader] = (f"did not read {len(lacking)} of {len(cases)} case(s) under "
                                    f"treatment {treatment} ({shown})")
                    break
        if incomplete == "refuse":
            reader = incomplete_readers[0]
            more = (f"; also reader(s) {', '.join(incomplete_readers[1:])}" if len(incomplete_readers) > 1 else "")
            raise MRMCError(f"{source}: reader {reader} {whys[reader]}{more}; a paired analysis needs every "
                            f"reader to read every case under every treatment (drop the incomplete "
                            f"readers explicitly to analyse the rest)")
        dropped = whys
        readers = [r for r in readers if r not in dropped]
        frame = frame[frame["reader"].isin(readers)]
        if not readers:
            raise MRMCError(f"{source}: no reader read every case under every treatment")
    case_truth = frame.groupby("case")["truth"].first().reindex(cases)
    t_index = {t: i for i, t in enumerate(treatments)}
    r_index = {r: i for i, r in enumerate(readers)}
    c_index = {c: i for i, c in enumerate(cases)}
    ratings = np.full((len(treatments), len(readers), len(cases)), np.nan)
    ratings[frame["treatment"].map(t_index).to_numpy(), frame["reader"].map(r_index).to_numpy(),
            frame["case"].map(c_index).to_numpy()] = frame["rating"].to_numpy()
    truth_arr = case_truth.to_numpy(int).astype(bool)
    for label, n in (("positive", truth_arr.sum()), ("negative", (~truth_arr).sum())):
        if n < 2:
            raise MRMCError(f"{source}: {n} {label} case(s); the analysis needs at least 2 of each class")
    return Readings(treatments, readers, cases, truth_arr, ratings, dropped)


# --------------------------------------------------------------------------- AUCs and covariances

def placements(ratings: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical AUCs and DeLong placement values along the last axis.

    Returns ``(auc, v10, v01)``: ``v10[..., i]`` is the share of negatives that positive i
    out-rates (ties count half), ``v01[..., j]`` the share of positives that out-rate
    negative j; ``auc`` is the mean of either.
    """
    pos, neg = ratings[..., truth], ratings[..., ~truth]
    flat_pos = pos.reshape(-1, pos.shape[-1])
    flat_neg = neg.reshape(-1, neg.shape[-1])
    v10 = np.empty_like(flat_pos)
    v01 = np.empty_like(flat_neg)
    for k in range(len(flat_pos)):
        sorted_neg, sorted_pos = np.sort(flat_neg[k]), np.sort(flat_pos[k])
        below = np.searchsorted(sorted_neg, flat_pos[k], "left")
        not_above = np.searchsorted(sorted_neg, flat_pos[k], "right")
        v10[k] = (below + not_above) / (2 * len(sorted_neg))
        above = len(sorted_pos) - np.searchsorted(sorted_pos, flat_neg[k], "right")
        not_below = len(sorted_pos) - np.searchsorted(sorted_pos, flat_neg[k], "left")
        v01[k] = (above + not_below) / (2 * len(sorted_pos))
    v10 = v10.reshape(pos.shape)
    v01 = v01.reshape(neg.shape)
    return v10.mean(axis=-1), v10, v01


def covariance(ratings: np.ndarray, truth: np.ndarray, method: str = "jackknife") -> tuple[np.ndarray, np.ndarray]:
    """AUCs ``(t, r)`` and their error covariance matrix ``(t*r, t*r)`` (treatment-major)."""
    auc, v10, v01 = placements(ratings, truth)
    t, r = auc.shape
    flat_auc = auc.reshape(t * r)
    v10, v01 = v10.reshape(t * r, -1), v01.reshape(t * r, -1)
    n_pos, n_neg = v10.shape[1], v01.shape[1]
    if method == "delong":
        d10 = v10 - flat_auc[:, None]
        d01 = v01 - flat_auc[:, None]
        cov = d10 @ d10.T / ((n_pos - 1) * n_pos) + d01 @ d01.T / ((n_neg - 1) * n_neg)
    elif method == "jackknife":
        # Leaving out positive i: (n1 AUC - v10_i) / (n1 - 1); negative j likewise.
        pseudo = np.empty((t * r, n_pos + n_neg))
        pseudo[:, :n_pos] = (n_pos * flat_auc[:, None] - v10) / (n_pos - 1)
        pseudo[:, n_pos:] = (n_neg * flat_auc[:, None] - v01) / (n_neg - 1)
        n = pseudo.shape[1]
        centred = pseudo - pseudo.mean(axis=1, keepdims=True)
        cov = (n - 1) / n * centred @ centred.T
    else:
        raise MRMCError(f"covariance method: expected one of {', '.join(COV_METHODS)}, got {method!r}")
    return auc, cov


@dataclass(frozen=True)
class Components:
    """OR variance components and the ANOVA mean squares of the AUCs."""

    var_r: float
    var_tr: float
    cov1: float
    cov2: float
    cov3: float
    var_error: float
    ms_t: float
    ms_r: float
    ms_tr: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def _mean_where(matrix: np.ndarray, mask: np.ndarray) -> float:
    return float(matrix[mask].mean()) if mask.any() else 0.0


def components(auc: np.ndarray, cov: np.ndarray) -> Components:
    """OR components from AUCs ``(t, r)`` and their covariance (as MRMCaov's vcov_comps)."""
    t, r = auc.shape
    treatment = np.repeat(np.arange(t), r)
    reader = np.tile(np.arange(r), t)
    same_t = treatment[:, None] == treatment[None, :]
    same_r = reader[:, None] == reader[None, :]
    cov1 = _mean_where(cov, ~same_t & same_r)
    cov2 = _mean_where(cov, same_t & ~same_r)
    cov3 = _mean_where(cov, ~same_t & ~same_r)
    var_error = float(np.diag(cov).mean())
    grand = auc.mean()
    t_means, r_means = auc.mean(axis=1), auc.mean(axis=0)
    ms_t = r * ((t_means - grand) ** 2).sum() / (t - 1) if t > 1 else 0.0
    ms_r = t * ((r_means - grand) ** 2).sum() / (r - 1) if r > 1 else 0.0
    resid = auc - t_means[:, None] - r_means[None, :] + grand
    ms_tr = (resid ** 2).sum() / ((t - 1) * (r - 1)) if t > 1 and r > 1 else 0.0
    if t > 1:
        var_r = (ms_r - ms_tr) / t - cov1 + cov3
        var_tr = ms_tr - var_error + cov1 + (cov2 - cov3)
    else:
        var_r, var_tr = ms_r - var_error + cov2, 0.0
    return Components(float(var_r), float(var_tr), cov1, cov2, cov3, var_error,
                      float(ms_t), float(ms_r), float(ms_tr))


# --------------------------------------------------------------------------- the three analyses

# A mean square of AUCs at most _MS_ZERO, or a case-covariance term at most _REL_ZERO times
# var(error), is rounding error around 0. (AUCs move in steps of 1 / (2 n1 n0): a real mean
# square exceeds _MS_ZERO up to 10^6 cases of each class.)
_MS_ZERO = 1e-26
_REL_ZERO = 1e-9

NO_TR = "no treatment-by-reader variance (MS(T:R) = 0: every reader's AUC differs alike between treatments)"


def _no_ms(ms: float) -> bool:
    return ms <= _MS_ZERO


def _no_cov(value: float, comps: Components) -> bool:
    return value <= _REL_ZERO * comps.var_error


@dataclass
class Analysis:
    """One of RRRC, FRRC, RRFC: the global test, pairwise differences and treatment means.

    ``not_estimable`` maps ``"test"`` (the global test and the differences' SE, test and CI)
    or ``"CI of treatment X"`` to the variance found to be 0 that leaves it undefined; those
    values are NaN (``None`` in JSON), the estimates themselves are kept.
    """

    name: str
    statistic: float | None  # F (rrrc, rrfc) or chi-square (frrc); None with one treatment or not estimable
    df1: float | None
    df2: float | None  # None for the chi-square test
    p: float | None
    differences: pd.DataFrame  # first, second, estimate, se, df, statistic, p, ci_low, ci_high
    means: pd.DataFrame  # treatment, auc, se, df, statistic_vs_half, p_vs_half, ci_low, ci_high
    not_estimable: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        out: dict = {"statistic": _num(self.statistic), "p": _num(self.p)}
        if self.name == "frrc":
            out["df"] = _num(self.df1)
        else:
            out.update(df1=_num(self.df1), df2=_num(self.df2))
        out["ci95"] = [[_num(a), _num(b)] for a, b in zip(self.differences["ci_low"], self.differences["ci_high"])]
        out["differences"] = [{k: _num(v) for k, v in row.items()} for row in self.differences.to_dict("records")]
        out["treatments"] = [{k: _num(v) for k, v in row.items()} for row in self.means.to_dict("records")]
        out["not_estimable"] = dict(self.not_estimable)
        return out


def _num(value):
    if value is None or isinstance(value, str):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


DIFFERENCE_COLUMNS = ["first", "second", "estimate", "se", "df", "statistic", "p", "ci_low", "ci_high"]


@lru_cache(maxsize=256)
def _critical(level: float, df: float | None) -> float:
    """Two-sided critical value at ``level``: normal (``df`` None) or Student's t (cached: ppf is slow)."""
    return float(stats.norm.ppf((1 + level) / 2) if df is None else stats.t.ppf((1 + level) / 2, df))


def _differences(labels: list[str], means: np.ndarray, se: float, df: float | None,
                 level: float) -> pd.DataFrame:
    """Every pair of treatments; ``se`` NaN: only the estimates."""
    rows = []
    for a, b in combinations(range(len(labels)), 2):
        estimate = means[a] - means[b]
        statistic = estimate / se
        crit = _critical(level, df)
        p = 2 * (stats.norm.sf(abs(statistic)) if df is None else stats.t.sf(abs(statistic), df))
        rows.append({"first": labels[a], "second": labels[b], "estimate": estimate, "se": se,
                     "df": df if df is not None else math.inf, "statistic": statistic, "p": p,
                     "ci_low": estimate - crit * se, "ci_high": estimate + crit * se})
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def _mean_row(label: str, estimate: float, se: float, df: float | None, level: float) -> dict:
    """A treatment's mean AUC with its CI (truncated to [0, 1]); ``se`` NaN: only the AUC."""
    if math.isnan(se):
        return {"treatment": label, "auc": estimate, **dict.fromkeys(MEAN_COLUMNS[2:], math.nan)}
    crit = _critical(level, df)
    statistic = (estimate - 0.5) / se
    p = 2 * (stats.norm.sf(abs(statistic)) if df is None else stats.t.sf(abs(statistic), df))
    return {"treatment": label, "auc": estimate, "se": se, "df": df if df is not None else math.inf,
            "statistic_vs_half": statistic, "p_vs_half": p,
            "ci_low": max(0.0, estimate - crit * se), "ci_high": min(1.0, estimate + crit * se)}


MEAN_COLUMNS = ["treatment", "auc", "se", "df", "statistic_vs_half", "p_vs_half", "ci_low", "ci_high"]


def _per_treatment(auc: np.ndarray, cov: np.ndarray, i: int) -> tuple[float, float, float]:
    """MS(R), var(error) and cov2 of treatment i alone."""
    t, r = auc.shape
    block = cov[i * r:(i + 1) * r, i * r:(i + 1) * r]
    ms_r = float(auc[i].var(ddof=1)) if r > 1 else 0.0
    cov2 = _mean_where(block, ~np.eye(r, dtype=bool))
    return ms_r, float(np.diag(block).mean()), cov2


def _f_sf(f: float, df1: float, df2: float) -> float:
    """P(F > f); with infinite df2 the limit, chi-square(df1) / df1 (scipy's F gives NaN there)."""
    return float(stats.chi2.sf(df1 * f, df1) if math.isinf(df2) else stats.f.sf(f, df1, df2))


def _finish(name: str, labels: list[str], means: np.ndarray, rows: list[dict], not_estimable: dict[str, str],
            level: float, test: tuple[float, float, float | None, float] | None = None,
            se: float = math.nan, df: float | None = math.nan) -> Analysis:
    """The Analysis of the treatment ``rows`` and, with two or more treatments, the test
    ``(statistic, df1, df2, p)`` (None: not estimable) and the differences' SE and df."""
    means_frame = pd.DataFrame(rows, columns=MEAN_COLUMNS)
    if len(labels) < 2:
        return Analysis(name, None, None, None, None, pd.DataFrame(columns=DIFFERENCE_COLUMNS), means_frame,
                        not_estimable)
    statistic, df1, df2, p = test if test is not None else (None, len(labels) - 1, None, None)
    return Analysis(name, statistic, df1, df2, p, _differences(labels, means, se, df, level), means_frame,
                    not_estimable)


def rrrc(labels, auc, cov, comps: Components, level: float = 0.95) -> Analysis:
    """Random readers and random cases (Hillis 2007, 2008)."""
    t, r = auc.shape
    means = auc.mean(axis=1)
    rows, missing = [], {}
    for i, label in enumerate(labels):
        ms_r, _, cov2 = _per_treatment(auc, cov, i)
        if _no_ms(ms_r) and _no_cov(max(cov2, 0.0), comps):
            missing[f"CI of treatment {label}"] = (f"no between-reader variance under treatment {label} "
                                                   f"(MS(R) = 0) and cov2 <= 0")
            rows.append(_mean_row(label, means[i], math.nan, None, level))
            continue
        se = math.sqrt(ms_r / r + max(cov2, 0.0))
        denom_df = (ms_r + r * max(cov2, 0.0)) ** 2 / (ms_r ** 2 / (r - 1)) if not _no_ms(ms_r) else math.inf
        rows.append(_mean_row(label, means[i], se, denom_df, level))
    if t < 2:
        return _finish("rrrc", labels, means, rows, missing, level)
    spread = max(comps.cov2 - comps.cov3, 0.0)
    if _no_ms(comps.ms_tr) and _no_cov(spread, comps):
        missing["test"] = f"{NO_TR} and cov2 <= cov3"
        return _finish("rrrc", labels, means, rows, missing, level)
    denominator = comps.ms_tr + r * spread
    f = comps.ms_t / denominator
    df2 = denominator ** 2 / (comps.ms_tr ** 2 / ((t - 1) * (r - 1))) if not _no_ms(comps.ms_tr) else math.inf
    p = _f_sf(f, t - 1, df2)
    return _finish("rrrc", labels, means, rows, missing, level, (f, t - 1, df2, p),
                   math.sqrt(2 / r * denominator), df2)


def frrc(labels, auc, cov, comps: Components, level: float = 0.95) -> Analysis:
    """Fixed readers, random cases: chi-square test, normal intervals."""
    t, r = auc.shape
    means = auc.mean(axis=1)
    rows, missing = [], {}
    for i, label in enumerate(labels):
        _, var_error, cov2 = _per_treatment(auc, cov, i)
        variance = (var_error + (r - 1) * max(cov2, 0.0)) / r
        if _no_cov(variance, comps):
            missing[f"CI of treatment {label}"] = f"no case variance under treatment {label} (var(error) = 0)"
            rows.append(_mean_row(label, means[i], math.nan, None, level))
        else:
            rows.append(_mean_row(label, means[i], math.sqrt(variance), None, level))
    if t < 2:
        return _finish("frrc", labels, means, rows, missing, level)
    denominator = comps.var_error - comps.cov1 + (r - 1) * max(comps.cov2 - comps.cov3, 0.0)
    if _no_cov(denominator, comps):
        missing["test"] = ("no case variance in the differences between treatments "
                           "(var(error) - cov1 + (r - 1) max(cov2 - cov3, 0) = 0)")
        return _finish("frrc", labels, means, rows, missing, level)
    chi2 = (t - 1) * comps.ms_t / denominator
    p = float(stats.chi2.sf(chi2, t - 1))
    return _finish("frrc", labels, means, rows, missing, level, (chi2, t - 1, None, p),
                   math.sqrt(2 / r * denominator), None)


def rrfc(labels, auc, cov, comps: Components, level: float = 0.95) -> Analysis:
    """Random readers, fixed cases: the ANOVA of the AUCs."""
    t, r = auc.shape
    means = auc.mean(axis=1)
    rows, missing = [], {}
    for i, label in enumerate(labels):
        ms_r = float(auc[i].var(ddof=1))
        if _no_ms(ms_r):
            missing[f"CI of treatment {label}"] = f"no between-reader variance under treatment {label} (MS(R) = 0)"
            rows.append(_mean_row(label, means[i], math.nan, None, level))
        else:
            rows.append(_mean_row(label, means[i], math.sqrt(ms_r / r), r - 1, level))
    if t < 2:
        return _finish("rrfc", labels, means, rows, missing, level)
    if _no_ms(comps.ms_tr):
        missing["test"] = NO_TR
        return _finish("rrfc", labels, means, rows, missing, level)
    df2 = (t - 1) * (r - 1)
    f = comps.ms_t / comps.ms_tr
    p = float(stats.f.sf(f, t - 1, df2))
    return _finish("rrfc", labels, means, rows, missing, level, (f, t - 1, df2, p),
                   math.sqrt(2 / r * comps.ms_tr), df2)


# --------------------------------------------------------------------------- the whole analysis

@dataclass
class MRMCResult:
    """Everything :func:`mrmc` found; :meth:`as_dict` is the ``glidemed mrmc --json`` output."""

    readings: Readings
    auc: np.ndarray  # (treatments, readers)
    cov: np.ndarray
    cov_method: str
    components: Components
    rrrc: Analysis
    frrc: Analysis
    rrfc: Analysis

    @property
    def reader_aucs(self) -> pd.DataFrame:
        """One row per reader and treatment: reader, treatment, auc, se (sqrt of the error variance)."""
        rd = self.readings
        t, r = self.auc.shape
        return pd.DataFrame({"reader": np.tile(rd.readers, t), "treatment": np.repeat(rd.treatments, r),
                             "auc": self.auc.reshape(-1), "se": np.sqrt(np.diag(self.cov))})

    @property
    def degenerate(self) -> list[str]:
        """One line for each variance found to be 0: what it means, what it leaves not
        estimable and which tests are given (empty when every analysis is estimable)."""
        missing = {name: getattr(self, name).not_estimable for name in ANALYSES}
        if not any(missing.values()):
            return []
        c, labels = self.components, self.readings.treatments
        if c.var_error <= 0 and _no_ms(c.ms_tr) and all(_no_ms(v) for v in self.auc.var(axis=1, ddof=1)):
            aucs = " and ".join(f"{a:.6g} under treatment {label}" for label, a in zip(labels, self.auc[:, 0]))
            return [f"no variance between readers or over cases (every reader's AUC is {aucs}, whichever "
                    f"cases are left out: e.g. every rating equal, or every positive case rated above every "
                    f"negative one): no test or CI is estimable, the AUCs are given"]
        lines = []
        tested = [name for name in ANALYSES if "test" not in missing[name]]
        identical = len(labels) > 1 and not tested and _no_ms(c.ms_t)
        if identical:
            lines.append("the treatments give every reader the same AUC whichever cases are left out "
                         "(MS(T) = MS(T:R) = 0, var(error) = cov1): no test between treatments is estimable")
        grouped: dict[str, list[str]] = {}
        for tests in (True, False):  # the tests' lines first
            for name in ANALYSES:
                for part, reason in missing[name].items():
                    if (part == "test") == tests and not (identical and tests):
                        grouped.setdefault(reason, []).append(f"{name.upper()} {part}")
        for reason, parts in grouped.items():
            line = f"{reason}: {', '.join(parts)} not estimable"
            if any(part.endswith(" test") for part in parts):
                line += (f"; {', '.join(n.upper() for n in tested)} test{'s' * (len(tested) > 1)} given" if tested
                         else "; no test between treatments is estimable")
            lines.append(line)
        return lines

    def as_dict(self) -> dict:
        rd = self.readings
        return {
            "design": {"treatments": rd.treatments, "readers": rd.readers, "cases": len(rd.cases),
                       "positive_cases": int(rd.truth.sum()), "negative_cases": int((~rd.truth).sum()),
                       "dropped_readers": rd.dropped_readers},
            "cov_method": self.cov_method,
            "degenerate": self.degenerate,
            "variance_components": self.components.as_dict(),
            "reader_aucs": [{k: _num(v) for k, v in row.items()} for row in self.reader_aucs.to_dict("records")],
            **{name: getattr(self, name).as_dict() for name in ANALYSES},
        }


def analyse(readings: Readings, cov_method: str = "jackknife", level: float = 0.95) -> MRMCResult:
    """ORH analysis of validated readings (see the module docstring)."""
    if cov_method not in COV_METHODS:
        raise MRMCError(f"covariance method: expected one of {', '.join(COV_METHODS)}, got {cov_method!r}")
    if len(readings.readers) < 2:
        raise MRMCError(f"{len(readings.readers)} reader(s): random-reader analyses need at least 2")
    auc, cov = covariance(readings.ratings, readings.truth, cov_method)
    comps = components(auc, cov)
    labels = readings.treatments
    return MRMCResult(readings, auc, cov, cov_method, comps, rrrc(labels, auc, cov, comps, level),
                      frrc(labels, auc, cov, comps, level), rrfc(labels, auc, cov, comps, level))


def mrmc(table: pd.DataFrame | str | Path, cov_method: str = "jackknife",
         scale: tuple[float, float] | None = None, incomplete: str = "refuse",
         level: float = 0.95) -> MRMCResult:
    """Validate a long table (or read it from a CSV file) and run the ORH analysis."""
    if not isinstance(table, pd.DataFrame):
        table = read_table(table)
    return analyse(prepare(table, scale=scale, incomplete=incomplete), cov_method, level)


# --------------------------------------------------------------------------- output

TITLES = {"rrrc": "random readers, random cases (ORH, Hillis df)",
          "frrc": "fixed readers, random cases", "rrfc": "random readers, fixed cases"}


def summary_text(result: MRMCResult) -> str:
    """A plain-text account of :func:`analyse`'s result, for the terminal."""
    rd, c = result.readings, result.components
    lines = [f"{len(rd.readers)} readers x {len(rd.treatments)} treatment(s) x {len(rd.cases)} cases "
             f"({int(rd.truth.sum())} positive, {int((~rd.truth).sum())} negative); "
             f"covariance: {result.cov_method}"]
    for reader, why in rd.dropped_readers.items():
        lines.append(f"left out: reader {reader} {why}")
    lines.append(f"var(R) = {c.var_r:.10f}  var(TxR) = {c.var_tr:.10f}  var(error) = {c.var_error:.10f}")
    lines.append(f"cov1 = {c.cov1:.10f}  cov2 = {c.cov2:.10f}  cov3 = {c.cov3:.10f}")
    lines.extend(f"not estimable: {line}" for line in result.degenerate)
    for name in ANALYSES:
        a: Analysis = getattr(result, name)
        lines.append(f"{name.upper()}: {TITLES[name]}")
        if "test" in a.not_estimable:
            lines.append("  test: not estimable")
        elif a.statistic is not None:
            if name == "frrc":
                lines.append(f"  chi2 = {a.statistic:.6f}, df = {a.df1:g}, p = {a.p:.6g}")
            else:
                lines.append(f"  F = {a.statistic:.6f}, df = ({a.df1:g}, {a.df2:.7g}), p = {a.p:.6g}")
        for row in a.differences.itertuples():
            interval = ("CI and p not estimable" if math.isnan(row.se) else
                        f"95% CI ({row.ci_low:.7f}, {row.ci_high:.7f}), p = {row.p:.6g}")
            lines.append(f"  {row.first} - {row.second}: {row.estimate:+.6f}, {interval}")
        for row in a.means.itertuples():
            interval = ("CI not estimable" if math.isnan(row.se) else
                        f"95% CI ({row.ci_low:.6f}, {row.ci_high:.6f}), vs 0.5 p = {row.p_vs_half:.3g}")
            lines.append(f"  {row.treatment}: AUC {row.auc:.6f}, {interval}")
    return "\n".join(lines)


def write_json(result: MRMCResult, path: str | Path) -> Path:
    """Write :meth:`MRMCResult.as_dict` to ``path`` (atomically)."""
    from glidemed.fileio import describe_os_error, write_text_atomic

    path = Path(path)
    try:
        write_text_atomic(path, json.dumps(result.as_dict(), indent=1) + "\n")
    except OSError as exc:
        raise describe_os_error(exc, path, "the MRMC results") from None
    return path
