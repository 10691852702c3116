"""Archive and verify: a whole small study goes in; hashes and re-run numbers are checked."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from glidemed import paths
from glidemed.analysis.pipeline import run_analysis
from glidemed.archive import SUMS, archive_study, verify_archive
from glidemed.archive.compare import compare_csv
from glidemed.archive import pack
from glidemed.archive.crate import CRATE_NAME
from glidemed.cli import main
from glidemed.errors import GlidemedError
from glidemed.generate.runner import run_generation
from glidemed.simulate import simulate_responses
from glidemed.study import load_study
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key


@pytest.fixture(scope="module")
def analysed_study(tmp_path_factory):
    """A small study taken through generate, build, simulated raters and analyze."""
    root = tmp_path_factory.mktemp("archive")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(root / "build"))
    study_file = root / "study" / "study.toml"
    study_file.parent.mkdir()
    from conftest import SMALL_STUDY

    study_file.write_text(SMALL_STUDY.format(images_per_prompt=4, images_per_panel=2))
    study = load_study(study_file)
    run_generation(study, paths.images_dir(study), progress=False)
    build_survey(study)
    key = load_key(paths.key_dir(study) / "key.json")
    files = simulate_responses(study, key, 3, paths.responses_dir(study), seed=5)
    raters = [f.name for f in files]
    run_analysis(study, n_boot=20, seed=1)
    yield study, root, raters
    monkeypatch.undo()


def rewrite(zip_path: Path, target: Path, change: dict[str, bytes], update_sums: bool) -> Path:
    """Copy an archive with some members replaced, optionally re-hashing them (in the
    RO-Crate too, as a careful forger would)."""
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(target, "w") as out:
        members = {name: source.read(name) for name in source.namelist()}
        members.update(change)
        if update_sums and CRATE_NAME in members and CRATE_NAME not in change:
            crate = json.loads(members[CRATE_NAME])
            for entity in crate["@graph"]:
                if entity["@id"] in change:
                    data = members[entity["@id"]]
                    entity.update(sha256=hashlib.sha256(data).hexdigest(), contentSize=str(len(data)))
            members[CRATE_NAME] = json.dumps(crate).encode()
        if update_sums:
            lines = [f"{hashlib.sha256(data).hexdigest()}  {name}"
                     for name, data in sorted(members.items()) if name != SUMS]
            members[SUMS] = ("\n".join(lines) + "\n").encode()
        for name, data in members.items():
            out.writestr(name, data)
    return target


def reanalysed_archive(study, tmp_path: Path, zip_path: Path, responses=None, **options) -> Path:
    """Analyse the study's responses as they are now (into a folder of its own) and archive
    that analysis."""
    out = tmp_path / "analysis"
    run_analysis(study, responses, out_dir=out, n_boot=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pack, "analysis_dir", lambda s: out)
        return archive_study(study, zip_path, **options)


def test_archive_holds_every_stage_and_verifies(analysed_study, tmp_path):
    study, root, _ = analysed_study
    zip_path = archive_study(study, tmp_path / "a.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert "study/study.toml" in names and "README.md" in names and SUMS in names
    assert "survey/index.html" in names and "key/key.json" in names
    assert any(n.startswith("images/manifest/") for n in names)
    assert sum(n.endswith(".png") and n.startswith("images/") for n in names) == 64
    assert sum(n.startswith("responses/") for n in names) == 3
    assert {"analysis/ledger.csv", "analysis/summary.json", "analysis/report.html"} <= names
    report = verify_archive(zip_path)
    assert report.ok, report.hash_problems + report.differences
    assert report.reran and report.checked_files == len(names) - 1


def test_verify_names_a_changed_file_and_a_changed_number(analysed_study, tmp_path):
    study, _, _ = analysed_study
    zip_path = archive_study(study, tmp_path / "a.zip")
    with zipfile.ZipFile(zip_path) as archive:
        summary = archive.read("analysis/summary.json").decode()
    broken = rewrite(zip_path, tmp_path / "hash.zip", {"key/key.json": b"{}"}, update_sums=False)
    report = verify_archive(broken, rerun=False)
    assert report.hash_problems == ["key/key.json: SHA-256 does not match SHA256SUMS",
                                    "key/key.json: SHA-256 does not match ro-crate-metadata.json",
                                    f"key/key.json: size 2 bytes, ro-crate-metadata.json says "
                                    f"{len(zipfile.ZipFile(zip_path).read('key/key.json'))}"]
    edited = summary.replace('"ratings": ', '"ratings": 1', 1)
    assert edited != summary
    forged = rewrite(zip_path, tmp_path / "num.zip",
                     {"analysis/summary.json": edited.encode()}, update_sums=True)
    report = verify_archive(forged)
    assert not report.hash_problems
    assert any(d.startswith("analysis/summary.json: counts.ratings") for d in report.differences)


def test_verify_names_an_unreadable_summary(analysed_study, tmp_path):
    study, _, _ = analysed_study
    zip_path = archive_study(study, tmp_path / "a.zip", images=False)
    broken = rewrite(zip_path, tmp_path / "broken.zip", {"analysis/summary.json": b"{"},
                     update_sums=True)
    report = verify_archive(broken)
    assert report.differences == ["analysis/summary.json: truncated JSON: Expecting property "
                                  "name enclosed in double quotes at line 1, column 2"]
    assert report.note == "analysis/summary.json cannot be used: analysis not re-run"
    assert not report.reran and not report.ok and report.hash_problems == []


def test_compare_csv_notices_a_missing_column(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x\n1\n")
    found: list[str] = []
    compare_csv("t.csv", tmp_path / "a.csv", tmp_path / "b.csv", found)
    assert found == ["t.csv: row 0: 2 columns archived, 1 re-run",
                     "t.csv: row 1: 2 columns archived, 1 re-run"]


def test_pseudonymized_archive_has_no_rater_id_and_still_verifies(analysed_study, tmp_path):
    study, _, rater_files = analysed_study
    raters = [json.loads((paths.responses_dir(study) / f).read_text())["rater"]["id"]
              for f in rater_files]
    zip_path = archive_study(study, tmp_path / "p.zip", pseudonymize=True, images=False)
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            for rater in raters:
                assert rater.encode() not in data and rater not in name, (rater, name)
        names = archive.namelist()
    assert not any(n.startswith("images/") and n.endswith(".png") for n in names)
    assert any(n.startswith("responses/R01-") for n in names)
    report = verify_archive(zip_path)
    assert report.ok, report.hash_problems + report.differences


def test_pseudonymized_archive_keeps_every_response_file(analysed_study, tmp_path):
    """A copy in a folder named after its rater: both files archived, no name leaks the id."""
    study, _, rater_files = analysed_study
    responses = paths.responses_dir(study)
    rater = json.loads((responses / rater_files[0]).read_text())["rater"]["id"]
    copy = responses / rater / "again.json"
    copy.parent.mkdir()
    shutil.copy(responses / rater_files[0], copy)
    try:
        zip_path = reanalysed_archive(study, tmp_path, tmp_path / "p.zip", pseudonymize=True,
                                      images=False)
    finally:
        shutil.rmtree(copy.parent)
    with zipfile.ZipFile(zip_path) as archive:
        names = [n for n in archive.namelist() if n.startswith("responses/")]
    assert len(names) == len(rater_files) + 1 and not any(rater in n for n in names)
    report = verify_archive(zip_path)
    assert report.ok, report.hash_problems + report.differences


def test_pseudonymized_archive_without_responses(analysed_study, tmp_path):
    study, _, rater_files = analysed_study
    raters = [json.loads((paths.responses_dir(study) / f).read_text())["rater"]["id"]
              for f in rater_files]
    zip_path = archive_study(study, tmp_path / "p.zip", pseudonymize=True, responses=False,
                             images=False)
    with zipfile.ZipFile(zip_path) as archive:
        assert not any(n.startswith("responses/") for n in archive.namelist())
        ledger = archive.read("analysis/ledger.csv").decode()
    assert "R01" in ledger and not any(rater in ledger for rater in raters)
    report = verify_archive(zip_path)
    assert report.ok and "responses were left out" in report.note


def test_hidden_response_files_are_archived(analysed_study, tmp_path):
    """The analysis reads every returned file, hidden ones too (e.g. macOS '._' files);
    the archive must hold them or verify cannot reproduce the ledger."""
    study, _, _ = analysed_study
    hidden = paths.responses_dir(study) / "._r.json"
    hidden.write_bytes(b"\x00\x05\x16\x07")
    try:
        zip_path = reanalysed_archive(study, tmp_path, tmp_path / "h.zip", images=False)
    finally:
        hidden.unlink()
    with zipfile.ZipFile(zip_path) as archive:
        assert "responses/._r.json" in archive.namelist()
    assert verify_archive(zip_path).ok


def test_server_log_is_not_archived(analysed_study):
    """glidemed serve's log of refusals holds client addresses and is no result."""
    study, _, _ = analysed_study
    log = paths.responses_dir(study) / paths.SERVER_LOG
    log.write_text("2026-01-01T00:00:00Z 403 203.0.113.9 POST '/api/responses': refused\n")
    try:
        files, _ = pack.analysed_responses(study)  # the log is not "added since the analysis"
    finally:
        log.unlink()
    assert "responses/server.log" not in files and any(n.startswith("responses/") for n in files)


