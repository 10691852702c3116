"""Analysis of a visual Turing test: can readers tell each condition's images from real ones?

From the tidy ratings of a ``task = "turing"`` survey (one confidence rating per image,
real ... generated) this builds the MRMC table ``reader, treatment, case, truth,
rating`` (truth 1 = generated, treatment = the generated condition, cases = that
condition's images plus every real image shown) and reports, per generated condition:

- the readers' mean AUC of telling its images from real ones, with the RRRC (ORH) 95 %
  CI and the test against 0.5 ("readers cannot tell"); FRRC and RRFC alongside;
- per reader: AUC, and accuracy, sensitivity (generated called generated) and
  specificity (real called real) at the scale's midpoint with Wilson 95 % intervals;
  answers at the midpoint itself ("unsure" on an odd scale) are left out of those three
  and counted;
- comparisons between conditions: ORH when both were read on the same cases; otherwise
  (different generated images, shared real ones: the usual design) a two-way bootstrap
  that resamples readers and, independently, the images of each condition and the real
  images (shared, so their correlation is kept), giving a percentile CI and p-value;
- ROC curves per reader and pooled.

Readers who did not rate every image of a condition's analysis are left out of it and
listed (never silently). An analysis that the data cannot support (the ORH analyses and
the comparisons need at least 2 readers) is listed in ``analyses_not_done`` with the
reason, and everything else, the per-reader tables, the ROC figure and the ledger, is
still written; so is the ledger of a study without one usable answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from glidemed.analysis import mrmc as orh
from glidemed.analysis.key_results import p_value
from glidemed.analysis.labels import Labels
from glidemed.analysis.methods import design_record
from glidemed.analysis.tidy import usable
from glidemed.errors import AnalysisError, GlidemedError
from glidemed.study import Study
from glidemed.survey.key import SurveyKey

SUMMARY_SCHEMA = "glidemed-turing-summary/1"
DEFAULT_BOOTSTRAP = 1000  # as glidemed analyze
AUC_COLUMNS = ["condition", "analysis", "auc", "se", "df", "ci_low", "ci_high", "statistic_vs_half",
               "p_vs_half", "readers", "generated_images", "real_images", "left_out_readers"]
ACCURACY_COLUMNS = ["condition", "reader", "n", "unsure", "accuracy", "accuracy_low", "accuracy_high",
                    "sensitivity", "sensitivity_low", "sensitivity_high", "specificity",
                    "specificity_low", "specificity_high"]
COMPARISON_COLUMNS = ["first", "second", "difference", "ci_low", "ci_high", "p", "method", "readers",
                      "n_boot"]


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    z = stats.norm.ppf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def mrmc_table(ratings: pd.DataFrame, key, first_value: int = 1) -> pd.DataFrame:
    """The long MRMC table of a Turing survey's tidy ratings (first readings, usable only).

    Columns ``reader, condition, case, truth, rating``: ``case`` is the image's panel
    token, ``truth`` 1 for a generated image, 0 for a real one (a control panel),
    ``rating`` the scale value as shown (level index + ``first_value``). ``key``: the
    build's SurveyKey (or its dict).
    """
    use = usable(ratings)
    use = use[~use["repeat"].fillna(False).astype(bool)]
    control = {token: p.control for token, p in SurveyKey.of(key).panels.items()}
    return pd.DataFrame({
        "reader": use["rater"].astype(str).to_numpy(),
        "condition": use["condition"].astype(str).to_numpy(),
        "case": use["panel"].astype(str).to_numpy(),
        "truth": [0 if control.get(t, False) else 1 for t in use["panel"]],
        "rating": use["score"].astype(int).to_numpy() + first_value,
    })


def condition_table(table: pd.DataFrame, condition: str) -> pd.DataFrame:
    """One condition's images and every real image, as a single-treatment MRMC table."""
    part = table[(table["condition"] == condition) | (table["truth"] == 0)]
    return part.assign(treatment=condition)[["reader", "treatment", "case", "truth", "rating"]]


# --------------------------------------------------------------------------- per condition

