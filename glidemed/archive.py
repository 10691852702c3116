"""Archive a whole study as one zip for deposit with a paper, and verify such an archive.

The archive holds the study file, the generation manifest and images, the survey, the
key, the returned responses with their ledger, the analysis, a README and
``SHA256SUMS`` (``sha256sum -c`` format) covering every other file. ``verify`` checks
every hash, re-runs the analysis from the archived responses and compares every number
with the archived results.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from glidemed import __version__
from glidemed.errors import GlidemedError
from glidemed.fileio import atomic_path, sha256_bytes
from glidemed.paths import (SERVER_LOG, analysis_dir, images_dir, key_dir, responses_dir,
                            study_build_dir, survey_dir)
from glidemed.study import Study, load_study

SUMS = "SHA256SUMS"
# Already-compressed files are stored; text is deflated.
STORED_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".zip", ".gz"}
# Analysis outputs compared by verify; figures and the HTML report are re-drawn, not compared.
COMPARED_SUFFIXES = {".csv", ".json"}
NUMERIC_TOLERANCE = 1e-6
RERUN_FOLDERS = ("study", "key", "responses", "analysis")  # what verify extracts to re-run


@dataclass
class VerifyReport:
    """What :func:`verify_archive` found; ``ok`` when no hash and no number differs."""

    checked_files: int = 0
    hash_problems: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # "file: where: archived X, re-run Y"
    reran: bool = False
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.hash_problems and not self.differences


def archive_path(study: Study) -> Path:
    return study_build_dir(study) / f"{study.id}-archive.zip"


def archive_study(study: Study, out: Path | None = None, *, images: bool = True,
                  responses: bool = True, pseudonymize: bool = False,
                  analysis_options: dict | None = None) -> Path:
    """Write the study's archive zip and return its path.

    With ``pseudonymize``, rater ids become R01, R02, ... in the responses, and the
    analysis is re-run on those responses so every archived table uses the same ids (the
    responses are read for this even when they are left out of the archive).
    """
    out = Path(out or archive_path(study))
    files = _collect(study, images=images, responses=responses or pseudonymize)
    with tempfile.TemporaryDirectory() as scratch:
        if pseudonymize:
            files = _pseudonymized(study, files, Path(scratch), analysis_options or {})
            if not responses:
                files = {n: p for n, p in files.items() if not n.startswith("responses/")}
        files["README.md"] = _readme(study, files, images=images, responses=responses,
                                     pseudonymize=pseudonymize).encode("utf-8")
        try:
            with atomic_path(out) as tmp:
                _write_zip(tmp, files)
        except OSError as exc:
            raise GlidemedError(f"could not write archive {out}: {exc.strerror or exc}") from None
    return out


def _collect(study: Study, *, images: bool, responses: bool) -> dict[str, Path | bytes]:
    """Archive name -> source file (or bytes)."""
    files: dict[str, Path | bytes] = {f"study/{study.path.name}": study.path}
    for example in study.survey.examples:
        files[f"study/{example.file}"] = study.folder / example.file
    sources = {"images": images_dir(study), "survey": survey_dir(study), "key": key_dir(study),
               "responses": responses_dir(study), "analysis": analysis_dir(study)}
    required = ["key", "survey", "analysis"] + (["responses"] if responses else [])
    missing = [name for name in required if not sources[name].is_dir()]
    if missing:
        raise GlidemedError(f"{study_build_dir(study)}: nothing to archive yet: missing "
                            f"{', '.join(missing)} (run generate, build and analyze first)")
    for name, folder in sources.items():
        if not folder.is_dir() or (name == "responses" and not responses):
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if not path.is_file():
                continue
            if name != "responses" and any(part.startswith(".") for part in relative.parts):
                continue  # our hidden temporaries of interrupted writes; a returned file is kept
            if name == "responses" and relative.as_posix() == SERVER_LOG:
                continue  # glidemed serve's log of refusals (client addresses), not a result
            if name == "images" and not images and relative.parts[0] != "manifest":
                continue
            files[f"{name}/{relative.as_posix()}"] = path
    return files


def _pseudonymized(study: Study, files: dict, scratch: Path, options: dict) -> dict:
    """Replace rater ids in the responses and re-run the analysis on them.

    File and folder names may name the rater too: the responses are renamed
    ``<alias>-<hash>.json`` (``unreadable.<suffix>`` when not a readable response) in one
    flat folder, never overwriting one another.
    """
    from glidemed.analysis.pipeline import run_analysis

    pseudonyms: dict[str, str] = {}
    new_files = {n: p for n, p in files.items()
                 if not n.startswith(("responses/", "analysis/"))}
    responses_out = scratch / "responses"
    responses_out.mkdir()
    for name in [n for n in files if n.startswith("responses/")]:
        raw = Path(files[name]).read_bytes()
        try:
            data = json.loads(raw)
            rater = data["rater"]["id"]
        except (ValueError, KeyError, TypeError):
            target = _unused_name(responses_out, "unreadable", Path(name).suffix)
            target.write_bytes(raw)  # kept as returned: the ledger says why it was rejected
        else:
            alias = pseudonyms.setdefault(rater, f"R{len(pseudonyms) + 1:02d}")
            data["rater"]["id"] = alias
            target = _unused_name(responses_out, f"{alias}-{sha256_bytes(raw)[:8]}", ".json")
            target.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        new_files[f"responses/{target.name}"] = target
    analysis_out = scratch / "analysis"
    run_analysis(study, [responses_out], analysis_out, key=key_dir(study) / "key.json",
                 **_rerun_options(analysis_dir(study), {**options, "pseudonymized": True}))
    for path in sorted(analysis_out.rglob("*")):
        if path.is_file():
            new_files[f"analysis/{path.relative_to(analysis_out).as_posix()}"] = path
    return new_files


def _unused_name(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem+suffix``, or ``stem-2``, ``stem-3``... when that file exists."""
    target, k = folder / f"{stem}{suffix}", 1
    while target.exists():
        k += 1
        target = folder / f"{stem}-{k}{suffix}"
    return target


