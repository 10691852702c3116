"""`glidemed analyze`: responses (or a ratings table) -> tables, figures, report, summary.

Everything is written into a temporary folder beside the output folder, which replaces it
only once complete: an error (a full disk, a crash) leaves the previous analysis as it was
and never a half-written one. summary.json is written last inside that folder.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from glidemed.analysis.descriptives import describe_ratings, first_ratings, prompt_medians
from glidemed.analysis.formula import DEFAULT_FORMULA, Formula, parse_formula
from glidemed.analysis.ingest import FLAGGED_MODES, LEDGER_COLUMNS, ingest_responses
from glidemed.analysis.nonparametric import UNITS, run_tests
from glidemed.analysis.reliability import reliability_table
from glidemed.analysis.report import MAIN_DESCRIPTIVES, AnalysisResults, render_report
from glidemed.analysis.results import TABLE_COLUMNS, ModelResult
from glidemed.analysis.tidy import apply_nonsensical, usable
from glidemed.errors import AnalysisError
from glidemed.fileio import sha256_file, write_text_atomic
from glidemed.paths import analysis_dir, key_dir, responses_dir
from glidemed.study import Study

SUMMARY_SCHEMA = "glidemed-summary/1"
ZERO_METHOD = "pratt"  # signed-rank tests: zero differences ranked, then left out
MIN_RATERS_MIXED = 3  # below this a rater random effect is not estimable in any useful way
MIXED_TERMS = ("rater", "prompt_id")  # random intercepts added for the primary model
LATEX_TABLES = ("descriptives", "tests", "pairwise", "ordinal", "reliability", "bootstrap_medians")
SOFTWARE = ("numpy", "pandas", "scipy", "statsmodels", "scikit-posthocs", "krippendorff",
            "matplotlib", "jinja2", "jsonschema")


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
    if study.survey.task == "turing" and ratings is None:
        from glidemed.analysis.turing import run_turing_analysis

        return run_turing_analysis(study, responses, out_dir, key=key, flagged=flagged,
                                   n_boot=n_boot, seed=seed, pseudonymized=pseudonymized,
                                   allow_simulated=allow_simulated, provenance=provenance)
    out = Path(out_dir) if out_dir is not None else analysis_dir(study)
    _check_out_dir(out, ratings)
    df, ledger, profiles, source = _load(study, responses, ratings, key, nonsensical, flagged,
                                         pseudonymized, allow_simulated)
    df = apply_nonsensical(df, nonsensical)
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
    if section is not None:
        results.sections.append(section)
    if allow_simulated:
        results.options["allow_simulated"] = True
    results.inputs = _inputs(study, responses, ratings)
    if provenance:
        results.created, results.versions = provenance["created"], provenance["versions"]
    return write_outputs(results, out)


def _inputs(study: Study, responses, ratings) -> dict[str, list[str]]:
    """Where the analysed files were read (absolute paths): ``glidemed archive`` looks there."""
    if ratings is not None:
        return {"ratings": [] if isinstance(ratings, pd.DataFrame) else [str(Path(ratings).resolve())]}
    return {"responses": [str(Path(p).resolve()) for p in (responses or [responses_dir(study)])]}


def _load(study: Study, responses, ratings, key, nonsensical: str, flagged: str,
          pseudonymized: bool = False, allow_simulated: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(ratings, ledger, profiles, what was analysed in words); a ratings table has no
    ledger and no profiles."""
    if ratings is not None:
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
    if isinstance(key, dict):
        key_data, key_name = key, "key"
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
    df, ledger, profiles = ingest_responses(study, key_data, paths, flagged=flagged,
                                            key_name=key_name, pseudonymized=pseudonymized,
                                            allow_simulated=allow_simulated)
    if ledger.empty:
        raise AnalysisError(f"no .json files in {', '.join(map(str, paths))}: "
                            "no response file to analyse")
    return df, ledger, profiles, f"{len(ledger)} response file(s)"


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
    return AnalysisResults(
        study_id=study.id, title=study.title, source=source,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), options=options,
        ratings=df, ledger=ledger, profiles=profiles, descriptives=descriptives,
        medians=medians, tests=tests, pairwise=pairwise, models=models,
        reliability=reliability, median_cis=median_cis, counts=counts,
        versions=software_versions(), methods=_methods(options),
        model_text=model_text, notes=_notes(counts, ledger) + notes)


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


