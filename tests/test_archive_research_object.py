"""The archive as a research object: ledger-matched responses, RO-Crate 1.2 (checked with
roc-validator), CITATION.cff (checked with cffconvert), .zenodo.json, the sealed key, and a
verify that names every corrupt, doctored or unlisted member without a traceback."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from glidemed import paths
from glidemed.analysis.pipeline import run_analysis
from glidemed.archive import archive_study, sealed_key_path, verify_archive
from glidemed.archive.crate import CRATE_NAME
from glidemed.archive.members import MAX_RATIO
from glidemed.cli import main
from glidemed.errors import GlidemedError, StudyError
from glidemed.generate.runner import run_generation
from glidemed.simulate import simulate_responses
from glidemed.study import load_study, parse_study
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key

ARCHIVE_TABLE = """
[archive]
description = "A small rating study, archived for a test."
license = "CC-BY-4.0"
keywords = ["histopathology", "text-to-image"]
version = "1.0"

[[archive.authors]]
given_names = "Josiah"
family_names = "Carberry"
orcid = "0000-0002-1825-0097"
affiliation = "Brown University"

[[archive.authors]]
given_names = "Ada"
family_names = "Lovelace"
"""
# Checks of roc-validator that fetch the JSON-LD context over the network (tests never do);
# every other check of the profile runs.
NETWORK_CHECKS = ["ro-crate-1.2_4.1", "ro-crate-1.2_4.2"]
pytestmark = pytest.mark.slow  # each archive re-runs an analysis


@pytest.fixture(scope="module")
def study_elsewhere(tmp_path_factory):
    """A small study whose responses were simulated into a folder of their own and
    analysed there (as a user analyses ~/Downloads/returned/)."""
    from conftest import SMALL_STUDY

    root = tmp_path_factory.mktemp("ro")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(root / "build"))
    study_file = root / "study" / "study.toml"
    study_file.parent.mkdir()
    study_file.write_text(SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2)
                          + ARCHIVE_TABLE)
    study = load_study(study_file)
    run_generation(study, paths.images_dir(study), progress=False)
    build_survey(study)
    returned = root / "returned"
    simulate_responses(study, load_key(paths.key_dir(study) / "key.json"), 3, returned, seed=3)
    run_analysis(study, [returned], n_boot=0, seed=1)
    yield study, returned
    monkeypatch.undo()


@pytest.fixture(scope="module")
def archived(study_elsewhere, tmp_path_factory):
    study, _ = study_elsewhere
    return archive_study(study, tmp_path_factory.mktemp("zip") / "a.zip")


def members(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def replaced(zip_path: Path, target: Path, change: dict[str, bytes]) -> Path:
    """A copy with members replaced and every record re-hashed (SHA256SUMS, RO-Crate)."""
    files = members(zip_path)
    files.update(change)
    crate = json.loads(files[CRATE_NAME])
    for entity in crate["@graph"]:
        if entity["@id"] in change:
            entity.update(sha256=hashlib.sha256(files[entity["@id"]]).hexdigest(),
                          contentSize=str(len(files[entity["@id"]])))
    files[CRATE_NAME] = json.dumps(crate).encode()
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                                  for n, d in sorted(files.items()) if n != "SHA256SUMS").encode()
    with zipfile.ZipFile(target, "w") as out:
        for name, data in files.items():
            out.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return target


# --- 1. the responses of the analysis --------------------------------------------------

def test_archive_takes_the_responses_the_analysis_read(study_elsewhere, archived):
    study, returned = study_elsewhere
    assert not paths.responses_dir(study).exists()  # the old archive failed: "missing responses"
    files = members(archived)
    held = {n.removeprefix("responses/"): hashlib.sha256(d).hexdigest()
            for n, d in files.items() if n.startswith("responses/")}
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in returned.iterdir()}
    assert held == expected
    report = verify_archive(archived)
    assert report.ok and report.reran, report.hash_problems + report.differences


def test_archive_refuses_changed_added_and_missing_responses(study_elsewhere, tmp_path):
    study, returned = study_elsewhere
    moved = tmp_path / "moved"
    shutil.copytree(returned, moved)
    first, second, *_ = sorted(moved.iterdir())
    first.write_bytes(first.read_bytes() + b"\n")
    second.unlink()
    (moved / "late.json").write_text("{}")
    with pytest.raises(GlidemedError) as caught:
        archive_study(study, tmp_path / "a.zip", responses_from=moved, images=False)
    message = caught.value.message
    assert f"{first.name}: changed since the analysis" in message
    assert f"{second.name}: read by the analysis" in message and "not found" in message
    # an explicit folder may hold more files; only the analysed ones are taken
    assert "late.json" not in message
    extra = returned / "late.json"
    extra.write_text("{}")
    try:
        with pytest.raises(GlidemedError, match="late.json: added since the analysis"):
            archive_study(study, tmp_path / "b.zip", images=False)
    finally:
        extra.unlink()


def test_responses_from_finds_moved_files(study_elsewhere, tmp_path):
    study, returned = study_elsewhere
    moved = tmp_path / "elsewhere" / "nested"
    shutil.copytree(returned, moved)
    zip_path = archive_study(study, tmp_path / "a.zip", responses_from=moved.parent, images=False)
    names = sorted(n for n in members(zip_path) if n.startswith("responses/"))
    assert names == sorted(f"responses/{p.name}" for p in returned.iterdir())


def test_files_named_by_path_get_stable_names_and_verify(study_elsewhere, tmp_path):
    """Files given one by one are named by their full path in the ledger; the archive
    names them NNN-<name>, records the ledger's name, and verify maps it back."""
    study, returned = study_elsewhere
    files = sorted(returned.iterdir())
    out = tmp_path / "analysis"
    run_analysis(study, files, out_dir=out, n_boot=0, seed=1)
    with pytest.MonkeyPatch.context() as mp:
        from glidemed.archive import pack

        mp.setattr(pack, "analysis_dir", lambda s: out)
        zip_path = archive_study(study, tmp_path / "a.zip", images=False)
    names = sorted(n for n in members(zip_path) if n.startswith("responses/"))
    assert names == [f"responses/{i}-{p.name}" for i, p in enumerate(files, start=1)]
    crate = json.loads(members(zip_path)[CRATE_NAME])
    alternate = {e["@id"]: e.get("alternateName") for e in crate["@graph"]}
    assert [alternate[n] for n in names] == [str(p) for p in files]
    report = verify_archive(zip_path)
    assert report.ok, report.hash_problems + report.differences


