"""`glidemed analyze`: responses (or a ratings table) -> tables, figures, report, summary.

Everything is written into a temporary folder beside the output folder, which replaces it
only once complete: an error (a full disk, a crash) leaves the previous analysis as it was
and never a half-written one. summary.json is written last inside that folder.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from glidemed.analysis.descriptives import describe_ratings, first_ratings, prompt_medians
from glidemed.analysis.formula import DEFAULT_FORMULA, Formula, parse_formula
from glidemed.analysis.ingest import FLAGGED_MODES, LEDGER_COLUMNS, Answers, ingest, simulated_files
from glidemed.analysis.key_results import ratings_findings
from glidemed.analysis.labels import Labels
from glidemed.analysis.methods import (design_paragraph, design_record, ratings_methods,
                                       references_for, write_methods)
from glidemed.analysis.nonparametric import UNITS, run_tests
from glidemed.analysis.reliability import reliability_table
from glidemed.analysis.report import MAIN_DESCRIPTIVES, AnalysisResults, ReportSection, render_report
from glidemed.analysis.results import TABLE_COLUMNS, ModelResult
from glidemed.analysis.tidy import apply_nonsensical, usable
from glidemed.analysis.writer import (analysis_folder, check_out_dir, software_versions,
                                      study_columns, write_ledger_only, write_sections,
                                      write_summary, write_tables)
from glidemed.errors import AnalysisError
from glidemed.paths import analysis_dir, key_dir, responses_dir
from glidemed.study import Study
from glidemed.tasks import get_task

SUMMARY_SCHEMA = "glidemed-summary/1"
ZERO_METHOD = "pratt"  # signed-rank tests: zero differences ranked, then left out
MIN_RATERS_MIXED = 3  # below this a rater random effect is not estimable in any useful way
MIXED_TERMS = ("rater", "prompt_id")  # random intercepts added for the primary model
LATEX_TABLES = ("descriptives", "tests", "pairwise", "ordinal", "reliability", "bootstrap_medians")


def run_analysis(study: Study, responses: Iterable[str | os.PathLike] | None = None,
                 out_dir: str | os.PathLike | None = None,
                 ratings: str | os.PathLike | pd.DataFrame | None = None,
                 key: str | os.PathLike | dict | None = None, model: str = DEFAULT_FORMULA,
                 nonsensical: str = "exclude", flagged: str = "exclude", n_boot: int = 1000,
                 seed: int = 0, pseudonymized: bool = False,
                 allow_simulated: bool = False,
                 scores: str | os.PathLike | None = None,
                 provenance: dict | None = None) -> dict:
    """Analyse ``responses`` (files or folders; default build/<study>/responses) unblinded
    with ``key`` (default build/<study>/key/key.json), or an existing ``ratings`` table
    (tidy CSV, the paper's spreadsheet, or a DataFrame). Writes every output into
    ``out_dir`` (default build/<study>/analysis) and returns the summary dict.
    ``provenance`` (``created``, ``versions``) replaces the run's own, so that ``verify``
    can render a re-run's report exactly as the archived one was rendered.
    ``pseudonymized``: the responses' rater ids were replaced (see ingest_responses);
    ``allow_simulated``: mix simulated and real response files (refused otherwise).
    When no rating is usable, the ledger is still written (see :func:`write_ledger_only`).
    With automated ``scores`` (default build/<study>/scores/scores.csv when present) it adds
    their agreement with the ratings (analysis/agreement.py)."""
    if flagged not in FLAGGED_MODES:
        raise AnalysisError(f"--flagged: expected one of {FLAGGED_MODES}, got {flagged!r}")
    if n_boot < 0:
        raise AnalysisError(f"--bootstrap: expected a number of resamples >= 0, got {n_boot}")
    out = Path(out_dir) if out_dir is not None else analysis_dir(study)
    check_out_dir(out, ratings)
    sections: list[ReportSection] = []
    if ratings is None:
        run = _ingest_run(study, responses, key, out, flagged, n_boot, seed, pseudonymized,
                          allow_simulated, provenance)
        blocks, tasks = study.survey.blocks, [get_task(b.task) for b in study.survey.blocks]
        if len(tasks) == 1:
            written = tasks[0].write_alone(study, blocks[0], run.answers.table(0), run)
            if written is not None:
                return written
        frame = next((i for i, task in enumerate(tasks) if task.frames_report), None)
        sections = [section for i, task in enumerate(tasks) if i != frame
                    for section in task.sections(study, blocks[i], run.answers.table(i), run)]
        if frame is None:
            return write_sections_analysis(study, run, sections)
        df, ledger, profiles, source = run.answers.table(frame), run.ledger, run.profiles, run.source
        key = run.key
    else:
        df, ledger, profiles, source = _read_table(study, ratings, nonsensical)
    df = with_variants(study, apply_nonsensical(df, nonsensical))
    if model == DEFAULT_FORMULA and "variant" in df:
        model = f"{DEFAULT_FORMULA} + variant"  # the prompt variants are a factor of the study
    formula = parse_formula(model, [str(c) for c in df.columns])
    if usable(df).empty:
        written = f"; every file's reason is in {write_ledger_only(ledger, out)}" if len(ledger) else ""
        raise AnalysisError(f"no usable ratings in {source}: {_ledger_digest(ledger)}{written}")
    results = analyse(study, df, ledger, profiles, source, formula, nonsensical, flagged,
                      n_boot, seed)
    if pseudonymized:
        results.options["pseudonymized"] = True
    from glidemed.analysis.agreement import agreement_section

    # the rater plan needs the original rater ids: without them, all images of a panel
    section = agreement_section(study, df, scores, key if ratings is None else None,
                                ratings is None and not pseudonymized, n_boot, seed, results.notes)
    from glidemed.analysis.prescreen_check import prescreen_section

    checked = prescreen_section(study, df, n_boot, seed)
    results.sections = sections + [s for s in (section, checked) if s is not None]
    if allow_simulated:
        results.options["allow_simulated"] = True
    results.inputs = _inputs(study, responses, ratings)
    if provenance:
        results.created, results.versions = provenance["created"], provenance["versions"]
    return write_outputs(results, out)


def with_variants(study: Study, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``variant`` column (v1, v2, ...: which of its style's templates each
    prompt used) when the study gives several templates for a style; else as it is."""
    from glidemed.study import has_variants

    if not has_variants(study) or "variant" in df:
        return df
    variants = {p.id: p.variant for p in study.prompts()}
    return df.assign(variant=df["prompt_id"].map(variants).astype("string"))


def _inputs(study: Study, responses, ratings) -> dict[str, list[str]]:
    """Where the analysed files were read (absolute paths): ``glidemed archive`` looks there."""
    if ratings is not None:
        return {"ratings": [] if isinstance(ratings, pd.DataFrame) else [str(Path(ratings).resolve())]}
    return {"responses": [str(Path(p).resolve()) for p in (responses or [responses_dir(study)])]}


@dataclass
class AnalysisRun:
    """What every block's analysis of one ``glidemed analyze`` run shares."""

    study: Study
    key: dict
    answers: Answers
    ledger: pd.DataFrame
    profiles: pd.DataFrame
    source: str  # what was analysed, in words
    options: dict[str, Any]  # bootstrap, seed, flagged (+ pseudonymized, allow_simulated)
    inputs: dict[str, list[str]]
    out: Path
    provenance: dict | None = None


def _ingest_run(study: Study, responses, key, out: Path, flagged: str, n_boot: int, seed: int,
                pseudonymized: bool, allow_simulated: bool, provenance: dict | None) -> AnalysisRun:
    """Read the key and the response files; the ledger of a run without one usable answer
    is written (and the run stops) here, whatever the tasks."""
    if key is not None and not isinstance(key, (str, os.PathLike)):
        key_data, key_name = key, "key"  # a SurveyKey or its dict
    else:
        from glidemed.survey.key import load_key

        key_path = Path(key) if key is not None else key_dir(study) / "key.json"
        key_data, key_name = load_key(key_path), str(key_path)
    paths = list(responses or [])
    if not paths:
        default = responses_dir(study)
        if not default.is_dir():
            raise AnalysisError(f"{default}: no responses given and this folder does not exist; "
                                "name the response files or folders to analyse")
        paths = [default]
    answers, ledger, profiles = ingest(study, key_data, paths, flagged=flagged, key_name=key_name,
                                       pseudonymized=pseudonymized, allow_simulated=allow_simulated)
    if ledger.empty:
        raise AnalysisError(f"no .json files in {', '.join(map(str, paths))}: "
                            "no response file to analyse")
    source = f"{len(ledger)} response file(s)"
    if not answers.used:
        written = f"; every file's reason is in {write_ledger_only(ledger, out)}"
        raise AnalysisError(f"no usable ratings in {source}: {_ledger_digest(ledger)}{written}")
    options = {"bootstrap": n_boot, "seed": seed, "flagged": flagged,
               **({"pseudonymized": True} if pseudonymized else {}),
               **({"allow_simulated": True} if allow_simulated else {})}
    return AnalysisRun(study, key_data, answers, ledger, profiles, source, options,
                       _inputs(study, responses, None), out, provenance)


def _read_table(study: Study, ratings, nonsensical: str
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(ratings, ledger, profiles, what was analysed in words) of a ratings table, which
    has no ledger and no profiles."""
    no_ledger, no_profiles = pd.DataFrame(columns=LEDGER_COLUMNS), pd.DataFrame(columns=["rater"])
    if isinstance(ratings, pd.DataFrame):
        return ratings, no_ledger, no_profiles, "a ratings table"
    path = Path(ratings)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        from glidemed.analysis.legacy import read_legacy_spreadsheet

        df = read_legacy_spreadsheet(study, path, nonsensical)
        return df, no_ledger, no_profiles, f"spreadsheet {path.name}"
    from glidemed.analysis.ratings_table import read_ratings_table

    df = read_ratings_table(path, study)
    return df, no_ledger, no_profiles, f"ratings table {path.name}"


def write_sections_analysis(study: Study, run: AnalysisRun, sections: list[ReportSection]) -> dict:
    """The analysis of a survey whose blocks all report as sections: their tables and
    figures, the ledger, a report of the sections and summary.json."""
    from glidemed.analysis.report import frame_context, render_sections_report

    created = (run.provenance or {}).get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    versions = (run.provenance or {}).get("versions") or software_versions()
    counts = {"files": {str(k): int(v) for k, v in run.ledger["status"].value_counts().items()},
              "raters": len(run.answers.used)}
    simulated = simulated_files(run.ledger)
    design = design_record(study)
    labels = Labels.of(study)
    summary = {
        "schema": SUMMARY_SCHEMA, "study_id": study.id, "created": created,
        "source": run.source, "simulated_files": simulated, "options": run.options,
        "versions": versions, "design": design, "counts": counts,
        "key_results": [{"section": s.name, "text": text} for s in sections for text in s.findings],
        "blocks": [b.task for b in study.survey.blocks],
        **{section.name: section.summary for section in sections}, "inputs": run.inputs}
    methods = [design_paragraph(design, run.source, True),
               f"{counts['raters']} raters' response files were analysed: " + ", ".join(
                   f"{n} {status}" for status, n in counts["files"].items()) + ".",
               _response_methods(run.options["flagged"]),
               *[p for s in sections for p in s.paragraphs]]
    references = references_for(design["tasks"], False)
    with analysis_folder(run.out) as tmp:
        write_tables(tmp, {"ledger": run.ledger, "profiles": run.profiles})
        write_sections(tmp, sections, labels)
        write_methods(tmp, study.title, methods, versions, references, simulated)
        (tmp / "report.html").write_text(render_sections_report(
            study.id, created, versions, counts, sections, methods, references, run.ledger,
            frame_context(study.title, simulated, run.source), labels, simulated),
            encoding="utf-8")
        return write_summary(tmp, summary, study_columns(labels))


def analyse(study: Study, df: pd.DataFrame, ledger: pd.DataFrame, profiles: pd.DataFrame,
            source: str, formula: Formula, nonsensical: str, flagged: str, n_boot: int,
            seed: int) -> AnalysisResults:
    """Every statistic of the report (no files written)."""
    descriptives = describe_ratings(df, profiles if len(profiles) else None)
    medians = prompt_medians(df)
    parts = [run_tests(df, unit, zero_method=ZERO_METHOD) for unit in UNITS]
    tests = pd.concat([p[0] for p in parts], ignore_index=True)
    pairwise = pd.concat([p[1] for p in parts], ignore_index=True)
    n_raters = usable(first_ratings(df))["rater"].nunique()
    models, model_text = fit_models(df, formula, n_raters)
    reliability = reliability_table(df, n_boot=n_boot, seed=seed)
    median_cis, notes = median_bootstrap(df, n_boot, seed)
    counts = _counts(df, ledger)
    options = {"model": str(formula), "nonsensical": nonsensical, "flagged": flagged,
               "bootstrap": n_boot, "seed": seed}
    labels = Labels.of(study)
    references = reference_levels(df)
    return AnalysisResults(
        study_id=study.id, title=study.title, source=source,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), options=options,
        ratings=df, ledger=ledger, profiles=profiles, descriptives=descriptives,
        medians=medians, tests=tests, pairwise=pairwise, models=models,
        reliability=reliability, median_cis=median_cis, counts=counts,
        versions=software_versions(), methods=_methods(options, from_files=len(ledger) > 0),
        model_text=model_text, notes=_notes(counts, ledger) + notes, labels=labels,
        references=references,
        findings=ratings_findings(tests, medians, models, labels, references),
        design=design_record(study, [str(c) for c in pd.unique(df["condition"].dropna())]),
        simulated=simulated_files(ledger),
        method_references=references_for([b.task for b in study.survey.blocks], True))


def reference_levels(df: pd.DataFrame) -> dict[str, str]:
    """Each factor's reference level in the models: its first level in the usable ratings."""
    from glidemed.analysis.design import term_levels

    use = usable(first_ratings(df))
    return {factor: term_levels(use[factor])[0] for factor in ("style", "style_group", "condition",
                                                               "detail", "variant", "topic")
            if factor in use and len(term_levels(use[factor]))}


def median_bootstrap(df: pd.DataFrame, n_boot: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Crossed-bootstrap CIs of the per-style median (per-prompt median unit) and of the
    differences between styles, per condition and aspect; empty when ``n_boot`` is 0."""
    from glidemed.analysis.bootstrap import MEDIAN_COLUMNS, bootstrap_medians

    frames, notes = [], []
    if n_boot > 0:
        for condition in pd.unique(df["condition"].dropna()):
            part = df[df["condition"] == condition]
            try:
                cis = bootstrap_medians(part, by="style", unit="prompt_median", n_boot=n_boot,
                                        seed=seed)
            except AnalysisError as exc:
                notes.append(f"bootstrap of the style medians, condition {condition!r}: {exc.message}")
                continue
            frames.append(cis.assign(condition=condition))
    if not frames:
        return pd.DataFrame(columns=["condition", *MEDIAN_COLUMNS]), notes
    out = pd.concat(frames, ignore_index=True)
    return out[["condition", *MEDIAN_COLUMNS]], notes


def fit_models(df: pd.DataFrame, formula: Formula, n_raters: int
               ) -> tuple[list[tuple[str, ModelResult]], list[str]]:
    """Per aspect: the primary model and, where it is mixed, the fixed model as sensitivity
    analysis. With >= 3 raters and no random terms given, the primary model adds random
    intercepts for rater and prompt. A fit that fails is reported, not dropped silently."""
    from glidemed.analysis.models import fit_model
    from glidemed.analysis.ordinal import QuasiSeparationWarning

    fixed = Formula(formula.response, formula.fixed, ())
    if formula.is_mixed:
        primary = formula
        text = [f"Primary model: the cumulative logit mixed model {primary} as given; "
                f"the fixed-effects model {fixed} is a sensitivity analysis."]
    elif n_raters >= MIN_RATERS_MIXED:
        primary = Formula(formula.response, formula.fixed, MIXED_TERMS)
        text = [f"Primary model: with {n_raters} raters (at least {MIN_RATERS_MIXED}), a cumulative "
                f"logit mixed model {primary} with crossed random intercepts for rater and prompt "
                f"(Laplace approximation); the fixed-effects model {fixed} (ratings treated as "
                "independent) is the sensitivity analysis."]
    else:
        primary = fixed
        text = [f"Primary model: the fixed-effects cumulative logit model {fixed}; with "
                f"{n_raters} rater(s) (fewer than {MIN_RATERS_MIXED}) no rater random effect is fitted."]
    text.append("Effects are log cumulative odds ratios against the reference (first) level, "
                "with 95% Wald CIs; odds ratios above 1 mean higher scores. Cut-points follow "
                "P(Y <= k) = F(theta_k - x'beta), as R's ordinal::clm and clmm report them.")
    results: list[tuple[str, ModelResult]] = []
    plan = [("primary", primary)] + ([("sensitivity", fixed)] if primary.is_mixed else [])
    for aspect in pd.unique(df["aspect"].dropna()):
        for role, f in plan:
            try:
                with warnings.catch_warnings():
                    # the fit notes quasi-separation itself (report and summary): no raw warning
                    warnings.simplefilter("ignore", QuasiSeparationWarning)
                    results.append((role, fit_model(df, str(f), str(aspect))))
            except AnalysisError as exc:
                text.append(f"{role} model for aspect {aspect!r} ({f}) could not be fitted: "
                            f"{exc.message}")
            except (np.linalg.LinAlgError, FloatingPointError, OverflowError) as exc:
                text.append(f"{role} model for aspect {aspect!r} ({f}) could not be fitted: "
                            f"numerical failure ({type(exc).__name__}: {exc})")
    return results, text


def _counts(df: pd.DataFrame, ledger: pd.DataFrame) -> dict[str, Any]:
    use = usable(df)
    exclusions = df.loc[df["exclusion"] != "", "exclusion"].value_counts()
    return {
        "files": {str(k): int(v) for k, v in ledger["status"].value_counts().items()},
        "raters": int(use["rater"].nunique()),
        "panels": int(use["panel"].nunique()),
        "panel_views": int(df[["rater", "panel", "repeat"]].drop_duplicates().shape[0]),
        "ratings": int(len(df)),
        "usable_ratings": int(len(use)),
        "repeat_ratings": int(use["repeat"].fillna(False).astype(bool).sum()),
        "exclusions": {str(k): int(v) for k, v in exclusions.items()},
    }


def _response_methods(flagged: str) -> str:
    """The methods paragraph on how the response files were checked and chosen."""
    return (
        "Response files were validated against the response JSON Schema and the survey build "
        "(build hash, panel and image tokens, aspects, flags, score range) and unblinded with the "
        "build's key; the hash chain of every file was verified, and files whose chain does not "
        f"verify were {'included' if flagged == 'include' else 'excluded'} "
        "(--flagged). Of several files from one rater, the one whose chain verifies, then the "
        "one with most ratings, then the latest update is used (see the file table).")


def _methods(options: dict, from_files: bool = True) -> list[str]:
    zero = {"exclude": "excluded", "zero": "counted as score 0",
            "paper": "counted as score 0 for every rater once any rater flagged the prompt, "
                     "as in the seed study's analysis"}[options["nonsensical"]]
    return [
        *[_response_methods(options["flagged"])] * from_files,
        f"Ratings of panels marked nonsensical were {zero}; missing ratings are excluded. "
        "Quality-control repeats are left out of every analysis except intra-rater consistency.",
        "Nonparametric tests (scipy, scikit-posthocs) run at two units: the per-prompt median "
        "across raters (the paper's unit) and every rating (descriptive, since ratings of one "
        "rater are not independent). Kruskal-Wallis across styles; pairwise Mann-Whitney U and "
        "Dunn tests with Holm and Benjamini-Hochberg adjustment and Cliff's delta; each style "
        f"group against the rest; paired Wilcoxon signed-rank tests ({ZERO_METHOD} zero method) of "
        "conditions matched by prompt and of short against detailed prompts matched by topic "
        "and style.",
        f"Ordinal regression: cumulative logit models fitted per aspect (model {options['model']}).",
        f"Per-style medians of the per-prompt medians have 95% percentile CIs from a crossed "
        f"(pigeonhole) bootstrap that resamples raters and prompts independently "
        f"({options['bootstrap']} resamples, seed {options['seed']}), as do the differences "
        "between styles.",
        f"Reliability: Krippendorff's alpha (ordinal) with a {options['bootstrap']}-resample "
        f"bootstrap CI (seed {options['seed']}); quadratic-weighted Cohen's kappa per pair of "
        "raters; ICC(2,1) and ICC(3,1) as secondary measures; intra-rater consistency from "
        "repeated panels.",
    ]


def _notes(counts: dict, ledger: pd.DataFrame) -> list[str]:
    notes = []
    bad = ledger[ledger["status"].isin(["rejected", "flagged", "duplicate"])]
    if len(bad):
        notes.append(f"{len(bad)} response file(s) were rejected, flagged or superseded; "
                     "the file table below gives each reason.")
    if counts["exclusions"]:
        notes.append("Excluded ratings by reason: " + ", ".join(
            f"{reason} {n}" for reason, n in counts["exclusions"].items()) + ".")
    return notes


# --- writing -----------------------------------------------------------------------------

def write_outputs(results: AnalysisResults, out: Path) -> dict:
    """Write every table, figure, the report and summary.json; replace ``out`` atomically."""
    from glidemed.analysis.figures import ratings_figures, write_figure

    with analysis_folder(out) as tmp:
        descriptives = results.descriptives
        write_tables(tmp, {"ratings": results.ratings, "ledger": results.ledger,
                           "profiles": results.profiles, "descriptives": descriptives,
                           "prompt_medians": results.medians, "tests": results.tests,
                           "pairwise": results.pairwise, "ordinal": _model_table(results.models),
                           "reliability": results.reliability,
                           "bootstrap_medians": results.median_cis})
        write_tables(tmp, {"descriptives": descriptives[descriptives["by"].isin(MAIN_DESCRIPTIVES)],
                           **{name: table for name, table in (
                               ("tests", results.tests), ("pairwise", results.pairwise),
                               ("ordinal", _model_table(results.models)),
                               ("reliability", results.reliability),
                               ("bootstrap_medians", results.median_cis))}},
                     latex=LATEX_TABLES, csv=False, labels=results.labels,
                     references=results.references)
        cis = results.median_cis
        cis = cis[cis["kind"] == "median"].rename(columns={"term": "style"})
        results.figures = ratings_figures(results.ratings, results.medians, results.pairwise,
                                          cis, results.tests, results.labels)
        for name, figure in results.figures.items():
            write_figure(tmp / "figures", name, figure)
        write_sections(tmp, results.sections, results.labels)
        summary = summary_of(results)
        results.methods = ratings_methods(summary, results.methods)
        write_methods(tmp, results.title, results.methods, results.versions,
                      results.method_references, results.simulated)
        (tmp / "report.html").write_text(render_report(results), encoding="utf-8")
        return write_summary(tmp, summary, study_columns(results.labels))


def summary_of(results: AnalysisResults) -> dict:
    """The JSON summary: counts, every test, every model, reliability (output hashes are
    added by the writer)."""
    return {
        "schema": SUMMARY_SCHEMA,
        "study_id": results.study_id,
        "created": results.created,
        "source": results.source,
        "simulated_files": results.simulated,
        "options": results.options,
        "versions": results.versions,
        "design": results.design,
        "counts": results.counts,
        "key_results": [f.record() for f in results.findings] + [
            {"section": s.name, "text": text} for s in results.sections for text in s.findings],
        "tests": results.tests.to_dict(orient="records"),
        "pairwise": results.pairwise.to_dict(orient="records"),
        "models": [{"role": role, **m.summary()} for role, m in results.models],
        "reliability": results.reliability.to_dict(orient="records"),
        "bootstrap_medians": results.median_cis.to_dict(orient="records"),
        **{section.name: section.summary for section in results.sections},
        "inputs": results.inputs,
    }


def _model_table(models: list[tuple[str, ModelResult]]) -> pd.DataFrame:
    frames = [m.table.assign(role=role, model=m.model, aspect=m.aspect, formula=m.formula)
              for role, m in models]
    columns = ["role", "model", "aspect", "formula", *TABLE_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _ledger_digest(ledger: pd.DataFrame) -> str:
    if ledger.empty:
        return "the table has no usable score"
    shown = "; ".join(f"{Path(r.file).name}: {r.status}{' (' + r.reason + ')' if r.reason else ''}"
                      for r in ledger.head(3).itertuples())
    return f"{len(ledger)} file(s): {shown}" + (" ..." if len(ledger) > 3 else "")