def _methods(options: dict) -> list[str]:
    zero = {"exclude": "excluded", "zero": "counted as score 0",
            "paper": "counted as score 0 for every rater once any rater flagged the prompt, "
                     "as in the seed study's analysis"}[options["nonsensical"]]
    return [
        "Response files were validated against the response JSON Schema and the survey build "
        "(build hash, panel and image tokens, aspects, flags, score range) and unblinded with the "
        "build's key; the hash chain of every file was verified, and files whose chain does not "
        f"verify were {'included' if options['flagged'] == 'include' else 'excluded'} "
        "(--flagged). Of several files from one rater, the one whose chain verifies, then the "
        "one with most ratings, then the latest update is used (see the file table).",
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


def software_versions() -> dict[str, str]:
    versions = {"glidemed": _version("glidemed"), "python": platform.python_version()}
    versions.update({name: _version(name) for name in SOFTWARE})
    return versions


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


# --- writing -----------------------------------------------------------------------------

def write_outputs(results: AnalysisResults, out: Path) -> dict:
    """Write every table, figure, the report and summary.json; replace ``out`` atomically."""
    from glidemed.analysis.figures import write_figures

    with analysis_folder(out) as tmp:
        ordinal = _model_table(results.models)
        tables = {"ratings": results.ratings, "ledger": results.ledger,
                  "profiles": results.profiles, "descriptives": results.descriptives,
                  "prompt_medians": results.medians, "tests": results.tests,
                  "pairwise": results.pairwise, "ordinal": ordinal,
                  "reliability": results.reliability, "bootstrap_medians": results.median_cis}
        for name, table in tables.items():
            if name in SPREADSHEET_SAFE:
                table = spreadsheet_safe(table)
            (tmp / f"{name}.csv").write_text(table.to_csv(index=False), encoding="utf-8")
            if name in LATEX_TABLES:
                (tmp / f"{name}.tex").write_text(_latex(name, table), encoding="utf-8")
        cis = results.median_cis
        cis = cis[cis["kind"] == "median"].rename(columns={"term": "style"})
        results.figures = write_figures(tmp / "figures", results.ratings, results.medians,
                                        results.pairwise, cis)
        for section in results.sections:
            for name, table in section.tables.items():
                (tmp / f"{name}.csv").write_text(table.to_csv(index=False), encoding="utf-8")
                (tmp / f"{name}.tex").write_text(_latex(name, table), encoding="utf-8")
            for name, (png, svg, _) in section.figures.items():
                (tmp / "figures" / f"{name}.png").write_bytes(png)
                (tmp / "figures" / f"{name}.svg").write_bytes(svg)
        (tmp / "report.html").write_text(render_report(results), encoding="utf-8")
        summary = build_summary(results, tmp)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False),
                                          encoding="utf-8")
    return summary


