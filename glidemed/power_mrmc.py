"""Sizing an MRMC ROC reader study (e.g. a visual Turing test): readers x cases for a given AUC.

Two designs:

- ``difference``: two treatments read by every reader on the same cases; power to show
  AUC(A) - AUC(B) = ``difference`` with the ORH test.
- ``chance``: one treatment (e.g. a generator's images against real ones); power to show
  that the readers' mean AUC differs from 0.5 (``difference`` = AUC - 0.5).

Two methods:

- ``hillis``: Hillis, Obuchowski & Berbaum (2011), from OR variance components (a pilot
  study's, or those of the Roe-Metz model below, estimated from large simulated pilots).
  The case-level terms (var(error), cov1, cov2, cov3) scale with pilot cases / cases;
  var(T:R) = MS(T:R) - var(error) + cov1 + max(cov2 - cov3, 0) (their eqn. 9), set to 0 when
  negative, as RJafroc does (tests/reference/mrmc_or_constraints.txt).
- ``roe-metz``: simulate studies from the Roe & Metz (1997) model and analyse each with
  :mod:`glidemed.analysis.mrmc`; power is the share with p < alpha (RRRC).

The Roe-Metz model: the confidence of reader j on case k under treatment i is
``mu_i * truth_k + R_j^(s) + TR_ij^(s) + C_k + TC_ik + RC_jk + e_ijk``, with independent
normal effects, reader effects drawn separately for positive and negative cases (s), and
the case-level variances summing to 1. ``mu_i = sqrt(2) Phi^-1(AUC_i)``, so ``AUC_i`` is
the AUC of a reader with zero reader effects.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from glidemed import outside_json
from glidemed.analysis import mrmc as orh
from glidemed.errors import AnalysisError

DESIGNS = ("difference", "chance")
METHODS = ("hillis", "roe-metz")
ANALYSES = ("rrrc", "frrc", "rrfc")
POWER_COLUMNS = ["readers", "cases", "method", "analysis", "power", "mcse", "n_failed"]


# --------------------------------------------------------------------------- OR components

@dataclass(frozen=True)
class ORComponents:
    """OR variance components of a pilot study with ``cases`` cases.

    ``var_r`` and ``var_tr`` are reader-level; the rest scale with 1 / cases. For the
    ``chance`` design only ``var_r`` (reader variance within one treatment, T:R included),
    ``var_error`` and ``cov2`` are used.
    """

    cases: int
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_tr: float
    var_r: float

    @classmethod
    def from_result(cls, result: orh.MRMCResult, design: str = "difference") -> "ORComponents":
        """From an ORH analysis; for ``chance``, per-treatment components averaged over treatments."""
        c = result.components
        n = len(result.readings.cases)
        if design == "difference":
            if len(result.readings.treatments) != 2:
                raise AnalysisError(f"--pilot: the difference design needs a pilot with 2 treatments, "
                                    f"it has {len(result.readings.treatments)}")
            # Hillis et al. (2011) eqn. 9: with max(cov2 - cov3, 0), as in the RRRC error term, so
            # that a study the size of the pilot has the pilot's error term and df.
            var_tr = c.ms_tr - c.var_error + c.cov1 + max(c.cov2 - c.cov3, 0.0)
            return cls(n, c.var_error, c.cov1, c.cov2, c.cov3, var_tr, c.var_r)
        per = [orh._per_treatment(result.auc, result.cov, i) for i in range(len(result.auc))]
        var_error = float(np.mean([p[1] for p in per]))
        cov2 = float(np.mean([p[2] for p in per]))
        var_r = float(np.mean([p[0] - p[1] + p[2] for p in per]))  # E MS_R(i) = var_r + var_error - cov2
        return cls(n, var_error, 0.0, cov2, 0.0, 0.0, var_r)


def hillis_power(comps: ORComponents, readers: int, cases: int, difference: float,
                 design: str = "difference", analysis: str = "rrrc", alpha: float = 0.05) -> float:
    """Power of the ORH test for ``readers`` x ``cases`` (Hillis et al. 2011, eqn. 10); NaN
    where the components leave the test's error term at 0 (not estimable)."""
    if readers < 2 and analysis != "frrc":
        return math.nan
    k = comps.cases / cases
    d2 = difference ** 2
    if design == "chance":
        ms_r = max(comps.var_r, 0.0) + k * (comps.var_error - comps.cov2)
        cov2 = k * max(comps.cov2, 0.0)
        if analysis == "rrrc":
            den = ms_r + readers * cov2
            df2 = _hillis_df(den, ms_r, readers - 1)
        elif analysis == "frrc":
            den, df2 = k * comps.var_error + (readers - 1) * cov2, math.inf
        else:
            den, df2 = ms_r, readers - 1
        return _f_power(readers * d2 / den, df2, alpha) if den > 0 else math.nan
    var_tr = max(comps.var_tr, 0.0)
    spread = max(comps.cov2 - comps.cov3, 0.0)
    if analysis == "rrrc":
        den = var_tr + k * (comps.var_error - comps.cov1 + (readers - 1) * spread)
        df2 = _hillis_df(den, var_tr + k * (comps.var_error - comps.cov1 - spread), readers - 1)
    elif analysis == "frrc":
        den, df2 = k * (comps.var_error - comps.cov1 + (readers - 1) * spread), math.inf
    else:
        den, df2 = var_tr + k * (comps.var_error - comps.cov1 - spread), readers - 1
    return _f_power(readers * d2 / (2 * den), df2, alpha) if den > 0 else math.nan