@dataclass
class ConditionResult:
    condition: str
    readings: orh.Readings
    result: orh.MRMCResult | None  # None: the ORH analyses were not estimable (see ``note``)
    accuracy: pd.DataFrame
    note: str = ""

    @property
    def reader_aucs(self) -> pd.DataFrame:
        """reader, condition, auc, se (se NaN without the ORH analysis)."""
        if self.result is not None:
            return self.result.reader_aucs.rename(columns={"treatment": "condition"})
        rd = self.readings
        return pd.DataFrame({"reader": rd.readers, "condition": self.condition,
                             "auc": orh.placements(rd.ratings[0], rd.truth)[0], "se": math.nan})


def analyse_condition(table: pd.DataFrame, condition: str, midpoint: float) -> ConditionResult:
    """AUC (ORH, one treatment) and the per-reader midpoint accuracy of one condition. The
    readings must be valid (else :class:`AnalysisError`); an ORH analysis they cannot support
    (one reader, a degenerate variance) leaves ``result`` None and says why in ``note``."""
    part = condition_table(table, condition)
    try:
        readings = orh.prepare(part, source=f"condition {condition}", incomplete="drop-readers")
    except orh.MRMCError as exc:
        raise AnalysisError(f"turing analysis of condition {condition}: {exc.message}") from None
    result, note = None, ""
    try:
        result = orh.analyse(readings)
    except (GlidemedError, ValueError, ArithmeticError) as exc:
        note = f"MRMC (ORH) AUC of {condition}: not estimable: {_reason(exc)}"
    rows = []
    truth = readings.truth
    for j, reader in enumerate(readings.readers):
        r = readings.ratings[0, j]
        decided = r != midpoint
        called = r > midpoint
        correct = int((called == truth)[decided].sum())
        n = int(decided.sum())
        tp, n_pos = int((called & truth & decided).sum()), int((truth & decided).sum())
        tn, n_neg = int((~called & ~truth & decided).sum()), int((~truth & decided).sum())
        row = {"condition": condition, "reader": reader, "n": n, "unsure": int((~decided).sum())}
        for name, k, m in (("accuracy", correct, n), ("sensitivity", tp, n_pos), ("specificity", tn, n_neg)):
            low, high = wilson_interval(k, m)
            row.update({name: k / m if m else math.nan, f"{name}_low": low, f"{name}_high": high})
        rows.append(row)
    return ConditionResult(condition, readings, result, pd.DataFrame(rows, columns=ACCURACY_COLUMNS),
                           note)


def _reason(exc: Exception) -> str:
    """The one-line reason of an error from the MRMC module (ours, or numpy's/Python's)."""
    return exc.message if isinstance(exc, GlidemedError) else f"{type(exc).__name__}: {exc}"


def auc_rows(c: ConditionResult) -> list[dict]:
    """One row per ORH analysis; without them, the readers' mean AUC and nothing else."""
    rd = c.readings
    out = []
    for name in orh.ANALYSES:
        m = (getattr(c.result, name).means.iloc[0] if c.result is not None else
             dict.fromkeys(["se", "df", "ci_low", "ci_high", "statistic_vs_half", "p_vs_half"],
                           math.nan) | {"auc": float(c.reader_aucs["auc"].mean())})
        out.append({"condition": c.condition, "analysis": name, "auc": m["auc"], "se": m["se"],
                    "df": m["df"], "ci_low": m["ci_low"], "ci_high": m["ci_high"],
                    "statistic_vs_half": m["statistic_vs_half"], "p_vs_half": m["p_vs_half"],
                    "readers": len(rd.readers), "generated_images": int(rd.truth.sum()),
                    "real_images": int((~rd.truth).sum()),
                    "left_out_readers": "; ".join(f"{r}: {why}" for r, why in rd.dropped_readers.items())})
    return out


# --------------------------------------------------------------------------- between conditions

