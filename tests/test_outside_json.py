"""Outside JSON (glidemed.outside_json), and text that is not valid Unicode in a response
file, end to end: analyze, serve, archive and simulate reject that one file with a
one-line reason and go on with every other file."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SMALL_STUDY
from response_factory import make_key, make_response, rechain
from server_factory import ServedSurvey
from survey_factory import generated

from glidemed import outside_json
from glidemed.cli import main
from glidemed.errors import AnalysisError, SurveyError
from glidemed.generate.manifest import load_manifest, manifest_dir
from glidemed.modelfiles import HashCache
from glidemed.outside_json import OutsideJSONError
from glidemed.paths import analysis_dir, received_dir, responses_dir
from glidemed.power_mrmc import load_roe_metz
from glidemed.simulate import simulate_responses
from glidemed.simulate.params import load_params
from glidemed.study import load_study
from glidemed.survey.build import _keep_previous_key, build_survey
from glidemed.survey.key import load_key

LONE = ["\ud800", "\udc00", "\udfff"]
STUDY = load_study(Path(__file__).resolve().parent.parent / "surveys" / "demo" / "study.toml")


# --- the decoder itself -----------------------------------------------------------------

@pytest.mark.parametrize("text", [r'"\ud800"', r'{"a": "x\udc00"}', r'{"\ud800": 1}',
                                  r'[1, {"b": ["ok", "\udfff"]}]'])
def test_lone_surrogate_escapes_are_refused_in_keys_and_values(text):
    with pytest.raises(OutsideJSONError, match="not valid Unicode.*lone surrogate"):
        outside_json.loads(text)


def test_a_surrogate_pair_is_one_valid_character():
    assert outside_json.loads(r'"\ud83d\ude00"') == "\U0001f600"


@pytest.mark.parametrize("raw, phrase", [
    (b'{"a": 1, "a": 2}', "appears twice"),
    (b'[NaN]', "not a JSON number"),
    (b'[1e999]', "too large"),
    (b'[' + b'9' * 200 + b']', "too large"),
    (b'\xff\xfe', "not UTF-8"),
    (b'{"a": ', "truncated JSON"),
    (b'{"a" 1}', "invalid JSON"),
    (b'[' * 100_000 + b']' * 100_000, "nested too deeply"),
])
def test_broken_json_is_one_line(raw, phrase):
    with pytest.raises(OutsideJSONError, match=phrase) as info:
        outside_json.loads(raw)
    assert "\n" not in str(info.value)


def test_load_file_names_the_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(r'{"id": "\ud800"}')
    with pytest.raises(OutsideJSONError, match=r"x\.json: text that is not valid Unicode in id \(lone surrogate U\+D800"):
        outside_json.load_file(path)
    with pytest.raises(OutsideJSONError, match="cannot be read"):
        outside_json.load_file(tmp_path / "missing.json")
    assert outside_json.loads(b'\xef\xbb\xbf{"a": [1, 2.5]}') == {"a": [1, 2.5]}


# --- response files end to end -----------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder-built survey of the small study with a profile question, 3 simulated raters."""
    root = tmp_path_factory.mktemp("unicode")
    study_path = root / "study" / "study.toml"
    study_path.parent.mkdir()
    study_path.write_text(SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2)
                          + '\n[[survey.profile]]\nkey = "specialty"\nlabel = "Specialty"\n')
    with pytest.MonkeyPatch.context() as mp:
        study = generated(study_path, root / "build", mp)
        report = build_survey(study, single_file=False, workers=1)
        yield {"study": study, "key": load_key(report.key_path), "path": study_path,
               "build": root / "build"}