@contextmanager
def analysis_folder(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out`` to write into; it replaces ``out`` atomically when the
    block ends without error, and is removed otherwise (``out`` then stays as it was)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        _replace_dir(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AnalysisError(f"could not write the analysis to {out}: {exc.strerror or exc}. "
                            "Nothing there was changed; fix the problem and run again.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_summary(results: AnalysisResults, folder: Path) -> dict:
    """The JSON summary: counts, every test, every model, reliability and output hashes."""
    outputs = {p.relative_to(folder).as_posix(): sha256_file(p)
               for p in sorted(folder.rglob("*")) if p.is_file()}
    return _clean({
        "schema": SUMMARY_SCHEMA,
        "study_id": results.study_id,
        "created": results.created,
        "source": results.source,
        "options": results.options,
        "versions": results.versions,
        "counts": results.counts,
        "tests": results.tests.to_dict(orient="records"),
        "pairwise": results.pairwise.to_dict(orient="records"),
        "models": [{"role": role, **m.summary()} for role, m in results.models],
        "reliability": results.reliability.to_dict(orient="records"),
        "bootstrap_medians": results.median_cis.to_dict(orient="records"),
        **{section.name: section.summary for section in results.sections},
        "inputs": results.inputs,
        "outputs": outputs,
    })


def _model_table(models: list[tuple[str, ModelResult]]) -> pd.DataFrame:
    frames = [m.table.assign(role=role, model=m.model, aspect=m.aspect, formula=m.formula)
              for role, m in models]
    columns = ["role", "model", "aspect", "formula", *TABLE_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _latex(name: str, table: pd.DataFrame) -> str:
    if name == "descriptives":
        table = table[table["by"].isin(MAIN_DESCRIPTIVES)]
    return table.to_latex(index=False, escape=True, na_rep="", float_format="%.4g",
                          longtable=len(table) > 40, caption=name.replace("_", " "),
                          label=f"tab:{name}")


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and NA become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# Tables of text people open in spreadsheets and glidemed never reads back: their cells
# that a spreadsheet would run as a formula are neutralised (ratings.csv is data, kept exact).
SPREADSHEET_SAFE = ("ledger", "profiles")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells starting like a formula (=, +, -, @, tab, CR) begin with an
    apostrophe, so that a spreadsheet shows them as text instead of running them."""
    def cell(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(cell)
    return out


def write_ledger_only(ledger: pd.DataFrame, out: Path) -> Path:
    """Write the ledger of a run with no usable rating, so that no file's reason is lost:
    as ``out/ledger.csv`` when ``out`` holds no earlier analysis (the folder then holds the
    ledger alone), else beside it as ``<out>-ledger.csv``, leaving that analysis as it was."""
    earlier = out.is_dir() and (out / "summary.json").is_file()
    target = out.with_name(f"{out.name}-ledger.csv") if earlier else out / "ledger.csv"
    if not earlier and out.exists() and not _only_a_ledger(out):
        target = out.with_name(f"{out.name}-ledger.csv")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, spreadsheet_safe(ledger).to_csv(index=False))
    except OSError as exc:
        raise AnalysisError(f"could not write the ledger to {target}: {exc.strerror or exc}") from None
    return target


def _only_a_ledger(out: Path) -> bool:
    return out.is_dir() and [p.name for p in out.iterdir()] in ([], ["ledger.csv"])


def _check_out_dir(out: Path, ratings: Any = None) -> None:
    """Refuse to replace a folder that holds something other than a glidemed analysis.

    Besides an earlier analysis (it has summary.json), a folder holding only the
    ``ratings.csv`` being analysed is replaced, as ``glidemed import-ratings`` leaves it:
    the analysis writes that table again.
    """
    if not out.exists() or (out / "summary.json").is_file() or _only_a_ledger(out):
        return
    contents = list(out.iterdir()) if out.is_dir() else None
    only_these_ratings = (isinstance(ratings, (str, os.PathLike)) and contents == [out / "ratings.csv"]
                          and Path(ratings).resolve() == contents[0].resolve())
    if contents is None or (contents and not only_these_ratings):
        raise AnalysisError(f"{out}: exists and is not a glidemed analysis folder (no summary.json); "
                            "choose a new or empty folder with --out")


def _replace_dir(new: Path, out: Path) -> None:
    """Put ``new`` at ``out``; the old folder is kept aside until the rename succeeded."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    try:
        os.replace(new, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    os.chmod(out, 0o755 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _ledger_digest(ledger: pd.DataFrame) -> str:
    if ledger.empty:
        return "the table has no usable score"
    shown = "; ".join(f"{Path(r.file).name}: {r.status}{' (' + r.reason + ')' if r.reason else ''}"
                      for r in ledger.head(3).itertuples())
    return f"{len(ledger)} file(s): {shown}" + (" ..." if len(ledger) > 3 else "")
