"""``glidemed verify``: check an archive's every hash and record, re-run its analysis, compare.

Each member is streamed within bounds (:mod:`glidemed.archive.members`); a corrupt one is a
named finding. Every file whose content another record fixes is checked against it: all
against SHA256SUMS and the RO-Crate, images against the generation manifest, survey files
against key/build.json, every analysis member against a re-run, the README, CITATION.cff,
.zenodo.json and the crate's descriptive fields against those regenerated from the archived
study file. The crate, summary.json and build.json are validated against schemas first.
What cannot be checked is listed in the summary ("Not checked: ..."), never passed.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from glidemed.archive.compare import compare_csv, compare_json, compare_report
from glidemed.archive.crate import CRATE_NAME, crate_problems, crate_root
from glidemed.archive.members import (MemberProblem, check_bounds, extract_member,
                                      outside_member, read_small, stream_member, unsafe_name)
from glidemed.archive.pack import SUMS, citation_files, readme_text, rerun_options
from glidemed.errors import GlidemedError
from glidemed.outside_json import loads as outside_loads
from glidemed.fileio import sha256_file

DRAWN_SUFFIXES = {".png", ".svg", ".pdf"}  # figures: byte for byte with the same matplotlib
RERUN_FOLDERS = ("study", "key", "responses", "analysis")  # what verify extracts to re-run
RECORDS = ("images/manifest/", "study/")  # read for the record checks, never the images themselves


@dataclass
class VerifyReport:
    """What :func:`verify_archive` found; ``ok`` when nothing differs."""

    checked_files: int = 0
    hash_problems: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # "file: where: archived X, re-run Y"
    reran: bool = False
    note: str = ""
    unchecked: list[str] = field(default_factory=list)  # "member: why it could not be checked"
    facts: dict = field(default_factory=dict)  # for the reviewer's summary

    @property
    def ok(self) -> bool:
        return not self.hash_problems and not self.differences

    def summary(self) -> list[str]:
        """One screen for a reviewer: what the archive is, and what was checked."""
        f = self.facts
        lines = [f"Study: {f.get('title', '?')}"]
        if f.get("authors"):
            lines.append(f"Authors: {', '.join(f['authors'])}")
        if f.get("license") or f.get("date"):
            lines.append(f"Licence: {f.get('license', '?')}; archived {f.get('date', '?')}")
        folders = f.get("folders", {})
        lines.append("Contents: " + ", ".join(f"{k}/ {v}" for k, v in sorted(folders.items())))
        sealed = f.get("sealed_key")
        if sealed:
            lines.append(f"Key: sealed in {sealed.get('name')} (SHA-256 {sealed.get('sha256')})"
                         + ("; the key given matches" if f.get("key_given") else ""))
        mark = {True: "ok", False: "PROBLEMS"}
        lines.append(f"SHA256SUMS: {self.checked_files} files, {mark[not f.get('sum_problems')]}")
        lines.append(f"RO-Crate: {mark[not f.get('crate_problems')] if f.get('crate') else 'none'}")
        lines.append(f"Images vs generation manifest: {f.get('images_checked', 0)} checked")
        lines.append(f"Survey vs key/build.json: {f.get('survey_checked', 0)} checked")
        if self.reran:
            lines.append(f"Re-run analysis: {f.get('rerun_counts', '')}; "
                         f"{'every number and the report match' if not self.differences else f'{len(self.differences)} difference(s)'}")
        if self.note:
            lines.append(f"Note: {self.note}")
        lines += [f"Not checked: {line}" for line in self.unchecked]
        problems = len(self.hash_problems) + len(self.differences)
        verified = "Result: VERIFIED" + (f" except {len(self.unchecked)} member(s) not checked, "
                                         "listed above" if self.unchecked else "")
        lines.append(verified if self.ok else f"Result: {problems} PROBLEM(S), listed above")
        return lines


def verify_archive(path: Path, rerun: bool = True, key: Path | None = None) -> VerifyReport:
    """Check every member, record and hash in the archive, then re-run the analysis and
    compare its numbers and report. ``key``: the sealed key zip, once released."""
    report = VerifyReport()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise GlidemedError(f"{path}: not a readable zip archive ({exc})") from None
    with archive, tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        infos = {}
        for info in archive.infolist():
            if info.filename in infos:
                report.hash_problems.append(f"{info.filename}: appears twice in the zip")
            elif not info.is_dir():
                infos[info.filename] = info
        if SUMS not in infos:
            raise GlidemedError(f"{path}: no {SUMS} inside; not a glidemed archive")
        try:
            listed = _read_sums(read_small(archive, infos[SUMS]).decode("utf-8", "replace"))
        except MemberProblem as exc:
            raise GlidemedError(f"{path}: {exc}") from None
        digests = _check_members(archive, infos, listed, root, rerun, report)
        report.facts["sum_problems"] = bool(report.hash_problems)
        _check_crate(archive, infos, digests, report)
        _check_records(root, digests, report)
        summary_ok = _check_summary(archive, infos, report)
        study = _check_study_fields(root, report)
        if study is not None and "README.md" in digests:
            _check_readme(archive, infos, digests, study, report)
        if study is not None:
            _check_citation(archive, infos, digests, study, report)
        key_ok = _sealed_key(report, key, root)
        if not rerun:
            report.note = "analysis not re-run (hashes only)"
        elif not key_ok:
            report.note = ("the key is sealed: hashes checked, analysis not re-run (give the "
                           "released key with --key)")
        elif not summary_ok:
            report.note = "analysis/summary.json cannot be used: analysis not re-run"
        elif any(n.startswith("analysis/") and n not in digests for n in infos) or any(
                n.startswith(RERUN_FOLDERS) and n in report.facts.get("unreadable", ()) for n in infos):
            report.note = "members of the analysis could not be read: analysis not re-run"
        else:
            try:
                _rerun_and_compare(root, report, report.facts.get("renamed", {}))
            except GlidemedError as exc:  # the archive's own files are at fault: a finding
                message = exc.message.replace(str(root.resolve()) + "/", "").replace(str(root) + "/", "")
                report.differences.append(f"re-run failed: {message}")
    return report


def _check_members(archive: zipfile.ZipFile, infos: dict, listed: dict[str, str], root: Path,
                   rerun: bool, report: VerifyReport) -> dict[str, str]:
    """Stream every member once; extract only listed ones the re-run or the records need."""
    digests: dict[str, str] = {}
    unreadable = report.facts.setdefault("unreadable", set())
    for name in sorted(listed):
        report.checked_files += 1
        if name not in infos:
            report.hash_problems.append(f"{name}: listed in {SUMS} but missing")
    for name, info in sorted(infos.items()):
        if name == SUMS:
            continue
        if name not in listed:
            report.hash_problems.append(f"{name}: not listed in {SUMS}; not read")
            continue
        try:
            why = unsafe_name(name)
            if why:
                raise MemberProblem(f"{name}: {why}; not read")
            check_bounds(info)
            needed = name.startswith(RECORDS + ("key/build.json",)) or (
                rerun and name.startswith(tuple(f"{f}/" for f in RERUN_FOLDERS)))
            digest = (extract_member(archive, info, root) if needed
                      else stream_member(archive, info))
        except MemberProblem as exc:
            report.hash_problems.append(str(exc))
            unreadable.add(name)
            continue
        digests[name] = digest
        if digest != listed[name]:
            report.hash_problems.append(f"{name}: SHA-256 does not match {SUMS}")
    report.facts["sizes"] = {n: infos[n].file_size for n in digests}
    folders: dict[str, int] = {}
    for name in digests:
        if "/" in name:
            folders[name.split("/", 1)[0]] = folders.get(name.split("/", 1)[0], 0) + 1
    report.facts["folders"] = folders
    return digests


def _member_bytes(archive: zipfile.ZipFile, infos: dict, name: str,
                  report: VerifyReport) -> bytes | None:
    """A small member's bytes; None, with the reason among the hash problems, if unreadable."""
    try:
        return read_small(archive, infos[name])
    except MemberProblem as exc:
        report.hash_problems.append(str(exc))
        return None