def poisoned(site, where: str, text: str) -> dict:
    """A valid response whose ``where`` (rater id, comment, profile answer or key) holds
    ``text``, the chain recomputed so that the file is otherwise valid."""
    data = make_response(site["study"], site["key"], f"poisoned-{where}", seed=5,
                         comment="fine", profile={"specialty": "pathology"})
    if where == "rater":
        data["rater"]["id"] = f"bad{text}"
    elif where == "comment":
        data["panels"][0]["comment"] = f"odd {text}"
        next(e for e in data["events"] if e["field"] == "comment")["value"] = f"odd {text}"
    elif where == "profile":
        data["rater"]["profile"]["specialty"] = text
    elif where == "profile key":
        data["rater"]["profile"][text] = "x"
    elif where == "browser":
        data["browser"] = text
    return rechain(data)


WHERE = ["rater", "comment", "profile", "profile key", "browser"]


def dump(data) -> bytes:
    return json.dumps(data).encode("ascii")  # lone surrogates written as \u escapes


def test_analyze_rejects_each_poisoned_file_and_analyses_the_others(site, tmp_path):
    study, key = site["study"], site["key"]
    folder = tmp_path / "responses"
    simulate_responses(study, key, 3, folder, seed=1)
    for i, where in enumerate(WHERE):
        (folder / f"bad-{i}.json").write_bytes(dump(poisoned(site, where, LONE[i % 3])))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["analyze", str(site["path"]), str(folder), "--bootstrap",
                                       "0", "--out", str(out), "--allow-simulated"],
                                env={"GLIDEMED_BUILD_DIR": str(site["build"])})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False)
    bad = ledger[ledger["file"].str.contains("bad-")].sort_values("file")
    assert list(bad["status"]) == ["rejected"] * len(WHERE)
    assert all("not valid Unicode" in r and "\n" not in r for r in bad["reason"])
    assert (ledger["status"] == "accepted").sum() == 3
    assert (out / "report.html").is_file() and (out / "summary.json").is_file()
    assert pd.read_csv(out / "ratings.csv")["rater"].nunique() == 3


@pytest.fixture(scope="module")
def server(site):
    with ServedSurvey(site["path"], site["build"]) as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_server_refuses_poisoned_responses_and_stores_nothing(site, server, where):
    before = sorted(received_dir(site["study"]).rglob("*"))
    reply = httpx.post(server.url + "api/responses", content=dump(poisoned(site, where, "\ud800")),
                       headers={"content-type": "application/json"}, timeout=30)
    assert reply.status_code == 400, reply.text
    assert "not valid Unicode" in reply.json()["error"]
    assert sorted(received_dir(site["study"]).rglob("*")) == before
    good = make_response(site["study"], site["key"], f"good-{where}", seed=2,
                         profile={"specialty": "x"})
    assert httpx.post(server.url + "api/responses", content=dump(good), timeout=30,
                      headers={"content-type": "application/json"}).status_code == 201


@pytest.mark.slow
def test_server_refuses_a_rater_id_of_only_spaces(site, server):
    before = sorted(received_dir(site["study"]).rglob("*"))
    blank = make_response(site["study"], site["key"], " \t ", seed=3, profile={})
    reply = httpx.post(server.url + "api/responses", content=dump(blank), timeout=30,
                       headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "rater.id: empty" in reply.json()["error"]
    assert sorted(received_dir(site["study"]).rglob("*")) == before


def test_simulate_counts_a_poisoned_file_as_not_its_own(site, tmp_path):
    """A file that claims to be simulated but is not valid Unicode is not simulate's."""
    folder = tmp_path / "sim"
    simulate_responses(site["study"], site["key"], 2, folder, seed=1)
    fake = json.loads((folder / sorted(p.name for p in folder.iterdir())[0]).read_text())
    fake["panels"][0]["comment"] = "\ud800"
    (folder / "response-sim-fake.json").write_bytes(dump(fake))
    result = CliRunner().invoke(main, ["simulate", str(site["path"]), "--raters", "2", "--out",
                                       str(folder)],
                                env={"GLIDEMED_BUILD_DIR": str(site["build"])})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "response-sim-fake.json" in result.output


def test_archive_of_a_study_with_a_poisoned_file(site, tmp_path, monkeypatch):
    """analyze rejects the file, archive keeps its bytes as the ledger says, pseudonymized
    archives leave it out: never a traceback."""
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(site["build"]))
    study = site["study"]
    folder = responses_dir(study)
    shutil.rmtree(folder, ignore_errors=True)  # what the server tests stored
    simulate_responses(study, site["key"], 3, folder, seed=4)
    (folder / "bad.json").write_bytes(dump(poisoned(site, "profile", "\udc00")))
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", str(site["path"]), "--bootstrap", "0",
                                  "--allow-simulated"])
    assert result.exit_code == 0, result.output
    ledger = pd.read_csv(analysis_dir(study) / "ledger.csv", keep_default_na=False)
    assert ledger.loc[ledger["file"].str.endswith("bad.json"), "status"].tolist() == ["rejected"]
    for extra in ([], ["--pseudonymize"]):
        result = runner.invoke(main, ["archive", str(site["path"]), "--no-images",
                                      "--out", str(tmp_path / f"a{len(extra)}.zip"), *extra])
        assert "Traceback" not in result.output
        assert result.exit_code == 0, result.output


