"""Write a study's archive: one zip, an RO-Crate, for deposit with the paper.

The archive holds the study file, the generation manifest and images, the survey, the
key, the response files the analysis read (matched by SHA-256 against its ledger), the
analysis, a README, ``CITATION.cff`` and ``.zenodo.json`` (from the study's ``[archive]``
table), ``ro-crate-metadata.json`` and ``SHA256SUMS`` (``sha256sum -c`` format) covering
every other file.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import tempfile
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

from glidemed import __version__
from glidemed.archive.citation import citable, citation_cff, zenodo_json
from glidemed.archive.crate import CRATE_NAME, Stages, build_crate
from glidemed.archive.members import MemberProblem, outside_member, unsafe_name
from glidemed.errors import GlidemedError
from glidemed.fileio import atomic_path, sha256_bytes, sha256_file
from glidemed.paths import analysis_dir, images_dir, key_dir, responses_dir, study_build_dir, survey_dir
from glidemed.prescreen import PROVENANCE, RANKING
from glidemed.study import Study

SUMS = "SHA256SUMS"
# Already-compressed files are stored; text is deflated.
STORED_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".zip", ".gz"}
PUBLIC_KEY_FILES = {"key/build.json"}  # key/ files that reveal nothing: kept when the key is sealed

DERIVATION_RECORDS = (PROVENANCE, RANKING)  # beside a study glidemed prescreen derived


def archive_path(study: Study) -> Path:
    return study_build_dir(study) / f"{study.id}-archive.zip"


def sealed_key_path(archive: Path) -> Path:
    """Where ``--seal-key`` writes the key: beside the archive, ``<name>-key.zip``."""
    return archive.with_name(f"{archive.stem}-key.zip")


def archive_study(study: Study, out: Path | None = None, *, images: bool = True,
                  responses: bool = True, pseudonymize: bool = False,
                  responses_from: Path | None = None, seal_key: bool = False,
                  analysis_options: dict | None = None) -> Path:
    """Write the study's archive zip and return its path.

    The responses archived are exactly those of the analysis ledger, found by SHA-256 where
    the analysis read them (or in ``responses_from``); any difference is refused. With
    ``pseudonymize``, rater ids become R01, R02, ... and the analysis is re-run on those
    responses so every archived table uses the same ids. With ``seal_key``, the key goes
    to its own zip (:func:`sealed_key_path`) whose SHA-256 the archive records.
    """
    out = Path(out or archive_path(study))
    files = _collect(study, images=images)
    used, renamed = ({}, {}) if not (responses or pseudonymize) else analysed_responses(
        study, responses_from)
    files.update(used)
    today = dt.datetime.now(dt.timezone.utc).date()
    with tempfile.TemporaryDirectory() as scratch:
        if pseudonymize:
            files, renamed = _pseudonymized(study, files, Path(scratch), analysis_options or {}), {}
        if not responses:
            files = {n: p for n, p in files.items() if not n.startswith("responses/")}
            renamed = {}
        sealed = None
        if seal_key:
            key_files = {n: p for n, p in files.items()
                         if n.startswith("key/") and n not in PUBLIC_KEY_FILES}
            files = {n: p for n, p in files.items() if n not in key_files}
            key_zip = sealed_key_path(out)
            _write(key_zip, lambda tmp: _write_zip(tmp, key_files))
            sealed = (key_zip.name, key_zip.stat().st_size, sha256_file(key_zip))
        files.update(citation_files(study, today))
        files["README.md"] = readme_text(study, files, images=images, responses=responses,
                                     pseudonymize=pseudonymize, sealed=sealed).encode("utf-8")
        stages = _stages(files)

        def crate(members: dict[str, tuple[int, str]]) -> bytes:
            return build_crate(study, members, stages, today, sealed, renamed)

        _write(out, lambda tmp: _write_zip(tmp, files, crate))
    return out


def citation_files(study: Study, today: dt.date) -> dict[str, bytes]:
    """``CITATION.cff`` and ``.zenodo.json`` of a citable study (verify regenerates them)."""
    if not citable(study.archive):
        return {}
    return {"CITATION.cff": citation_cff(study, today).encode("utf-8"),
            ".zenodo.json": (json.dumps(zenodo_json(study, today), indent=1, ensure_ascii=False)
                             + "\n").encode("utf-8")}


def _write(out: Path, write) -> None:
    try:
        with atomic_path(out) as tmp:
            write(tmp)
    except OSError as exc:
        raise GlidemedError(f"could not write archive {out}: {exc.strerror or exc}") from None


def _collect(study: Study, *, images: bool) -> dict[str, Path | bytes]:
    """Archive name -> source file (or bytes), every stage but the responses."""
    files: dict[str, Path | bytes] = {f"study/{study.path.name}": study.path}
    for example in study.survey.examples:
        files[f"study/{example.file}"] = study.folder / example.file
    for record in DERIVATION_RECORDS:  # a study glidemed prescreen derived: where it came from
        if (study.folder / record).is_file():
            files[f"study/{record}"] = study.folder / record
    sources = {"images": images_dir(study), "survey": survey_dir(study), "key": key_dir(study),
               "analysis": analysis_dir(study)}
    missing = [name for name in ("key", "survey", "analysis") if not sources[name].is_dir()]
    if missing:
        raise GlidemedError(f"{study_build_dir(study)}: nothing to archive yet: missing "
                            f"{', '.join(missing)} (run generate, build and analyze first)")
    for name, folder in sources.items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue  # our hidden temporaries of interrupted writes
            if name == "images" and not images and relative.parts[0] != "manifest":
                continue
            files[f"{name}/{relative.as_posix()}"] = path
    return files


def analysed_responses(study: Study, responses_from: Path | None = None
                       ) -> tuple[dict[str, Path], dict[str, str]]:
    """The response files of the analysis ledger, found by SHA-256, as (archive name ->
    file, archive name -> ledger name for the files renamed). Looks where the analysis
    read them (recorded in summary.json), or in ``responses_from``; refuses, naming each
    difference, when a file is missing or changed, or (where the analysis read) was added."""
    from glidemed.analysis.ingest import collect_files

    folder = analysis_dir(study)
    rows = _ledger(folder / "ledger.csv")
    inputs = _summary(folder).get("inputs", {})
    if not rows or "ratings" in inputs:
        return {}, {}
    sources = [Path(responses_from)] if responses_from else [
        Path(p) for p in inputs.get("responses", [])] or [responses_dir(study)]
    present = [p for p in sources if p.exists()]
    if responses_from and not present:
        raise GlidemedError(f"{responses_from}: no such response folder")
    found = collect_files(present) if present else {}
    by_hash: dict[str, list[tuple[Path, str]]] = {}
    now_by_name: dict[str, str] = {}
    for path, name in found.items():
        digest = sha256_file(path)
        by_hash.setdefault(digest, []).append((path, name))
        now_by_name[name] = digest
    chosen: dict[int, Path] = {}
    taken: set[Path] = set()
    problems = []
    for i, row in enumerate(rows):
        candidates = [c for c in by_hash.get(row["sha256"], []) if c[0] not in taken]
        same_name = [c for c in candidates if c[1] == row["file"]] or candidates
        if same_name:
            chosen[i] = same_name[0][0]
            taken.add(same_name[0][0])
        elif row["file"] in now_by_name:
            problems.append(f"{row['file']}: changed since the analysis (SHA-256 "
                            f"{row['sha256'][:12] or 'unreadable'} then, {now_by_name[row['file']][:12]} now)")
        else:
            problems.append(f"{row['file']}: read by the analysis (SHA-256 {row['sha256'][:12] or 'unreadable'}) "
                            "but not found")
    if not responses_from:
        problems += [f"{name}: added since the analysis" for path, name in found.items()
                     if path not in taken]
    if problems:
        where = ", ".join(str(p) for p in sources)
        raise GlidemedError(
            f"the responses in {where} differ from those the analysis read "
            f"({len(problems)} difference(s)): {'; '.join(problems[:10])}"
            + (" ..." if len(problems) > 10 else "")
            + ". Run analyze again, or point to the analysed files with --responses-from")
    return _stable_names(rows, chosen)


def _stable_names(rows: list[dict], chosen: dict[int, Path]
                  ) -> tuple[dict[str, Path], dict[str, str]]:
    """Archive the files under their ledger names when those are plain relative paths in
    ledger order (so a re-run names them alike); else as ``NNN-<file name>`` in ledger order,
    recording the ledger name."""
    names = [row["file"] for row in rows]
    plain = all(not unsafe_name(n) for n in names)
    if plain and names == sorted(names) and len(set(names)) == len(names):
        return {f"responses/{n}": chosen[i] for i, n in enumerate(names)}, {}
    width = len(str(len(rows)))
    files, renamed = {}, {}
    for i, name in enumerate(names):
        base = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(name.replace("\\", "/")).name) or "file"
        archive_name = f"responses/{i + 1:0{width}d}-{base}"
        files[archive_name] = chosen[i]
        renamed[archive_name] = name
    return files, renamed


def _ledger(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GlidemedError(f"{path}: cannot read the analysis ledger ({exc})") from None
    if rows and not {"file", "sha256"} <= set(rows[0]):
        raise GlidemedError(f"{path}: not an analysis ledger (no file and sha256 columns)")
    return rows


def _summary(folder: Path) -> dict:
    path = folder / "summary.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise GlidemedError(f"{path}: not a readable analysis summary ({exc})") from None
    return value if isinstance(value, dict) else {}


def _pseudonymized(study: Study, files: dict, scratch: Path, options: dict) -> dict:
    """Replace rater ids in the responses and re-run the analysis on them.

    The responses are read as the analysis reads them (one decoder, one schema check);
    a file it rejects is kept as returned, named ``unreadable``. File and folder names may
    name the rater too: the responses are renamed ``<alias>-<hash>.json`` in one flat
    folder, never overwriting one another.
    """
    from glidemed.responses import Rejected, check_schema, decode_response
    from glidemed.analysis.pipeline import run_analysis

    flagged = [row["file"] for row in _ledger(analysis_dir(study) / "ledger.csv")
               if row.get("status") == "flagged"]
    if flagged:
        # The hash chain binds the original rater id: a pseudonymised copy of a flagged file
        # could no longer be told from an intact one, and the re-run's numbers would differ.
        raise GlidemedError(
            f"--pseudonymize: {len(flagged)} response file(s) are flagged in the analysis "
            f"ledger (hash chain does not verify): {', '.join(flagged[:5])}"
            + (" ..." if len(flagged) > 5 else "")
            + "; their flag cannot survive a change of rater id. Archive without "
              "--pseudonymize, or set the flagged files aside and analyse again")
    pseudonyms: dict[str, str] = {}
    new_files = {n: p for n, p in files.items()
                 if not n.startswith(("responses/", "analysis/"))}
    responses_out = scratch / "responses"
    responses_out.mkdir()
    for name in [n for n in files if n.startswith("responses/")]:
        raw = Path(files[name]).read_bytes()
        try:
            data = decode_response(raw)
            check_schema(data)
        except Rejected:
            target = _unused_name(responses_out, "unreadable", Path(name).suffix)
            target.write_bytes(raw)  # kept as returned: the ledger says why it was rejected
        else:
            alias = pseudonyms.setdefault(data["rater"]["id"], f"R{len(pseudonyms) + 1:02d}")
            data["rater"]["id"] = alias
            target = _unused_name(responses_out, f"{alias}-{sha256_bytes(raw)[:8]}", ".json")
            target.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        new_files[f"responses/{target.name}"] = target
    analysis_out = scratch / "analysis"
    run_analysis(study, [responses_out], analysis_out, key=key_dir(study) / "key.json",
                 **rerun_options(analysis_dir(study), {**options, "pseudonymized": True}))
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


def rerun_options(analysis_folder: Path, override: dict, label: str = "") -> dict:
    """The options of the archived analysis (from its summary.json), so a re-run matches.
    ``label`` names the summary in an error (default: its path)."""
    summary_path = analysis_folder / "summary.json"
    recorded = {}
    if summary_path.is_file():
        try:
            recorded = outside_member(summary_path.read_bytes(), "summary",
                                      label or str(summary_path)).get("options", {})
        except MemberProblem as exc:
            raise GlidemedError(f"{exc}; cannot tell how to re-run the analysis") from None
    names = {"model": "model", "nonsensical": "nonsensical", "flagged": "flagged",
             "bootstrap": "n_boot", "seed": "seed",
             "pseudonymized": "pseudonymized",
             "allow_simulated": "allow_simulated"}  # summary.json name -> run_analysis name
    options = {names[k]: v for k, v in recorded.items() if k in names}
    options.update(override)
    return options


def _stages(files: dict[str, Path | bytes]) -> Stages:
    """Times, generators and software of each stage, from the records the stages wrote."""
    stages = Stages()
    generators: dict[str, dict] = {}
    for name in sorted(n for n in files if n.startswith("images/manifest/") and n.endswith(".jsonl")):
        for line in _read(files[name]).splitlines():
            try:
                record = json.loads(line)
                condition = record["condition"]
            except (ValueError, KeyError, TypeError):
                continue
            stages.generate_end = max(stages.generate_end, str(record.get("created", "")))
            generators.setdefault(condition, {
                "condition": condition, "generator": record.get("generator", ""),
                "params": record.get("params", {}), "versions": record.get("versions", {})})
    stages.generators = list(generators.values())
    build = _json(files.get("key/build.json"))
    stages.build_end = str(build.get("created", ""))
    summary = _json(files.get("analysis/summary.json"))
    stages.analyze_end = str(summary.get("created", ""))
    stages.analysis_versions = {str(k): str(v) for k, v in summary.get("versions", {}).items()}
    stages.analysis_options = summary.get("options", {})
    return stages


def _read(source: Path | bytes | None) -> str:
    if source is None:
        return ""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return data.decode("utf-8", "replace")


def _json(source: Path | bytes | None) -> dict:
    try:
        value = json.loads(_read(source) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def readme_text(study: Study, files, *, images: bool, responses: bool,
                pseudonymize: bool, sealed: tuple[str, int, str] | None) -> str:
    """The archive's README.md; ``files``: the names of its other members (verify
    regenerates it from the archive's own names)."""
    counts = Counter(name.split("/")[0] for name in files)
    key_text = (f"only build.json: the key is sealed in {sealed[0]} (SHA-256 {sealed[2]})"
                if sealed else "the unblinding key: panel and image tokens to prompts, "
                               "conditions and files")
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
        f"| key/ | {key_text} | {counts.get('key', 0)} |",
        "| responses/ | the response files the analysis read"
        f"{'' if responses else ' (left out of this archive)'} | {counts.get('responses', 0)} |",
        "| analysis/ | ledger.csv (every response file and what became of it), ratings.csv, "
        f"tables, figures, report.html and summary.json | {counts.get('analysis', 0)} |",
        "",
        f"`{CRATE_NAME}` describes every file (format, size, SHA-256) and how each stage made",
        "its files (RO-Crate 1.2, Process Run Crate). "
        f"`{SUMS}` lists the SHA-256 of every other file; check it with `sha256sum -c {SUMS}`.",
        "`glidemed verify ARCHIVE` checks both, the images against the generation manifest, the",
        "survey against key/build.json, re-runs the analysis from responses/ and compares every",
        "number and the report with analysis/.",
    ]
    if "CITATION.cff" in files:
        lines += ["", "Cite with `CITATION.cff`; `.zenodo.json` holds the same metadata for Zenodo."]
    if sealed:
        lines += ["", f"The key is in {sealed[0]}, kept apart until publication. Once released, "
                      f"`glidemed verify ARCHIVE --key {sealed[0]}` checks it against the SHA-256 "
                      "above and re-runs the analysis with it."]
    if pseudonymize:
        lines += ["", "Rater ids are pseudonymised (R01, R02, ...) consistently in every file."]
    return "\n".join(lines) + "\n"


def _write_zip(target: Path, files: dict[str, Path | bytes], crate=None) -> None:
    """Write ``files`` and, when ``crate`` is given, the RO-Crate metadata it makes from
    every member's (size, SHA-256); then SHA256SUMS over everything."""
    sums, members = [], {}
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(files):
            source = files[name]
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            compression = (zipfile.ZIP_STORED if Path(name).suffix.lower() in STORED_SUFFIXES
                           else zipfile.ZIP_DEFLATED)
            archive.writestr(name, data, compress_type=compression)
            digest = sha256_bytes(data)
            sums.append(f"{digest}  {name}")
            members[name] = (len(data), digest)
        if crate is not None:
            data = crate(members)
            archive.writestr(CRATE_NAME, data, compress_type=zipfile.ZIP_DEFLATED)
            sums.append(f"{sha256_bytes(data)}  {CRATE_NAME}")
        archive.writestr(SUMS, "\n".join(sorted(sums, key=lambda s: s[66:])) + "\n",
                         compress_type=zipfile.ZIP_DEFLATED)