# --- 2. RO-Crate 1.2 ---------------------------------------------------------------------

def test_crate_passes_roc_validator_at_ro_crate_1_2(archived, tmp_path):
    from rocrate_validator import models, services

    with zipfile.ZipFile(archived) as archive:
        archive.extractall(tmp_path / "crate")
    settings = services.ValidationSettings(
        rocrate_uri=str(tmp_path / "crate"), profile_identifier="ro-crate-1.2",
        requirement_severity=models.Severity.REQUIRED, offline=True, skip_checks=NETWORK_CHECKS)
    result = services.validate(settings)
    issues = [f"{i.check.identifier}: {i.message}" for i in result.get_issues()]
    assert result.passed() and not issues, issues


def test_crate_describes_files_stages_authors_and_key(study_elsewhere, archived):
    study, _ = study_elsewhere
    files = members(archived)
    crate = json.loads(files[CRATE_NAME])
    assert crate["@context"] == "https://w3id.org/ro/crate/1.2/context"
    graph = {e["@id"]: e for e in crate["@graph"]}
    root = graph["./"]
    assert root["name"] == study.title and root["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert graph["https://orcid.org/0000-0002-1825-0097"]["affiliation"]["@id"] in graph
    assert [graph[a["@id"]]["name"] for a in root["author"]] == ["Josiah Carberry", "Ada Lovelace"]
    assert root["conformsTo"] == {"@id": "https://w3id.org/ro/wfrun/process/0.5"}
    described = {i for i, e in graph.items() if e.get("@type") == "File"}
    assert described == set(files) - {CRATE_NAME, "SHA256SUMS"}  # SHA256SUMS hashes the crate
    for name in described:
        assert graph[name]["sha256"] == hashlib.sha256(files[name]).hexdigest()
        assert graph[name]["contentSize"] == str(len(files[name]))
        assert graph[name]["encodingFormat"]
    assert graph["study/study.toml"]["encodingFormat"] == "application/toml"
    assert "unblinding key" in graph["key/key.json"]["description"]
    actions = {a["@id"]: graph[a["@id"]] for a in root["mentions"]}
    assert set(actions) == {"#generate", "#build", "#analyze"}
    ids = lambda value: {v["@id"] for v in (value if isinstance(value, list) else [value])}
    assert ids(actions["#generate"]["result"]) == {n for n in described if n.startswith("images/")}
    assert ids(actions["#build"]["result"]) == {n for n in described if n.startswith(("survey/", "key/"))}
    assert {"key/key.json", "study/study.toml"} <= ids(actions["#analyze"]["object"])
    assert ids(actions["#analyze"]["result"]) == {n for n in described if n.startswith("analysis/")}
    generators = [graph[i] for i in ids(actions["#generate"]["instrument"])]
    assert {g["@type"] for g in generators} == {"SoftwareApplication"}
    assert any("placeholder" in g["name"] for g in generators)
    analysis = graph[actions["#analyze"]["instrument"]["@id"]]
    libraries = {graph[s["@id"]]["name"]: graph[s["@id"]]["softwareVersion"]
                 for s in analysis["softwareRequirements"]}
    summary = json.loads(files["analysis/summary.json"])
    assert libraries == {k: v for k, v in summary["versions"].items() if k != "glidemed"}
    assert all(a["endTime"] for a in actions.values())


def test_verify_finds_a_file_the_crate_does_not_describe(archived, tmp_path):
    files = members(archived)
    crate = json.loads(files[CRATE_NAME])
    crate["@graph"] = [e for e in crate["@graph"] if e["@id"] != "analysis/tests.csv"]
    forged = replaced(archived, tmp_path / "f.zip", {CRATE_NAME: json.dumps(crate).encode()})
    report = verify_archive(forged, rerun=False)
    assert report.hash_problems == [f"analysis/tests.csv: not described in {CRATE_NAME}"]


# --- 3. citation, Zenodo -----------------------------------------------------------------

def test_citation_cff_is_valid_for_cffconvert(archived):
    from cffconvert import Citation

    files = members(archived)
    text = files["CITATION.cff"].decode()
    citation = Citation(text)
    citation.validate()  # raises on any schema error
    assert citation.cffobj["authors"][0] == {
        "family-names": "Carberry", "given-names": "Josiah",
        "orcid": "https://orcid.org/0000-0002-1825-0097", "affiliation": "Brown University"}
    assert citation.cffobj["type"] == "dataset" and citation.cffobj["license"] == "CC-BY-4.0"
    zenodo = json.loads(files[".zenodo.json"])
    assert zenodo["creators"][0] == {"name": "Carberry, Josiah", "affiliation": "Brown University",
                                     "orcid": "0000-0002-1825-0097"}
    assert zenodo["upload_type"] == "dataset" and zenodo["keywords"] == citation.cffobj["keywords"]
    assert zenodo["title"] == citation.cffobj["title"]


def test_archive_table_is_validated(tmp_path):
    from conftest import SMALL_STUDY

    text = SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2) + """
[archive]
license = "CC BY"
keywords = "one"
[[archive.authors]]
family_names = "Carberry"
orcid = "0000-0002-1825-0098"
[[archive.authors]]
name = "Nobody"
"""
    with pytest.raises(StudyError) as caught:
        parse_study(text, tmp_path / "study.toml")
    message = str(caught.value)
    for expected in ("archive.license: expected an SPDX identifier",
                     "archive.keywords: expected a list of a string",
                     "archive.authors[0].orcid: '0000-0002-1825-0098' fails the ORCID check digit",
                     "archive.authors[1].name: unknown key",
                     "archive.authors[1].family_names: missing"):
        assert expected in message, message