def _rerun_options(analysis_folder: Path, override: dict, label: str = "") -> dict:
    """The options of the archived analysis (from its summary.json), so a re-run matches.
    ``label`` names the summary in an error (default: its path)."""
    summary_path = analysis_folder / "summary.json"
    recorded = {}
    if summary_path.is_file():
        try:
            recorded = json.loads(summary_path.read_text(encoding="utf-8")).get("options", {})
        except (ValueError, AttributeError) as exc:
            raise GlidemedError(f"{label or summary_path}: not a readable analysis summary "
                                f"({exc}); cannot tell how to re-run the analysis") from None
    names = {"model": "model", "nonsensical": "nonsensical", "flagged": "flagged",
             "bootstrap": "n_boot", "seed": "seed",
             "pseudonymized": "pseudonymized",
             "allow_simulated": "allow_simulated"}  # summary.json name -> run_analysis name
    options = {names[k]: v for k, v in recorded.items() if k in names}
    options.update(override)
    return options


def _readme(study: Study, files: dict, *, images: bool, responses: bool,
            pseudonymize: bool) -> str:
    counts = Counter(name.split("/")[0] for name in files)
    lines = [
        f"# Archive of the study '{study.id}': {study.title}",
        "",
        f"Made by glidemed {__version__} on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| folder | contents | files |",
        "| --- | --- | --- |",
        f"| study/ | the study file (prompts, conditions, scales) | {counts.get('study', 0)} |",
        "| images/ | generated images and the generation manifest (manifest/*.jsonl: seed, "
        f"parameters, SHA-256 and software versions per image){'' if images else '; images left out, manifest kept'} | {counts.get('images', 0)} |",
        f"| survey/ | the survey exactly as sent to raters | {counts.get('survey', 0)} |",
        f"| key/ | the unblinding key: panel and image tokens to prompts, conditions and files | {counts.get('key', 0)} |",
        "| responses/ | the response files returned by raters"
        f"{'' if responses else ' (left out of this archive)'} | {counts.get('responses', 0)} |",
        "| analysis/ | ledger.csv (every response file and what became of it), ratings.csv, "
        f"tables, figures, report.html and summary.json | {counts.get('analysis', 0)} |",
        "",
        f"`{SUMS}` lists the SHA-256 of every other file; check it with `sha256sum -c {SUMS}`.",
        "`glidemed verify ARCHIVE` checks the hashes, re-runs the analysis from responses/ and",
        "compares every number with analysis/.",
    ]
    if pseudonymize:
        lines += ["", "Rater ids are pseudonymised (R01, R02, ...) consistently in every file."]
    return "\n".join(lines) + "\n"


def _write_zip(target: Path, files: dict[str, Path | bytes]) -> None:
    sums = []
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(files):
            source = files[name]
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            compression = (zipfile.ZIP_STORED if Path(name).suffix.lower() in STORED_SUFFIXES
                           else zipfile.ZIP_DEFLATED)
            archive.writestr(name, data, compress_type=compression)
            sums.append(f"{sha256_bytes(data)}  {name}")
        archive.writestr(SUMS, "\n".join(sums) + "\n", compress_type=zipfile.ZIP_DEFLATED)