def _check_crate(archive: zipfile.ZipFile, infos: dict, digests: dict[str, str],
                 report: VerifyReport) -> None:
    if CRATE_NAME not in infos:
        report.hash_problems.append(f"{CRATE_NAME}: missing; the archive is not an RO-Crate")
        return
    data = _member_bytes(archive, infos, CRATE_NAME, report)
    if data is None:
        return
    sizes = report.facts["sizes"]
    members = {n: (sizes[n], d) for n, d in digests.items() if n not in (SUMS, CRATE_NAME)}
    try:
        outside_member(data, "crate", CRATE_NAME)
    except MemberProblem as exc:
        report.hash_problems.append(str(exc))
        return
    problems = crate_problems(data, members)
    report.hash_problems += problems
    root = crate_root(data)
    license_value = root.get("license", {})
    report.facts.update(
        crate=True, crate_problems=bool(problems), title=root.get("name", "?"),
        authors=root.get("author_names", []), date=root.get("datePublished", ""),
        license=license_value.get("@id", "").rsplit("/", 1)[-1] if isinstance(license_value, dict)
        else str(license_value), sealed_key=root.get("sealed_key"), renamed=root.get("renamed", {}),
        crate_root=root)


def _check_summary(archive: zipfile.ZipFile, infos: dict, report: VerifyReport) -> bool:
    """analysis/summary.json decoded and validated (its options drive the re-run)."""
    name = "analysis/summary.json"
    if name not in infos:
        return True
    try:
        value = outside_member(read_small(archive, infos[name]), "summary", name)
    except MemberProblem as exc:
        report.differences.append(str(exc))
        return False
    report.facts["summary_options"] = value.get("options", {})
    return True