def _hillis_df(den: float, mean_square: float, df: float) -> float:
    """Hillis' denominator df, den^2 / (E[MS]^2 / df); infinite where E[MS] is 0."""
    return den ** 2 / (mean_square ** 2 / df) if mean_square > 0 else math.inf


def _f_power(noncentrality: float, df2: float, alpha: float) -> float:
    if not math.isfinite(df2):
        return float(stats.ncx2.sf(stats.chi2.ppf(1 - alpha, 1), 1, noncentrality))
    return float(stats.ncf.sf(stats.f.ppf(1 - alpha, 1, df2), 1, df2, noncentrality))


def cases_needed(comps: ORComponents, readers: int, difference: float, target: float = 0.8,
                 design: str = "difference", analysis: str = "rrrc", alpha: float = 0.05,
                 most: int = 100_000) -> int | None:
    """Fewest cases giving at least ``target`` power with ``readers`` readers (None: not reachable)."""
    def enough(c: int) -> bool:
        p = hillis_power(comps, readers, c, difference, design, analysis, alpha)
        return math.isfinite(p) and p >= target

    if not enough(most):
        return None
    low, high = 1, most  # enough(high); power rises with cases
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return low if enough(low) else high


# --------------------------------------------------------------------------- Roe-Metz

@dataclass(frozen=True)
class RoeMetz:
    """Roe-Metz variance components (case-level ones sum to 1) and the share of positives."""

    var_r: float = 0.011
    var_tr: float = 0.011
    var_c: float = 0.3
    var_tc: float = 0.3
    var_rc: float = 0.2
    var_e: float = 0.2
    positive_share: float = 0.5

    def check(self) -> "RoeMetz":
        bad = [f.name for f in fields(self) if not (getattr(self, f.name) >= 0)]
        if bad:
            raise AnalysisError(f"Roe-Metz parameters: {', '.join(bad)} must be at least 0")
        if not 0 < self.positive_share < 1:
            raise AnalysisError(f"Roe-Metz parameters: positive_share must lie between 0 and 1, "
                                f"got {self.positive_share}")
        if self.var_c + self.var_tc + self.var_rc + self.var_e <= 0:
            raise AnalysisError("Roe-Metz parameters: the case-level variances are all 0")
        return self