def compare_conditions(table: pd.DataFrame, first: str, second: str, n_boot: int = DEFAULT_BOOTSTRAP,
                       seed: int = 0) -> dict:
    """AUC(first) - AUC(second): ORH when both were read on the same cases, else the
    two-way bootstrap over readers and images (see the module docstring)."""
    a, b = (table[table["condition"] == c] for c in (first, second))
    if set(a["case"]) == set(b["case"]):
        both = pd.concat([condition_table(table, first), condition_table(table, second)])
        result = orh.mrmc(both, incomplete="drop-readers")
        d = result.rrrc.differences.iloc[0]
        sign = 1 if d["first"] == first else -1
        low, high = sorted((sign * d["ci_low"], sign * d["ci_high"]))
        return {"first": first, "second": second, "difference": sign * d["estimate"], "ci_low": low,
                "ci_high": high, "p": d["p"], "method": "ORH (paired cases)",
                "readers": len(result.readings.readers), "n_boot": 0}
    real = table[table["truth"] == 0]
    cases = {name: sorted(set(part["case"])) for name, part in (("a", a), ("b", b), ("real", real))}
    readers = sorted(set(table["reader"]))
    complete = [r for r in readers if all(
        set(cases[k]) <= set(part.loc[part["reader"] == r, "case"]) for k, part in (("a", a), ("b", b), ("real", real)))]
    if len(complete) < 2:
        raise AnalysisError(f"turing comparison {first} vs {second}: fewer than 2 readers rated every image")

    def psi(part: pd.DataFrame, gen_cases: list[str]) -> np.ndarray:
        """(readers, generated images, real images) of psi = 1, 1/2, 0."""
        wide = pd.concat([part, real]).pivot_table(index="reader", columns="case", values="rating",
                                                   aggfunc="first").loc[complete]
        g = wide[gen_cases].to_numpy(float)[:, :, None]
        r = wide[cases["real"]].to_numpy(float)[:, None, :]
        return (np.sign(g - r) + 1) / 2

    psi_a, psi_b = psi(a, cases["a"]), psi(b, cases["b"])
    estimate = float(psi_a.mean() - psi_b.mean())
    if n_boot == 0:
        return {"first": first, "second": second, "difference": estimate, "ci_low": math.nan,
                "ci_high": math.nan, "p": math.nan, "method": "bootstrap skipped (--bootstrap 0)",
                "readers": len(complete), "n_boot": 0}
    rng = np.random.default_rng(seed)
    n_r, n_a, n_b, n_real = len(complete), psi_a.shape[1], psi_b.shape[1], psi_a.shape[2]
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        wr = np.bincount(rng.integers(0, n_r, n_r), minlength=n_r).astype(float)
        wa = np.bincount(rng.integers(0, n_a, n_a), minlength=n_a).astype(float)
        wb = np.bincount(rng.integers(0, n_b, n_b), minlength=n_b).astype(float)
        wx = np.bincount(rng.integers(0, n_real, n_real), minlength=n_real).astype(float)
        auc_a = np.einsum("rij,i,j->r", psi_a, wa, wx) / (n_a * n_real)
        auc_b = np.einsum("rij,i,j->r", psi_b, wb, wx) / (n_b * n_real)
        diffs[i] = (wr @ (auc_a - auc_b)) / n_r
    low, high = np.quantile(diffs, [0.025, 0.975])
    # two-sided percentile p-value: twice the smaller tail beyond 0, counting the estimate itself
    p = min(1.0, (1 + 2 * min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))) / (n_boot + 1))
    return {"first": first, "second": second, "difference": estimate, "ci_low": float(low),
            "ci_high": float(high), "p": float(p), "method": "bootstrap over readers and images",
            "readers": n_r, "n_boot": n_boot}


# --------------------------------------------------------------------------- the whole analysis

@dataclass
class TuringResults:
    study_id: str
    title: str
    source: str
    table: pd.DataFrame
    conditions: list[ConditionResult]
    not_done: list[str]  # analyses the data could not support, each with the reason
    aucs: pd.DataFrame
    reader_aucs: pd.DataFrame
    accuracy: pd.DataFrame
    comparisons: pd.DataFrame
    counts: dict
    ledger: pd.DataFrame
    options: dict
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    versions: dict | None = None  # None: this run's (verify passes the archived ones)
    inputs: dict = field(default_factory=dict)
    labels: Labels = field(default_factory=Labels)
    design: dict = field(default_factory=dict)  # methods.design_record