def _check_study_fields(root: Path, report: VerifyReport):
    """The crate's descriptive fields recomputed from the archived study file; the summary
    then shows the study file's title. Returns the study, or None when it cannot be read."""
    from glidemed.archive.citation import archive_description, archive_title
    from glidemed.study import load_study

    study_files = sorted((root / "study").glob("*.toml"))
    if not study_files:
        report.unchecked.append("the crate's title, description, licence, keywords and authors, "
                                "and README.md: no study file in the archive to recompute them from")
        return None
    try:
        study = load_study(study_files[0])
    except GlidemedError as exc:
        report.differences.append(f"study/{study_files[0].name}: cannot be read "
                                  f"({exc.message.replace(str(root) + '/', '')})")
        return None
    meta = study.archive
    report.facts.update(title=archive_title(study), license=meta.license,
                        authors=[a.full_name for a in meta.authors])
    crate = report.facts.get("crate_root")
    if crate is None:
        return study
    keywords = crate.get("keywords", [])
    expected = {"name": (archive_title(study), crate.get("name")),
                "description": (archive_description(study), crate.get("description")),
                "license": (f"https://spdx.org/licenses/{meta.license}",
                            (crate.get("license") or {}).get("@id")),
                "keywords": (list(meta.keywords), [keywords] if isinstance(keywords, str) else keywords),
                "version": (meta.version or None, crate.get("version")),
                "identifier": (f"https://doi.org/{meta.doi}" if meta.doi else None,
                               crate.get("identifier")),
                "author": ([a.full_name for a in meta.authors], crate.get("author_names", []))}
    for key, (want, found) in expected.items():
        if want != found:
            report.differences.append(f"{CRATE_NAME}: root {key}: {found!r}, but the archived "
                                      f"study file gives {want!r}")
    return study


def _check_citation(archive: zipfile.ZipFile, infos: dict, digests: dict[str, str], study,
                    report: VerifyReport) -> None:
    """CITATION.cff and .zenodo.json regenerated from the study file and the crate's date."""
    names = [n for n in ("CITATION.cff", ".zenodo.json") if n in digests]
    try:
        today = dt.date.fromisoformat(report.facts.get("date", ""))
    except ValueError:
        report.unchecked += [f"{n}: the crate has no valid datePublished to regenerate it with"
                             for n in names]
        return
    expected = citation_files(study, today)
    for name in sorted(set(names) | set(expected)):
        if name not in digests:
            report.differences.append(f"{name}: the study file makes one, the archive has none")
            continue
        archived = _member_bytes(archive, infos, name, report)
        if archived is not None and archived != expected.get(name):
            report.differences.append(f"{name}: differs from the one regenerated from the "
                                      "archived study file")