def load_roe_metz(path: str | Path | None, **overrides) -> RoeMetz:
    """Defaults, replaced by a TOML/JSON file's values and then by ``overrides`` (None: keep)."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AnalysisError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            if path.suffix == ".json":
                values = outside_json.loads(text)
            else:
                import tomllib
                values = tomllib.loads(text)
        except ValueError as exc:
            raise AnalysisError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'} ({exc})") from None
        values = values.get("roe_metz", values)
        known = {f.name for f in fields(RoeMetz)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise AnalysisError(f"{path}: unknown Roe-Metz parameter(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(known))})")
        try:
            values = {k: float(v) for k, v in values.items()}
        except (TypeError, ValueError):
            raise AnalysisError(f"{path}: Roe-Metz parameters must be numbers") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(RoeMetz(), **values).check()


def simulate_ratings(model: RoeMetz, aucs: list[float], readers: int, cases: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One study: ``(ratings[treatment, reader, case], truth[case])``."""
    t = len(aucs)
    n_pos = min(max(int(round(cases * model.positive_share)), 2), cases - 2)
    truth = np.zeros(cases, bool)
    truth[:n_pos] = True
    case_sd = math.sqrt(model.var_c + model.var_tc + model.var_rc + model.var_e)
    mu = math.sqrt(2) * case_sd * stats.norm.ppf(np.asarray(aucs, float))
    s = truth.astype(int)
    reader = rng.normal(0, math.sqrt(model.var_r), (2, readers))  # R_j^(s), by truth class
    reader_tr = rng.normal(0, math.sqrt(model.var_tr), (2, t, readers))  # TR_ij^(s)
    x = (mu[:, None, None] * truth[None, None, :]
         + reader[s].T[None]  # (1, readers, cases)
         + reader_tr[s].transpose(1, 2, 0)  # (t, readers, cases)
         + rng.normal(0, math.sqrt(model.var_c), cases)[None, None, :]
         + rng.normal(0, math.sqrt(model.var_tc), (t, 1, cases))
         + rng.normal(0, math.sqrt(model.var_rc), (1, readers, cases))
         + rng.normal(0, math.sqrt(model.var_e), (t, readers, cases)))
    return x, truth


def _p_values(ratings: np.ndarray, truth: np.ndarray, design: str) -> dict[str, float]:
    readings = orh.Readings([str(i) for i in range(len(ratings))], [str(j) for j in range(ratings.shape[1])],
                            [str(k) for k in range(len(truth))], truth, ratings)
    result = orh.analyse(readings)
    if design == "chance":
        return {name: float(getattr(result, name).means["p_vs_half"].iloc[0]) for name in ANALYSES}
    # A study whose test is not estimable (e.g. every AUC 1) counts as failed.
    return {name: math.nan if getattr(result, name).p is None else float(getattr(result, name).p)
            for name in ANALYSES}


def roe_metz_power(model: RoeMetz, aucs: list[float], readers: int, cases: int, n_sims: int,
                   alpha: float = 0.05, seed: int = 0) -> dict[str, tuple[float, float, int]]:
    """Simulated power per analysis: ``{analysis: (power, mcse, n_failed)}``."""
    design = "chance" if len(aucs) == 1 else "difference"
    rng = np.random.default_rng(np.random.SeedSequence([seed, readers, cases]))
    rejected = dict.fromkeys(ANALYSES, 0)
    failed = dict.fromkeys(ANALYSES, 0)
    for _ in range(n_sims):
        ratings, truth = simulate_ratings(model, aucs, readers, cases, rng)
        for name, p in _p_values(ratings, truth, design).items():
            if math.isfinite(p):
                rejected[name] += p < alpha
            else:
                failed[name] += 1
    out = {}
    for name in ANALYSES:
        ok = n_sims - failed[name]
        power = rejected[name] / ok if ok else math.nan
        out[name] = (power, math.sqrt(power * (1 - power) / ok) if ok else math.nan, failed[name])
    return out