def analyse_turing(study: Study, turing, ratings: pd.DataFrame, key, ledger: pd.DataFrame,
                   source: str, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> TuringResults:
    """Every result of the module docstring, from a Turing block's tidy ratings
    (``turing``: the block's settings, glidemed.tasks.turing.TuringSettings)."""
    table = mrmc_table(ratings, key, turing.first_value)
    not_done = [] if not table.empty else [f"every analysis: no usable answers in {source}"]
    midpoint = turing.first_value + (len(turing.levels) - 1) / 2
    generated = [c for c in dict.fromkeys(SurveyKey.of(key).conditions) if c not in study.survey.controls
                 and c in set(table["condition"])]
    results = []
    for condition in generated:
        try:
            results.append(analyse_condition(table, condition, midpoint))
        except AnalysisError as exc:  # e.g. no reader rated every image, no real image rated
            not_done.append(exc.message)
    not_done += [c.note for c in results if c.note]
    aucs = pd.DataFrame([row for c in results for row in auc_rows(c)], columns=AUC_COLUMNS)
    reader_aucs = pd.concat([pd.DataFrame(columns=["reader", "condition", "auc", "se"])]
                            + [c.reader_aucs for c in results], ignore_index=True)
    accuracy = pd.concat([pd.DataFrame(columns=ACCURACY_COLUMNS)] + [c.accuracy for c in results],
                         ignore_index=True)
    compared = []
    for x, y in combinations([c.condition for c in results], 2):
        try:
            compared.append(compare_conditions(table, x, y, n_boot, seed))
        except (GlidemedError, ValueError, ArithmeticError) as exc:
            not_done.append(f"comparison {x} vs {y}: not estimable: {_reason(exc)}")
    comparisons = pd.DataFrame(compared, columns=COMPARISON_COLUMNS)
    use = usable(ratings)
    counts = {"files": {str(k): int(v) for k, v in ledger["status"].value_counts().items()},
              "raters": int(table["reader"].nunique()), "images": int(table["case"].nunique()),
              "real_images": int(table.loc[table["truth"] == 0, "case"].nunique()),
              "ratings": int(len(ratings)), "usable_ratings": int(len(use)),
              "flagged_images": int(ratings.loc[ratings.get("flagged", pd.Series(False, index=ratings.index))
                                                .fillna(False).astype(bool), "panel"].nunique())
              if "flagged" in ratings else 0}
    options = {"bootstrap": n_boot, "seed": seed, "midpoint": midpoint, "scale": [turing.first_value,
               turing.first_value + len(turing.levels) - 1], "levels": list(turing.levels)}
    return TuringResults(study.id, study.title, source, table, results, not_done, aucs, reader_aucs,
                         accuracy, comparisons, counts, ledger, options, labels=Labels.of(study),
                         design=design_record(study))


def roc_figure(results: TuringResults):
    """Empirical ROC curves per reader (thin) and pooled over readers (thick), per condition.
    (figure, the pooled curves' points)"""
    from glidemed.analysis.figures import DOUBLE, SINGLE, colours, new_figure

    n = max(1, len(results.conditions))
    width = min(SINGLE * n, DOUBLE)
    fig, axes = new_figure(n, width / n + 0.5, width=width)
    if not results.conditions:
        axes[0, 0].text(0.5, 0.5, "no usable answers", ha="center", va="center")
        axes[0, 0].set_axis_off()
    rows = []
    pooled_colour = colours(1)[0]
    for ax, c in zip(axes[0], results.conditions):
        rd = c.readings
        for j, reader in enumerate(rd.readers):
            fpr, tpr = roc_points(rd.ratings[0, j], rd.truth)
            ax.plot(fpr, tpr, color="grey", linewidth=0.8, alpha=0.7,
                    label="each reader" if j == 0 else None)
        fpr, tpr = roc_points(rd.ratings[0].reshape(-1), np.tile(rd.truth, len(rd.readers)))
        rows += [{"condition": c.condition, "fpr": x, "tpr": y} for x, y in zip(fpr, tpr)]
        mean = float(c.reader_aucs["auc"].mean())
        ax.plot(fpr, tpr, color=pooled_colour, linewidth=2.2,
                label=f"pooled (mean AUC {mean:.2f})")
        ax.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=0.8, label="chance")
        ax.set_title(f"{results.labels.of_key('condition', c.condition)} vs real")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(loc="lower right")
        ax.set_aspect("equal")
    return fig, pd.DataFrame(rows, columns=["condition", "fpr", "tpr"])


