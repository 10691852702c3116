"""The self-contained HTML report: Jinja2 with autoescape, fed by one context function.

Everything a rater typed (ids, comments, profile answers) reaches the page only as escaped
text, and a Content-Security-Policy forbids scripts, so hostile input renders inert.
"""

from __future__ import annotations

import base64
import math
import numbers
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import pandas as pd

from glidemed.analysis.results import ModelResult

FIGURE_CAPTIONS = {
    "distribution": "Share of each score per style (all first ratings), one panel per aspect.",
    "pairwise_p": "Pairwise Mann-Whitney p-values between styles (Holm-adjusted), per-prompt "
                  "median unit; -log10 scale, darker is less significant.",
    "style_medians": "Median of the per-prompt medians per style, with the interquartile range "
                     "and, where computed, the crossed-bootstrap 95% CI of the median.",
    "rater_agreement": "Quadratic-weighted Cohen's kappa between each pair of raters.",
}
MAX_ROWS = 500  # per table in the page; the CSV files hold every row
# Descriptives shown in the page and in descriptives.tex; descriptives.csv has every 'by'.
MAIN_DESCRIPTIVES = ["all", "style", "style_group", "condition", "detail"]


@dataclass
class ReportSection:
    """An optional part of the analysis (e.g. agreement with automated scores): its tables
    (written as <name>.csv and .tex), figures (PNG and SVG bytes, caption), report text and
    summary.json entry (under ``name``)."""

    name: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, tuple[bytes, bytes, str]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnalysisResults:
    """Everything an analysis produced, as the report and the output writer need it."""

    study_id: str
    title: str
    source: str  # what was analysed, in words
    created: str
    options: dict[str, Any]  # model formula, nonsensical, flagged, n_boot, seed
    ratings: pd.DataFrame
    ledger: pd.DataFrame
    profiles: pd.DataFrame
    descriptives: pd.DataFrame
    medians: pd.DataFrame
    tests: pd.DataFrame
    pairwise: pd.DataFrame
    models: list[tuple[str, ModelResult]]  # (role: 'primary' | 'sensitivity', result)
    reliability: pd.DataFrame
    median_cis: pd.DataFrame  # bootstrap CIs of style medians and differences
    counts: dict[str, Any]
    versions: dict[str, str]
    methods: list[str] = field(default_factory=list)
    model_text: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)  # PNG bytes by name
    sections: list[ReportSection] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # where the responses were read


def render_report(results: AnalysisResults) -> str:
    """The report page as one HTML string."""
    return _environment().get_template("report.html.j2").render(**report_context(results))


def report_context(results: AnalysisResults) -> dict[str, Any]:
    """The template's whole context; values are plain text (escaped by the template)."""
    counts = results.counts
    count_rows = [
        ("response files", _by_status(counts.get("files", {})) or "none (a ratings table was analysed)"),
        ("raters", counts["raters"]),
        ("panels rated", counts["panels"]),
        ("ratings", counts["ratings"]),
        ("usable ratings", counts["usable_ratings"]),
        ("excluded ratings", _by_status(counts["exclusions"]) or "none"),
    ]
    descriptives = results.descriptives
    main = descriptives[descriptives["by"].isin(MAIN_DESCRIPTIVES)]
    comments = results.ratings
    comments = comments[comments["comment"].fillna("") != ""]
    comments = comments.drop_duplicates(["rater", "panel", "repeat"])[
        ["rater", "prompt_id", "condition", "comment"]]
    models = [{"role": role, "model": m.model, "aspect": m.aspect, "formula": m.formula,
               "n": m.n, "loglik": _fmt(m.loglik), "converged": m.converged, "notes": m.notes,
               "table": _table(m.table, "ordinal.csv")} for role, m in results.models]
    return {
        "title": results.title,
        "study_id": results.study_id,
        "created": results.created,
        "source": results.source,
        "versions": results.versions,
        "counts": count_rows,
        "notes": results.notes,
        "methods": results.methods,
        "model_text": results.model_text,
        "models": models,
        "figures": [{"name": name, "caption": FIGURE_CAPTIONS.get(name, name),
                     "base64": base64.b64encode(png).decode("ascii")}
                    for name, png in results.figures.items()],
        "tables": {
            "descriptives": _table(main, "descriptives.csv"),
            "tests": _table(results.tests, "tests.csv"),
            "pairwise": _table(results.pairwise, "pairwise.csv"),
            "reliability": _table(results.reliability, "reliability.csv"),
            "median_cis": _table(results.median_cis, "bootstrap_medians.csv"),
            "ledger": _table(results.ledger.drop(columns=["sha256"], errors="ignore"), "ledger.csv"),
            "comments": _table(comments, "ratings.csv"),
        },
        "sections": [section_context(s) for s in results.sections],
    }


def section_context(s: ReportSection) -> dict[str, Any]:
    """A report section as the templates' ``section`` macro shows it."""
    return {"name": s.name, "title": s.title, "paragraphs": s.paragraphs,
            "tables": [{"name": n, **_table(t, f"{n}.csv")} for n, t in s.tables.items()],
            "figures": [{"name": n, "caption": caption,
                         "base64": base64.b64encode(png).decode("ascii")}
                        for n, (png, _, caption) in s.figures.items()]}


def render_sections_report(title: str, study_id: str, created: str, source: str,
                           versions: dict, counts: dict, sections: list[ReportSection],
                           methods: list[str], ledger: pd.DataFrame) -> str:
    """The report of a survey whose blocks all report as sections (e.g. pairwise)."""
    count_rows = [(k.replace("_", " "), _by_status(v) or "none" if isinstance(v, dict) else v)
                  for k, v in counts.items()]
    return _environment().get_template("sections.html.j2").render(
        title=title, study_id=study_id, created=created, source=source, versions=versions,
        counts=count_rows, sections=[section_context(s) for s in sections], methods=methods,
        tables={"ledger": _table(ledger.drop(columns=["sha256"], errors="ignore"), "ledger.csv")})


def _environment() -> jinja2.Environment:
    folder = resources.files("glidemed.site_templates") / "report"
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _table(df: pd.DataFrame, file: str) -> dict[str, Any]:
    """Columns and rows of text cells ({'text', 'kind'}), at most MAX_ROWS rows."""
    shown = df.head(MAX_ROWS)
    rows = [[_cell(value, column) for column, value in zip(shown.columns, row)]
            for row in shown.itertuples(index=False, name=None)]
    return {"columns": [str(c) for c in df.columns], "rows": rows, "file": file,
            "left_out": max(len(df) - MAX_ROWS, 0)}


def _cell(value: Any, column: str) -> dict[str, str]:
    if isinstance(value, bool) or value is None or value is pd.NA:
        return {"text": "" if value is None or value is pd.NA else str(value), "kind": ""}
    if isinstance(value, numbers.Number):
        return {"text": _fmt(value), "kind": "num"}
    text = str(value)
    return {"text": text, "kind": "text" if column in ("comment", "reason", "rater", "file") else ""}


def _fmt(value: Any) -> str:
    """Numbers for reading: integers as is, p-values and estimates to 3-4 significant digits."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return ""
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    if abs(number) < 1e-3:
        return f"{number:.2e}"
    return f"{number:.4g}"


def _by_status(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)