def _check_readme(archive: zipfile.ZipFile, infos: dict, digests: dict[str, str], study,
                  report: VerifyReport) -> None:
    """README.md regenerated from what the archive holds, the line with its date aside."""
    raw = _member_bytes(archive, infos, "README.md", report)
    if raw is None:
        return
    archived = raw.decode("utf-8", "replace")
    options = report.facts.get("summary_options", {})
    sealed = report.facts.get("sealed_key")
    names = set(digests) - {"README.md", CRATE_NAME, SUMS}
    expected = readme_text(
        study, names, images=any(n.startswith("images/") and not n.startswith("images/manifest/")
                                 for n in names),
        responses=any(n.startswith("responses/") for n in names),
        pseudonymize=bool(options.get("pseudonymized")),
        sealed=(sealed.get("name"), 0, sealed.get("sha256")) if isinstance(sealed, dict) else None)
    made = "Made by glidemed "
    old = [line for line in archived.splitlines() if not line.startswith(made)]
    new = [line for line in expected.splitlines() if not line.startswith(made)]
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            report.differences.append(f"README.md: differs from the regenerated README at line "
                                      f"{i + 1}: archived {a[:80]!r}, regenerated {b[:80]!r}")
            return
    if len(old) != len(new):
        report.differences.append(f"README.md: {len(old)} lines archived, {len(new)} regenerated")


def _check_records(root: Path, digests: dict[str, str], report: VerifyReport) -> None:
    """Images against the generation manifest, survey files against key/build.json."""
    from glidemed.generate.manifest import load_manifest

    records = load_manifest(root / "images") if (root / "images").is_dir() else {}
    images_held = any(n.startswith("images/") and not n.startswith("images/manifest/")
                      for n in digests)
    checked = 0
    for record in records.values():
        name = f"images/{record['file']}"
        if name in digests:
            checked += 1
            if digests[name] != record["sha256"]:
                report.hash_problems.append(f"{name}: SHA-256 differs from the generation manifest")
        elif images_held and name not in report.facts["unreadable"]:
            report.hash_problems.append(f"{name}: in the generation manifest but not in the archive")
    report.facts["images_checked"] = checked
    described = {f"images/{record['file']}" for record in records.values()}
    for name in sorted(digests):
        if (name.startswith("images/") and not name.startswith("images/manifest/")
                and name not in described):
            report.hash_problems.append(f"{name}: not described by a usable record of the "
                                        "generation manifest")
    build_path = root / "key" / "build.json"
    survey = {n: d for n, d in digests.items() if n.startswith("survey/")}
    if not build_path.is_file():
        if survey:
            report.hash_problems.append("key/build.json: missing; the survey files cannot be checked")
        return
    try:
        built = outside_member(build_path.read_bytes(), "build", "key/build.json")["files"]
    except MemberProblem as exc:
        report.hash_problems.append(f"{exc}; not a usable build record")
        return
    built = {f"survey/{rel}": digest for rel, digest in built.items()}
    for name, digest in sorted(survey.items()):
        if name not in built:
            report.hash_problems.append(f"{name}: not made by the build (not in key/build.json)")
        elif built[name] != digest:
            report.hash_problems.append(f"{name}: SHA-256 differs from key/build.json")
    for name in sorted(set(built) - set(survey) - report.facts["unreadable"]):
        report.hash_problems.append(f"{name}: in key/build.json but not in the archive")
    report.facts["survey_checked"] = len(set(built) & set(survey))


