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

from glidemed.analysis.columns import heading, readable
from glidemed.analysis.key_results import Finding, medians_table
from glidemed.analysis.labels import Labels
from glidemed.analysis.methods import REFERENCES
from glidemed.analysis.results import ModelResult

MAX_ROWS = 500  # per table in the page; the CSV files hold every row
# Descriptives shown in the page and in descriptives.tex; descriptives.csv has every 'by'.
MAIN_DESCRIPTIVES = ["all", "style", "style_group", "condition", "detail", "variant",
                     "style_variant"]


@dataclass
class ReportSection:
    """An optional part of the analysis (e.g. agreement with automated scores): its tables
    (written as <name>.csv and .tex), figures (PNG and SVG bytes, caption), report text and
    summary.json entry (under ``name``)."""

    name: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # FigureFiles by name
    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)  # the section's key results, in words


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
    figures: dict[str, Any] = field(default_factory=dict)  # FigureFiles by name
    sections: list[ReportSection] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # where the responses were read
    labels: Labels = field(default_factory=Labels)
    references: dict[str, str] = field(default_factory=dict)  # factor: its reference level
    findings: list[Finding] = field(default_factory=list)  # the key results
    design: dict[str, Any] = field(default_factory=dict)  # methods.design_record
    simulated: int = 0  # response files analysed that glidemed simulate made
    method_references: tuple[str, ...] = ()


def render_report(results: AnalysisResults) -> str:
    """The report page as one HTML string."""
    return _environment().get_template("report.html.j2").render(**report_context(results))


def report_context(results: AnalysisResults) -> dict[str, Any]:
    """The template's whole context; values are plain text (escaped by the template)."""
    counts = results.counts
    labels, references = results.labels, results.references
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
    models = [{"role": role, "model": m.model, "aspect": labels.of_key("aspect", m.aspect),
               "formula": m.formula, "n": m.n, "loglik": _fmt(m.loglik), "converged": m.converged,
               "notes": m.notes, "table": _table(readable(m.table, labels, references, "ordinal"),
                                                 "ordinal.csv")}
              for role, m in results.models]
    figures = [figure_context(name, f, results.simulated) for name, f in results.figures.items()]

    def shown(table: pd.DataFrame, name: str) -> dict[str, Any]:
        return _table(readable(table, labels, references, name), f"{name}.csv", fold=True)

    return {
        **frame_context(results.title, results.simulated, results.source),
        "study_id": results.study_id,
        "created": results.created,
        "versions": results.versions,
        "findings": [f.text for f in results.findings] + [
            text for section in results.sections for text in section.findings],
        "medians": _table(medians_table(results.medians, results.median_cis, labels), ""),
        "counts": count_rows,
        "notes": results.notes,
        "methods": results.methods,
        "references": [REFERENCES[k] for k in results.method_references],
        "model_text": results.model_text,
        "models": models,
        "main_figure": figures[0] if figures else None,
        "figures": figures[1:],
        "tables": {
            "descriptives": shown(main, "descriptives"),
            "tests": shown(results.tests, "tests"),
            "pairwise": shown(results.pairwise, "pairwise"),
            "reliability": shown(results.reliability, "reliability"),
            "median_cis": shown(results.median_cis, "bootstrap_medians"),
            "ledger": _table(results.ledger.drop(columns=["sha256"], errors="ignore")
                             .rename(columns=heading), "ledger.csv"),
            "comments": _table(readable(comments, labels), "ratings.csv"),
        },
        "sections": [section_context(s, results.simulated, labels) for s in results.sections],
    }


def frame_context(title: str, simulated: int, source: str) -> dict[str, Any]:
    """What every report shows first: its title, and whether the data are simulated."""
    return {"title": title + (" (simulated responses)" if simulated else ""),
            "source": source,
            "simulated": (f"Simulated data: {simulated} of the analysed response files were made "
                          "by glidemed simulate, not by raters. These results describe no "
                          "real rater.") if simulated else ""}


def figure_context(name: str, figure, simulated: int) -> dict[str, Any]:
    caption = ("Simulated data. " if simulated else "") + figure.caption
    return {"name": name, "caption": caption,
            "base64": base64.b64encode(figure.files["png"]).decode("ascii")}


def section_context(s: ReportSection, simulated: int = 0, labels: Labels | None = None
                    ) -> dict[str, Any]:
    """A report section as the templates' ``section`` macro shows it."""
    labels = labels or Labels()
    return {"name": s.name, "title": s.title, "paragraphs": s.paragraphs,
            "tables": [{"name": n, "title": n.replace("_", " ").capitalize(),
                        **_table(readable(t, labels, None, n), f"{n}.csv")}
                       for n, t in s.tables.items()],
            "figures": [figure_context(n, f, simulated) for n, f in s.figures.items()]}


def render_sections_report(study_id: str, created: str, versions: dict, counts: dict,
                           sections: list[ReportSection], methods: list[str],
                           references: tuple[str, ...], ledger: pd.DataFrame, frame: dict,
                           labels: Labels, simulated: int) -> str:
    """The report of a survey whose blocks all report as sections (e.g. pairwise)."""
    count_rows = [(k.replace("_", " "), _by_status(v) or "none" if isinstance(v, dict) else v)
                  for k, v in counts.items()]
    return _environment().get_template("sections.html.j2").render(
        **frame, study_id=study_id, created=created, versions=versions, counts=count_rows,
        findings=[text for s in sections for text in s.findings],
        sections=[section_context(s, simulated, labels) for s in sections], methods=methods,
        references=[REFERENCES[k] for k in references],
        tables={"ledger": _table(ledger.drop(columns=["sha256"], errors="ignore")
                                 .rename(columns=heading), "ledger.csv")})


def _environment() -> jinja2.Environment:
    folder = resources.files("glidemed.site_templates") / "report"
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _table(df: pd.DataFrame, file: str, fold: bool = False) -> dict[str, Any]:
    """Columns and rows of text cells ({'text', 'kind'}), at most MAX_ROWS rows. ``fold``:
    a column with one value in every row is said once above the table instead (so that
    wide tables fit the page)."""
    constant = []
    if fold and len(df) > 1:
        same = [c for c in df.columns if df[c].astype(str).nunique(dropna=False) == 1]
        constant = [f"{c}: {_cell(df[c].iloc[0], str(c))['text']}" for c in same]
        df = df.drop(columns=same)
    shown = df.head(MAX_ROWS)
    rows = [[_cell(value, column) for column, value in zip(shown.columns, row)]
            for row in shown.itertuples(index=False, name=None)]
    return {"columns": [str(c) for c in df.columns], "rows": rows, "file": file,
            "left_out": max(len(df) - MAX_ROWS, 0), "constant": "; ".join(constant)}


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