def roe_metz_components(model: RoeMetz, aucs: list[float], readers: int = 10, cases: int = 1000,
                        n_pilots: int = 20, seed: int = 0) -> ORComponents:
    """OR components of the Roe-Metz model: the mean over ``n_pilots`` large simulated pilots."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    design = "chance" if len(aucs) == 1 else "difference"
    found = []
    for _ in range(n_pilots):
        ratings, truth = simulate_ratings(model, aucs, readers, cases, rng)
        readings = orh.Readings([str(i) for i in range(len(aucs))], [str(j) for j in range(readers)],
                                [str(k) for k in range(cases)], truth, ratings)
        found.append(asdict(ORComponents.from_result(orh.analyse(readings), design)))
    mean = {k: float(np.mean([f[k] for f in found])) for k in found[0]}
    mean["cases"] = cases
    return ORComponents(**mean)


# --------------------------------------------------------------------------- the stage

def _pilot_components(pilot: str | Path, design: str) -> ORComponents:
    """The OR components of a pilot table; a pilot without variance over cases is refused."""
    result = orh.mrmc(pilot)
    comps = ORComponents.from_result(result, design)
    if not comps.var_error > 0:
        raise AnalysisError(f"--pilot {pilot}: {result.degenerate[0]}; sizing a study needs a pilot whose "
                            f"AUCs vary over cases")
    return comps


def turing_power(reader_counts: list[int], case_counts: list[int], aucs: list[float], *,
                 method: str = "roe-metz", pilot: str | Path | None = None,
                 model: RoeMetz | None = None, n_sims: int = 1000, alpha: float = 0.05,
                 target: float = 0.8, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Power per (readers, cases) and, with ``hillis``, the cases needed per reader count.

    ``aucs``: one AUC (the ``chance`` design, tested against 0.5) or two (the
    ``difference`` design). With ``pilot`` (an MRMC table) ``hillis`` uses its OR
    components and ``difference`` = AUC(A) - AUC(B) (only the difference matters).
    """
    if method not in METHODS:
        raise AnalysisError(f"--method: expected one of {', '.join(METHODS)} for the Turing design, got {method!r}")
    if len(aucs) not in (1, 2) or not all(0 < a < 1 for a in aucs):
        raise AnalysisError(f"--auc: expected one or two AUCs between 0 and 1, got {aucs}")
    if min(reader_counts) < 2:
        raise AnalysisError("--raters: an MRMC analysis needs at least 2 readers")
    if min(case_counts) < 4:
        raise AnalysisError("--cases: at least 4 cases (2 of each class)")
    if pilot is not None and method != "hillis":
        raise AnalysisError("--pilot: only the hillis method uses a pilot study")
    design = "chance" if len(aucs) == 1 else "difference"
    difference = aucs[0] - 0.5 if design == "chance" else aucs[0] - aucs[1]
    model = (model or RoeMetz()).check()
    rows, needed = [], []
    if method == "hillis":
        comps = _pilot_components(pilot, design) if pilot is not None else roe_metz_components(model, aucs, seed=seed)
        for readers in reader_counts:
            for cases in case_counts:
                for name in ANALYSES:
                    rows.append({"readers": readers, "cases": cases, "method": method, "analysis": name,
                                 "power": hillis_power(comps, readers, cases, difference, design, name, alpha),
                                 "mcse": 0.0, "n_failed": 0})
            needed.append({"readers": readers, "target": target,
                           **{f"cases_{name}": cases_needed(comps, readers, difference, target, design,
                                                            name, alpha) for name in ANALYSES}})
    else:
        for readers in reader_counts:
            for cases in case_counts:
                for name, (p, mcse, nf) in roe_metz_power(model, aucs, readers, cases, n_sims,
                                                          alpha, seed).items():
                    rows.append({"readers": readers, "cases": cases, "method": method, "analysis": name,
                                 "power": p, "mcse": mcse, "n_failed": nf})
    table = pd.DataFrame(rows, columns=POWER_COLUMNS)
    table.attrs.update(design=design, aucs=list(aucs), difference=difference, method=method, alpha=alpha,
                       seed=seed, n_sims=n_sims if method == "roe-metz" else None,
                       pilot=str(pilot) if pilot is not None else None,
                       roe_metz=asdict(model) if pilot is None else None)
    if method == "hillis":
        table.attrs["or_components"] = asdict(comps)
    return table, pd.DataFrame(needed)