# --- 4. the sealed key -------------------------------------------------------------------

def test_sealed_key_is_apart_and_checked(study_elsewhere, tmp_path):
    study, _ = study_elsewhere
    zip_path = archive_study(study, tmp_path / "s.zip", seal_key=True, images=False)
    key_zip = sealed_key_path(zip_path)
    public = members(zip_path)
    assert "key/key.json" not in public and "key/build.json" in public
    assert "key/key.json" in members(key_zip)
    crate = {e["@id"]: e for e in json.loads(public[CRATE_NAME])["@graph"]}
    assert crate["#sealed-unblinding-key"]["sha256"] == hashlib.sha256(key_zip.read_bytes()).hexdigest()
    report = verify_archive(zip_path)
    assert report.ok and not report.reran and "key is sealed" in report.note
    report = verify_archive(zip_path, key=key_zip)
    assert report.ok and report.reran, report.hash_problems + report.differences
    other = tmp_path / "other-key.zip"
    with zipfile.ZipFile(other, "w") as out:
        out.writestr("key/key.json", b"{}")
    report = verify_archive(zip_path, key=other)
    assert not report.ok and "SHA-256 differs from the sealed key" in report.hash_problems[0]


# --- 5. verify: every record, within bounds ----------------------------------------------

def flip_byte(zip_path: Path, target: Path, member: str) -> Path:
    """A copy with one byte of a member's data flipped."""
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as archive:
        info = archive.getinfo(member)
    name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.compress_size // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("member", ["analysis/ledger.csv", "images/alpha/histo.lungs.short/00.png"])