def test_cli_archive_and_verify(analysed_study, tmp_path):
    study, _, _ = analysed_study
    runner = CliRunner()
    out = tmp_path / "cli.zip"
    result = runner.invoke(main, ["archive", str(study.path), "--out", str(out), "--no-responses"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["verify", str(out)])
    assert result.exit_code == 0, result.output
    assert "responses were left out" in result.output
    bad = rewrite(out, tmp_path / "bad.zip", {"study/study.toml": b"x"}, update_sums=False)
    result = runner.invoke(main, ["verify", str(bad)])
    assert result.exit_code == 1 and "study/study.toml: SHA-256 does not match" in result.output


def test_pseudonymized_archive_refuses_flagged_files(analysed_study, tmp_path):
    """A flagged file's chain binds its rater id: pseudonymised, its flag would be lost."""
    study, _, rater_files = analysed_study
    responses = paths.responses_dir(study)
    edited = json.loads((responses / rater_files[0]).read_text())
    edited["rater"]["id"] = "another-rater"  # a forged rater: the chain no longer verifies
    copy = responses / "edited" / "edited.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps(edited))
    try:
        with pytest.raises(GlidemedError, match=r"--pseudonymize: 1 response file\(s\) are "
                                                r"flagged.*edited\.json"):
            reanalysed_archive(study, tmp_path, tmp_path / "p.zip", pseudonymize=True,
                               images=False)
    finally:
        shutil.rmtree(copy.parent)