def verify_archive(path: Path, rerun: bool = True) -> VerifyReport:
    """Check every hash in the archive, then re-run the analysis and compare its numbers."""
    report = VerifyReport()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise GlidemedError(f"{path}: not a readable zip archive ({exc})") from None
    with archive, tempfile.TemporaryDirectory() as scratch:
        names = set(archive.namelist())
        if SUMS not in names:
            raise GlidemedError(f"{path}: no {SUMS} inside; not a glidemed archive")
        listed = _read_sums(archive.read(SUMS).decode("utf-8", "replace"))
        for name, digest in listed.items():
            if name not in names:
                report.hash_problems.append(f"{name}: listed in {SUMS} but missing")
            elif sha256_bytes(archive.read(name)) != digest:
                report.hash_problems.append(f"{name}: SHA-256 does not match {SUMS}")
            report.checked_files += 1
        for name in sorted(names - set(listed) - {SUMS}):
            if not name.endswith("/"):
                report.hash_problems.append(f"{name}: not listed in {SUMS}")
        if not rerun:
            report.note = "analysis not re-run (hashes only)"
            return report
        root = Path(scratch)
        # only what the re-run reads: images and the survey are large and already hashed
        archive.extractall(root, members=[n for n in names if n.split("/", 1)[0] in RERUN_FOLDERS])
        try:
            _rerun_and_compare(root, report, label=str(path))
        except GlidemedError as exc:  # name the archive's members, not the scratch folder
            raise GlidemedError(f"{path}: " + exc.message.replace(f"{root}{os.sep}", "")) from None
    return report


def _read_sums(text: str) -> dict[str, str]:
    listed = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            listed[name] = digest
    return listed


def _rerun_and_compare(root: Path, report: VerifyReport, label: str) -> None:
    from glidemed.analysis.pipeline import run_analysis

    study_files = sorted((root / "study").glob("*.toml"))
    responses = root / "responses"
    if not study_files or not (root / "analysis" / "summary.json").is_file():
        report.note = "no study file or analysis summary in the archive: nothing to re-run"
        return
    if not responses.is_dir():
        report.note = "responses were left out of this archive: hashes checked, analysis not re-run"
        return
    study = load_study(study_files[0])
    recomputed = root / "recomputed"
    run_analysis(study, [responses], recomputed, key=root / "key" / "key.json",
                 **_rerun_options(root / "analysis", {}, f"{label}: analysis/summary.json"))
    report.reran = True
    archived = root / "analysis"
    for old in sorted(archived.rglob("*")):
        if old.suffix not in COMPARED_SUFFIXES or not old.is_file():
            continue
        name = old.relative_to(archived).as_posix()
        new = recomputed / name
        if not new.is_file():
            report.differences.append(f"analysis/{name}: not produced by the re-run")
        elif old.suffix == ".json":
            try:
                archived_value = json.loads(old.read_text(encoding="utf-8"))
            except ValueError as exc:
                report.differences.append(f"analysis/{name}: archived file is not valid JSON ({exc})")
                continue
            _compare_json(f"analysis/{name}", archived_value,
                          json.loads(new.read_text(encoding="utf-8")), "", report.differences)
        else:
            _compare_csv(f"analysis/{name}", old, new, report.differences)


# Fields that legitimately differ between two runs of the same analysis: the date, the
# software versions, and the hashes of output files that embed them (report.html).
VOLATILE_KEYS = {"created", "versions", "outputs"}


def _compare_json(name: str, old, new, where: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key in VOLATILE_KEYS:
                continue
            if key not in old or key not in new:
                out.append(f"{name}: {where}{key}: present in only one of archived/re-run")
            else:
                _compare_json(name, old[key], new[key], f"{where}{key}.", out)
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            out.append(f"{name}: {where.rstrip('.')}: {len(old)} items archived, {len(new)} re-run")
        for i, (a, b) in enumerate(zip(old, new)):
            _compare_json(name, a, b, f"{where}{i}.", out)
    elif not _same_value(old, new):
        out.append(f"{name}: {where.rstrip('.')}: archived {old!r}, re-run {new!r}")


def _compare_csv(name: str, old: Path, new: Path, out: list[str]) -> None:
    with (open(old, newline="", encoding="utf-8", errors="replace") as a,
          open(new, newline="", encoding="utf-8") as b):
        old_rows, new_rows = list(csv.reader(a)), list(csv.reader(b))
    if len(old_rows) != len(new_rows):
        out.append(f"{name}: {len(old_rows)} rows archived, {len(new_rows)} re-run")
        return
    header = old_rows[0] if old_rows else []
    for r, (row_a, row_b) in enumerate(zip(old_rows, new_rows)):
        if len(row_a) != len(row_b):
            out.append(f"{name}: row {r}: {len(row_a)} columns archived, {len(row_b)} re-run")
        for c, (a, b) in enumerate(zip(row_a, row_b)):
            column = header[c] if c < len(header) else str(c)
            if column in VOLATILE_KEYS:
                continue
            if not _same_value(a, b):
                out.append(f"{name}: row {r}, column {column}: archived {a!r}, re-run {b!r}")


def _same_value(a, b) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=NUMERIC_TOLERANCE, abs_tol=NUMERIC_TOLERANCE)