def roc_points(ratings: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC: (FPR, TPR) at every threshold 'rating >= t', from (0, 0) to (1, 1)."""
    thresholds = np.unique(ratings)[::-1]
    tpr = [0.0] + [float((ratings[truth] >= t).mean()) for t in thresholds]
    fpr = [0.0] + [float((ratings[~truth] >= t).mean()) for t in thresholds]
    return np.array(fpr), np.array(tpr)


def turing_tables(results: TuringResults) -> dict[str, pd.DataFrame]:
    return {"turing_auc": results.aucs, "turing_reader_auc": results.reader_aucs,
            "turing_accuracy": results.accuracy, "turing_comparisons": results.comparisons,
            "turing_mrmc": pd.concat([condition_table(results.table.iloc[:0], "")]
                                     + [condition_table(results.table, c.condition)
                                        for c in results.conditions], ignore_index=True)}


ROC_CAPTION = ("Empirical ROC curves per reader (grey) and pooled over readers (blue); "
               "dotted: chance. Sensitivity: generated images called generated; "
               "1 - specificity: real images called generated.")


def roc_figure_files(results: TuringResults):
    from glidemed.analysis.figures import _RC, plt, render

    with plt.rc_context(_RC):
        fig, points = roc_figure(results)
        return render(fig, ROC_CAPTION, points)


def turing_summary(results: TuringResults) -> dict:
    return {"conditions": results.aucs.to_dict(orient="records"),
            "reader_aucs": results.reader_aucs.to_dict(orient="records"),
            "accuracy": results.accuracy.to_dict(orient="records"),
            "comparisons": results.comparisons.to_dict(orient="records"),
            "analyses_not_done": results.not_done}


def turing_findings(results: TuringResults) -> list[str]:
    """Per condition, whether readers could tell its images from real ones (RRRC AUC)."""
    found = []
    for r in results.aucs[results.aucs["analysis"] == "rrrc"].itertuples():
        name = results.labels.of_key("condition", r.condition)
        if not np.isfinite(r.ci_low):
            found.append(f"{name}: mean AUC {r.auc:.2f} over {r.readers} reader(s); no CI "
                         "(too few readers or images).")
            continue
        told = r.ci_low > 0.5 or r.ci_high < 0.5
        verdict = ("readers could tell its images from real ones" if told
                   else "readers could not tell its images from real ones")
        found.append(f"{name}: {verdict}: AUC {r.auc:.2f} (95% CI {r.ci_low:.2f} to "
                     f"{r.ci_high:.2f}), {p_value(r.p_vs_half)} against 0.5, {r.readers} readers, "
                     f"{r.generated_images} generated and {r.real_images} real images.")
    for r in results.comparisons.itertuples():
        found.append(f"{results.labels.of_key('condition', r.first)} vs "
                     f"{results.labels.of_key('condition', r.second)}: AUC difference "
                     f"{r.difference:.2f} (95% CI {r.ci_low:.2f} to {r.ci_high:.2f}), {p_value(r.p)}.")
    return found


def write_turing(results: TuringResults, out: Path) -> dict:
    """Tables, the ROC figure, report.html, methods.md and summary.json, replacing ``out``
    atomically."""
    from glidemed.analysis.figures import write_figure
    from glidemed.analysis.methods import design_paragraph, references_for, write_methods
    from glidemed.analysis.ingest import simulated_files
    from glidemed.analysis.writer import (analysis_folder, software_versions, study_columns,
                                          write_summary, write_tables)

    simulated = simulated_files(results.ledger)
    findings = turing_findings(results)
    methods = [design_paragraph(results.design, results.source, True), *METHODS_TEXT,
               *(f"Not done: {why}" for why in results.not_done)]
    if findings:
        methods.append("Results: " + " ".join(findings))
    references = references_for(["turing"], False)
    with analysis_folder(out) as tmp:
        tables = turing_tables(results)
        write_tables(tmp, {**tables, "ledger": results.ledger}, latex=tuple(tables),
                     labels=results.labels)
        roc = roc_figure_files(results)
        write_figure(tmp / "figures", "roc", roc)
        versions = results.versions or software_versions()
        write_methods(tmp, results.title, methods, versions, references, simulated)
        (tmp / "report.html").write_text(
            render_turing_report(results, roc, versions, findings, methods, references, simulated),
            encoding="utf-8")
        return write_summary(tmp, {
            "schema": SUMMARY_SCHEMA, "task": "turing", "study_id": results.study_id,
            "created": results.created, "source": results.source, "simulated_files": simulated,
            "options": results.options, "versions": versions, "design": results.design,
            "counts": results.counts, "key_results": [{"text": t} for t in findings],
            "inputs": results.inputs, **turing_summary(results)}, study_columns(results.labels))


def turing_section(results: TuringResults):
    """The results as a report section (a survey of several blocks)."""
    from glidemed.analysis.report import ReportSection

    rrrc = results.aucs[results.aucs["analysis"] == "rrrc"]
    return ReportSection(
        "turing", "Real or generated? (visual Turing test)",
        [*METHODS_TEXT, *(f"Not done: {why}" for why in results.not_done)],
        turing_tables(results),
        {"turing_roc": roc_figure_files(results)},
        {"counts": results.counts, **turing_summary(results),
         "auc_rrrc": rrrc.to_dict(orient="records")}, turing_findings(results))


METHODS_TEXT = [
    "Each reader rated every image on a confidence scale from 'real' to 'generated'. For each generated "
    "condition, its images (positive) and all real images (negative) form a single-treatment multi-reader "
    "multi-case ROC study. Each reader's empirical (trapezoidal) AUC is the chance that a random generated "
    "image gets a higher rating than a random real one (ties count half); 0.5 means the reader cannot tell.",
    "The mean AUC over readers has a 95% CI from the Obuchowski-Rockette model with Hillis' degrees of freedom "
    "and jackknife covariances, treating readers and images as random (RRRC); the test against 0.5 uses the "
    "same standard error. FRRC (readers fixed) and RRFC (images fixed) are in turing_auc.csv.",
    "Accuracy, sensitivity (generated images called generated) and specificity (real images called real) "
    "count ratings above the scale's midpoint as 'generated' and below it as 'real'; ratings at the midpoint "
    "are left out of these three and counted as 'unsure'. Intervals are Wilson 95% score intervals per reader.",
    "Conditions are compared by the difference of their mean AUCs. When both were read on the same images, "
    "the ORH test is used. Otherwise the generated images differ while the real images are shared; the 95% CI "
    "and p-value then come from a bootstrap that resamples readers and, independently, each condition's images "
    "and the real images (once per replicate, keeping the shared real images' correlation): both readers and "
    "images are random, as in RRRC. This two-way bootstrap tends to be slightly conservative.",
    "A reader who did not rate every image of a condition's analysis is left out of that analysis and listed.",
]


def render_turing_report(results: TuringResults, roc, versions: dict, findings: list[str],
                         methods: list[str], references: tuple[str, ...], simulated: int) -> str:
    """The self-contained report page (Jinja2, autoescape)."""
    from glidemed.analysis.columns import readable
    from glidemed.analysis.methods import REFERENCES
    from glidemed.analysis.report import _environment, _table, figure_context, frame_context

    labels = results.labels
    rrrc = results.aucs[results.aucs["analysis"] == "rrrc"]
    left_out = [(labels.of_key("condition", r["condition"]), r["left_out_readers"])
                for _, r in rrrc.iterrows() if r["left_out_readers"]]

    def shown(table: pd.DataFrame, file: str) -> dict:
        return _table(readable(table, labels), file)

    return _environment().get_template("turing.html.j2").render(
        **frame_context(results.title, simulated, results.source),
        study_id=results.study_id, created=results.created,
        counts=[(k.replace("_", " "), v if not isinstance(v, dict) else
                 ", ".join(f"{n} {s}" for s, n in v.items()) or "none") for k, v in results.counts.items()]
        + [("analyses not done", "; ".join(results.not_done))] * bool(results.not_done),
        findings=findings, methods=methods, references=[REFERENCES[k] for k in references],
        versions=versions, left_out=left_out, roc=figure_context("roc", roc, simulated),
        tables={"auc": shown(rrrc.drop(columns=["analysis", "left_out_readers"]), "turing_auc.csv"),
                "readers": shown(results.reader_aucs, "turing_reader_auc.csv"),
                "accuracy": shown(results.accuracy, "turing_accuracy.csv"),
                "comparisons": shown(results.comparisons, "turing_comparisons.csv")})