def _sealed_key(report: VerifyReport, key: Path | None, root: Path) -> bool:
    """Whether the re-run has a key: in the archive, or the sealed one given (checked)."""
    sealed = report.facts.get("sealed_key")
    if not sealed:
        if key is not None:
            report.hash_problems.append(f"{key}: given with --key, but this archive holds its key")
        return True
    if key is None:
        return False
    if sha256_file(key) != sealed.get("sha256"):
        report.hash_problems.append(f"{key.name}: SHA-256 differs from the sealed key recorded in "
                                    f"the archive ({sealed.get('sha256')}): not the key used")
        return False
    try:
        with zipfile.ZipFile(key) as sealed_zip:
            for info in sealed_zip.infolist():
                if info.filename.startswith("key/") and not info.is_dir():
                    check_bounds(info)
                    extract_member(sealed_zip, info, root)
    except (OSError, zipfile.BadZipFile, MemberProblem) as exc:
        report.hash_problems.append(f"{key.name}: cannot be read ({exc})")
        return False
    report.facts["key_given"] = True
    return True


def _read_sums(text: str) -> dict[str, str]:
    listed = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            listed[name] = digest
    return listed


def _rerun_and_compare(root: Path, report: VerifyReport, renamed: dict[str, str]) -> None:
    from glidemed.analysis.pipeline import run_analysis
    from glidemed.study import load_study

    study_files = sorted((root / "study").glob("*.toml"))
    responses = root / "responses"
    archived = root / "analysis"
    if not study_files or not (archived / "summary.json").is_file():
        report.note = "no study file or analysis summary in the archive: nothing to re-run"
        return
    if not responses.is_dir():
        report.note = "responses were left out of this archive: hashes checked, analysis not re-run"
        return
    study = load_study(study_files[0])
    summary_label = "analysis/summary.json"
    archived_summary = _load_json(archived / "summary.json", summary_label)
    provenance = {"created": archived_summary.get("created", ""),
                  "versions": archived_summary.get("versions", {})}
    recomputed = root / "recomputed"
    run_analysis(study, [responses], recomputed, key=root / "key" / "key.json",
                 provenance=provenance, **rerun_options(archived, {}, summary_label))
    report.reran = True
    counts = _load_json(recomputed / "summary.json", "re-run summary").get("counts", {})
    report.facts["rerun_counts"] = (f"{counts.get('raters', '?')} rater(s), "
                                    f"{counts.get('usable_ratings', '?')} usable of "
                                    f"{counts.get('ratings', '?')} ratings")
    plain = {n.removeprefix("responses/"): v for n, v in renamed.items()}
    for old in sorted(archived.rglob("*")):
        if not old.is_file():
            continue
        name = old.relative_to(archived).as_posix()
        new = recomputed / name
        if not new.is_file():
            report.differences.append(f"analysis/{name}: not produced by the re-run")
        elif name == "report.html":
            old_bytes, new_bytes = old.read_bytes(), new.read_bytes()
            same_text = compare_report(f"analysis/{name}", old_bytes, new_bytes,
                                       report.differences, plain)
            drawn_alike = provenance["versions"].get("matplotlib") == _matplotlib_version()
            if same_text and old_bytes != new_bytes and drawn_alike and not plain:
                report.differences.append(f"analysis/{name}: its figures differ from the "
                                          "re-drawn ones (same matplotlib version)")
        elif old.suffix == ".json":
            try:
                archived_value = outside_loads(old.read_bytes())
            except ValueError as exc:
                report.differences.append(f"analysis/{name}: archived file is not valid JSON ({exc})")
                continue
            compare_json(f"analysis/{name}", archived_value,
                         json.loads(new.read_text(encoding="utf-8")), "", report.differences)
        elif old.suffix == ".csv":
            compare_csv(f"analysis/{name}", old, new, report.differences, plain)
        elif old.read_bytes() != new.read_bytes():
            if old.suffix in DRAWN_SUFFIXES and (plain or provenance["versions"].get(
                    "matplotlib") != _matplotlib_version()):
                report.unchecked.append(f"analysis/{name}: drawn by another matplotlib or with "
                                        "renamed files; cannot be compared byte for byte")
            else:
                report.differences.append(f"analysis/{name}: differs from the regenerated file")


def _matplotlib_version() -> str:
    from importlib import metadata

    return metadata.version("matplotlib")


def _load_json(path: Path, label: str) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GlidemedError(f"{label}: not a readable analysis summary ({exc}); cannot tell "
                            "how to re-run the analysis") from None
    return value if isinstance(value, dict) else {}