@pytest.mark.parametrize("hashes_only", [False, True])
def test_a_flipped_byte_is_a_named_finding(archived, tmp_path, member, hashes_only):
    corrupt = flip_byte(archived, tmp_path / "c.zip", member)
    report = verify_archive(corrupt, rerun=not hashes_only)
    assert not report.ok
    assert any(p.startswith(f"{member}: ") for p in report.hash_problems), report.hash_problems
    result = CliRunner().invoke(main, ["verify", str(corrupt), "--hashes-only"])
    assert result.exit_code == 1 and result.exception.__class__.__name__ == "SystemExit"
    assert member in result.output and "Traceback" not in result.output


def test_doctored_image_survey_and_report_are_found(archived, tmp_path):
    files = members(archived)
    image = "images/alpha/histo.lungs.short/00.png"
    report_html = files["analysis/report.html"].decode()
    needle = "Analysis report of study"
    assert needle in report_html
    forged = replaced(archived, tmp_path / "d.zip", {
        image: files["images/alpha/histo.lungs.short/01.png"],
        "survey/index.html": files["survey/index.html"] + b"<!-- -->",
        "analysis/report.html": report_html.replace(needle, "Report of study").encode()})
    report = verify_archive(forged)
    assert f"{image}: SHA-256 differs from the generation manifest" in report.hash_problems
    assert "survey/index.html: SHA-256 differs from key/build.json" in report.hash_problems
    assert any(d.startswith("analysis/report.html: differs from the regenerated report")
               for d in report.differences), report.differences