def write_turing_power(table: pd.DataFrame, needed: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write power_turing.csv, power_turing.json (settings, cases needed) and power_turing.png/.svg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glidemed.fileio import write_text_atomic
    from glidemed.power import save_figure

    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / "power_turing.csv", out_dir / "power_turing.json"
    try:
        write_text_atomic(csv_path, table.to_csv(index=False))
        settings = dict(table.attrs, cases_needed=json.loads(needed.to_json(orient="records")))
        write_text_atomic(json_path, json.dumps(settings, indent=1) + "\n")
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        rrrc = table[table["analysis"] == "rrrc"]
        for cases, part in rrrc.groupby("cases"):
            part = part.sort_values("readers")
            ax.errorbar(part["readers"], part["power"], yerr=1.96 * part["mcse"], marker="o", capsize=3,
                        label=f"{cases} cases")
        ax.axhline(0.8, color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, 1.02)
        ax.set_xticks(sorted(rrrc["readers"].unique()))
        ax.set_xlabel("readers")
        ax.set_ylabel("power, RRRC (bars: ±1.96 MCSE)")
        what = (f"AUC {settings['aucs'][0]} vs 0.5" if settings["design"] == "chance"
                else f"AUC difference {settings['difference']:.3f}")
        ax.set_title(f"Reader study: {what}, {settings['method']}", fontsize=9)
        ax.legend(fontsize=8)
        paths = [csv_path, json_path, *save_figure(fig, out_dir, "power_turing")]
        plt.close(fig)
    except OSError as exc:
        raise AnalysisError(f"{out_dir}: cannot write the power analysis: {exc.strerror or exc}") from None
    return paths


def parse_aucs(text: str) -> list[float]:
    """``"0.7"`` or ``"0.75,0.8"`` as a list of AUCs."""
    try:
        aucs = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise AnalysisError(f"--auc: expected one or two numbers such as 0.7 or 0.75,0.8, got {text!r}") from None
    if len(aucs) not in (1, 2) or not all(0 < a < 1 for a in aucs):
        raise AnalysisError(f"--auc: expected one or two AUCs between 0 and 1, got {text!r}")
    if len(aucs) == 2 and aucs[0] == aucs[1]:
        raise AnalysisError(f"--auc: the two AUCs are equal ({text}); give the difference to detect")
    if len(aucs) == 1 and aucs[0] == 0.5:
        raise AnalysisError("--auc 0.5 is chance itself; give the AUC the readers should reach")
    return aucs


def run_turing_power(study, out_dir: str | Path | None = None, *, rater_counts: list[int],
                     case_counts: list[int], aucs: str, method: str | None = None,
                     pilot: str | Path | None = None, roe_metz_file: str | Path | None = None,
                     n_sims: int = 1000, alpha: float = 0.05, target: float = 0.8, seed: int = 0) -> str:
    """The ``glidemed power --design turing`` stage: compute, write into ``out_dir``
    (default build/<study>/power/) and return the text to print."""
    from glidemed.paths import study_build_dir

    method = method or "roe-metz"
    table, needed = turing_power(rater_counts, case_counts, parse_aucs(aucs), method=method, pilot=pilot,
                                 model=load_roe_metz(roe_metz_file), n_sims=n_sims, alpha=alpha,
                                 target=target, seed=seed)
    paths = write_turing_power(table, needed, out_dir or study_build_dir(study) / "power")
    wide = table.pivot_table(index=["readers", "cases"], columns="analysis", values="power").reset_index()
    lines = [wide.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    if len(needed):
        lines.append(f"cases needed for power {target:g}:")
        lines.append(needed.drop(columns="target").to_string(index=False, na_rep="unreachable"))
    lines.append(f"-> {', '.join(str(p) for p in paths)}")
    return "\n".join(lines)