# --- the other readers of outside JSON -----------------------------------------------------

def test_a_key_that_is_not_valid_unicode_is_one_line(tmp_path):
    key = make_key(STUDY)
    next(iter(key["panels"].values()))["condition"] = "alpha\ud800"
    path = tmp_path / "key.json"
    path.write_bytes(dump(key))
    with pytest.raises(SurveyError, match=r"key\.json: cannot read the key: text that is not "
                                          r"valid Unicode in panels/.*/condition"):
        load_key(path)
    path.write_bytes(b'{"schema": "glidemed-key/1", "schema": "x"}')
    with pytest.raises(SurveyError, match="cannot read the key: invalid JSON: key 'schema' "
                                          "appears twice"):
        load_key(path)


def test_a_replaced_key_with_a_doubled_build_hash_is_kept(tmp_path):
    """A key whose build_hash is given twice is not read as the current build's."""
    current = "a" * 64
    path = tmp_path / "key.json"
    path.write_text(f'{{"build_hash": "{"b" * 64}", "build_hash": "{current}"}}')
    kept = _keep_previous_key(path, current)
    assert kept is not None and kept.read_bytes() == path.read_bytes()


def test_manifest_lines_that_are_not_valid_unicode_are_not_records(tmp_path):
    good = {"condition": "a", "prompt_id": "p", "index": 0, "file": "a/p/0.png",
            "sha256": "0" * 64, "created": "2026-01-01T00:00:00Z"}
    folder = manifest_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "m.jsonl").write_bytes(dump(good) + b"\n" + dump(
        {**good, "index": 1, "file": "a/p/1\ud800.png"}) + b"\n"
        + dump({**good, "index": 2}).replace(b"a/p", b"a/\xff") + b"\n")
    assert list(load_manifest(tmp_path).values()) == [good]


def test_a_hash_cache_that_is_not_valid_unicode_is_rebuilt(tmp_path):
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"/x\ud800": {"size": 1, "mtime_ns": 1, "sha256": "0"}}))
    assert HashCache(cache).entries == {}


@pytest.mark.parametrize("reader, text", [
    (load_roe_metz, '{"var_r": 0.1, "\\ud800": 1}'),
    (load_params, '{"dropout": 0.1, "\\ud800": 1}'),
    (load_roe_metz, '{"var_r": 0.1, "var_r": 0.2}'),
    (load_params, '{"dropout": NaN}'),
])
def test_settings_files_that_are_not_usable_json_are_one_line(tmp_path, reader, text):
    path = tmp_path / "settings.json"
    path.write_text(text)
    with pytest.raises(AnalysisError) as info:
        reader(path)
    message = str(info.value)
    assert "settings.json" in message and "\n" not in message
    assert any(p in message for p in ("not valid Unicode", "appears twice", "not a JSON number"))
    message.encode("utf-8")  # printable