def test_unlisted_and_escaping_members_are_never_extracted(archived, tmp_path):
    forged = tmp_path / "u.zip"
    shutil.copy(archived, forged)
    with zipfile.ZipFile(forged, "a") as out:
        out.writestr("analysis/extra.csv", b"a,b\n")
        out.writestr("../../escape.txt", b"x")
    report = verify_archive(forged)
    assert "analysis/extra.csv: not listed in SHA256SUMS; not read" in report.hash_problems
    assert "../../escape.txt: not listed in SHA256SUMS; not read" in report.hash_problems
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_a_zip_bomb_member_is_refused_unread(archived, tmp_path):
    big = b"\0" * (8 << 20)
    forged = replaced(archived, tmp_path / "b.zip", {"analysis/huge.csv": big})
    with zipfile.ZipFile(forged) as archive:
        info = archive.getinfo("analysis/huge.csv")
    assert info.file_size > MAX_RATIO * info.compress_size
    report = verify_archive(forged)
    assert any(p.startswith("analysis/huge.csv: compressed") and "not read" in p
               for p in report.hash_problems), report.hash_problems


def test_rerun_errors_name_the_member_not_a_temporary_path(archived, tmp_path):
    forged = replaced(archived, tmp_path / "k.zip", {"key/key.json": b"[1]"})
    report = verify_archive(forged)
    failed = [d for d in report.differences if d.startswith("re-run failed")]
    assert failed and "key/key.json" in failed[0], report.differences
    assert "/tmp" not in failed[0] and str(Path(tmp_path)) not in failed[0]


def test_pseudonymize_uses_the_ingest_path(study_elsewhere, tmp_path):
    """A UTF-16 copy of a response is rejected by the analysis; the pseudonymised archive
    must not turn it into a readable file and change the numbers."""
    study, returned = study_elsewhere
    folder = tmp_path / "returned"
    shutil.copytree(returned, folder)
    source = sorted(folder.iterdir())[0]
    (folder / "utf16.json").write_bytes(source.read_text().encode("utf-16"))
    out = tmp_path / "analysis"
    run_analysis(study, [folder], out_dir=out, n_boot=0, seed=1)
    with pytest.MonkeyPatch.context() as mp:
        from glidemed.archive import pack

        mp.setattr(pack, "analysis_dir", lambda s: out)
        zip_path = archive_study(study, tmp_path / "p.zip", pseudonymize=True, images=False)
    files = members(zip_path)
    assert json.loads(files["analysis/summary.json"])["counts"] == json.loads(
        (out / "summary.json").read_text())["counts"]
    assert any(n.startswith("responses/unreadable") for n in files)
    assert verify_archive(zip_path).ok


def test_cli_prints_the_reviewer_summary(archived):
    result = CliRunner().invoke(main, ["verify", str(archived)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) <= 24
    assert "Authors: Josiah Carberry, Ada Lovelace" in lines
    assert any(line.startswith("Re-run analysis: 3 rater(s)") for line in lines)
    assert "Result: VERIFIED" in lines


# --- doctored members whose records were re-sealed --------------------------------------

def _analysis_member(files: dict[str, bytes], suffix: str) -> str:
    """The first analysis member with this suffix (the test fails if there is none)."""
    return sorted(n for n in files if n.startswith("analysis/") and n.endswith(suffix))[0]


def test_doctored_tables_figures_and_readme_are_differences(archived, tmp_path):
    files = members(archived)
    table = next(n for n in sorted(files) if n.endswith(".tex") and re.search(rb"\d", files[n]))
    figure = _analysis_member(files, ".svg")
    forged = replaced(archived, tmp_path / "t.zip", {
        table: re.sub(rb"\d", lambda m: b"1" if m[0] != b"1" else b"2", files[table], count=1),
        figure: files[figure] + b"<!-- -->",
        "README.md": files["README.md"].replace(b"# Archive of the study", b"# Archive of a study")})
    report = verify_archive(forged)
    assert not report.ok
    for name in (table, figure, "README.md"):
        assert any(d.startswith(f"{name}: ") for d in report.differences), (name, report.differences)


def test_a_forged_crate_title_is_a_difference_and_not_shown(archived, tmp_path):
    crate = json.loads(members(archived)[CRATE_NAME])
    root = next(e for e in crate["@graph"] if e["@id"] == "./")
    true_title = root["name"]
    root["name"] = "A landmark study"
    forged = replaced(archived, tmp_path / "n.zip", {CRATE_NAME: json.dumps(crate).encode()})
    result = CliRunner().invoke(main, ["verify", str(forged)])
    assert result.exit_code == 1, result.output
    assert f"Study: {true_title}" in result.output.splitlines()
    assert "A landmark study" not in result.output.split("Study:")[1].splitlines()[0]
    assert f"{CRATE_NAME}: root name: 'A landmark study'" in result.output


@pytest.mark.parametrize("entity, field, value", [
    ("./", "license", 7),
    ("./", "author", [{"@id": ["#author-1"]}]),
    ("responses/", "alternateName", ["a", "b"]),
])
def test_crate_fields_of_a_wrong_type_are_findings(archived, tmp_path, entity, field, value):
    crate = json.loads(members(archived)[CRATE_NAME])
    target = next(e for e in crate["@graph"] if e["@id"].startswith(entity))
    target[field] = value
    forged = replaced(archived, tmp_path / "f.zip", {CRATE_NAME: json.dumps(crate).encode()})
    result = CliRunner().invoke(main, ["verify", str(forged)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{CRATE_NAME}: " in result.output and field in result.output


@pytest.mark.parametrize("option, value", [("bootstrap", "abc"), ("seed", -1),
                                           ("bootstrap", 100_000_000)])
def test_summary_options_out_of_bounds_are_findings(archived, tmp_path, option, value):
    summary = json.loads(members(archived)["analysis/summary.json"])
    summary["options"][option] = value
    forged = replaced(archived, tmp_path / "s.zip",
                      {"analysis/summary.json": json.dumps(summary).encode()})
    result = CliRunner().invoke(main, ["verify", str(forged)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"analysis/summary.json: options/{option}" in result.output


def test_a_figure_drawn_by_another_matplotlib_is_listed_as_not_checked(archived, tmp_path,
                                                                       monkeypatch):
    files = members(archived)
    figure = _analysis_member(files, ".svg")
    forged = replaced(archived, tmp_path / "m.zip", {figure: files[figure] + b"<!-- -->"})
    monkeypatch.setattr("glidemed.archive.verify._matplotlib_version", lambda: "0.1")
    result = CliRunner().invoke(main, ["verify", str(forged)])
    lines = result.output.splitlines()
    assert any(line.startswith(f"Not checked: {figure}: drawn by another matplotlib")
               for line in lines), result.output
    assert "Result: VERIFIED except 1 member(s) not checked, listed above" in lines


@pytest.mark.parametrize("member, change", [
    ("key/build.json", lambda build: {**build, "files": {"index.html": 5}}),
    ("key/build.json", lambda build: {**build, "files": ["index.html"]}),
])
def test_a_build_record_of_a_wrong_shape_is_a_finding(archived, tmp_path, member, change):
    build = json.loads(members(archived)[member])
    forged = replaced(archived, tmp_path / "b.zip", {member: json.dumps(change(build)).encode()})
    result = CliRunner().invoke(main, ["verify", str(forged), "--hashes-only"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{member}: files" in result.output


def test_a_manifest_record_without_its_file_is_a_finding(archived, tmp_path):
    files = members(archived)
    manifest = next(n for n in sorted(files) if n.startswith("images/manifest/"))
    lines = files[manifest].decode().splitlines()
    record = json.loads(lines[0])
    image = f"images/{record.pop('file')}"
    lines[0] = json.dumps(record)
    forged = replaced(archived, tmp_path / "r.zip", {manifest: ("\n".join(lines) + "\n").encode()})
    result = CliRunner().invoke(main, ["verify", str(forged), "--hashes-only"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{image}: not described by a usable record of the generation manifest" in result.output


def test_a_doctored_citation_is_a_difference(archived, tmp_path):
    files = members(archived)
    forged = replaced(archived, tmp_path / "c.zip", {
        "CITATION.cff": files["CITATION.cff"].replace(b"Lovelace", b"Babbage")})
    report = verify_archive(forged, rerun=False)
    assert any(d.startswith("CITATION.cff: differs") for d in report.differences), report.differences
