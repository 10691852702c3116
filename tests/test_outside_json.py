"""glidemed.outside_json, and the class of input it guards against through every reader of
outside JSON: text that is not valid Unicode (a lone surrogate written as an escape)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT
from response_factory import make_key, make_response, rechain, write_json

from glidemed import outside_json
from glidemed.analysis.ingest import ingest_responses
from glidemed.analysis.pipeline import run_analysis
from glidemed.study import load_study
from tests.test_server import post, response, server, site  # noqa: F401  (fixtures)

STUDY = load_study(ROOT / "surveys" / "demo" / "study.toml")
KEY = make_key(STUDY)
LONE = "\ud800"


def escaped(value) -> bytes:
    """JSON as a hostile writer sends it: every non-ASCII character as an escape."""
    return json.dumps(value, ensure_ascii=True).encode()


@pytest.mark.parametrize("text, where", [
    ('{"a": "x\\ud800y"}', "in a"),
    ('{"a": ["ok", {"b": "\\udc00"}]}', "in a/1/b"),
    ('{"\\ud800": 1}', "in '\\ud800'"),
    ('"\\udfff"', "(lone surrogate U+DFFF"),
])
def test_lone_surrogates_are_refused_wherever_they_are(text, where):
    with pytest.raises(outside_json.OutsideJSONError, match="not valid Unicode") as info:
        outside_json.loads(text)
    assert where in str(info.value)
    str(info.value).encode("utf-8")  # the reason itself can be written anywhere


def test_valid_text_passes_and_a_surrogate_pair_is_one_character():
    assert outside_json.loads('{"a": "\\ud83d\\ude42 é"}') == {"a": "🙂 é"}
    assert outside_json.loads(b'\xef\xbb\xbf{"n": 1}') == {"n": 1}  # a BOM is allowed


@pytest.mark.parametrize("raw, phrase", [
    (b'{"a": 1, "a": 2}', "appears twice"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b'{"a": 1e999}', "too large"),
    (b'{"a": ' + b"9" * 101 + b"}", "101 digits"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b'{"a": ', "truncated JSON"),
    (b"[" * 100000, "nested too deeply"),
])
def test_other_hostile_json_is_one_line(raw, phrase):
    with pytest.raises(outside_json.OutsideJSONError, match=phrase) as info:
        outside_json.loads(raw)
    assert "\n" not in str(info.value)


def test_load_file_names_the_file(tmp_path):
    path = tmp_path / "scores.json"
    path.write_bytes(b'{"x": "\\ud800"}')
    with pytest.raises(outside_json.OutsideJSONError, match=f"^{path}: text that is not valid"):
        outside_json.load_file(path)
    with pytest.raises(outside_json.OutsideJSONError, match="cannot be read"):
        outside_json.load_file(tmp_path / "missing.json")


def poisoned_folder(tmp_path):
    """Two valid files, one with a lone surrogate in the rater id, one in a comment and a
    profile answer of a file whose chain was recomputed (otherwise valid)."""
    folder = tmp_path / "responses"
    for i in range(2):
        write_json(folder / f"valid-{i}.json", make_response(STUDY, KEY, f"valid-{i}", seed=i))
    rater = make_response(STUDY, KEY, "ann", seed=3)
    rater["rater"]["id"] = "ann" + LONE
    (folder / "rater-id.json").write_bytes(escaped(rater))
    comment = make_response(STUDY, KEY, "ben", seed=4, comment="fine" + LONE,
                            profile={"specialty": "pathology", "years": "5" + LONE})
    (folder / "comment.json").write_bytes(escaped(rechain(comment)))
    return folder


def test_analyze_rejects_the_poisoned_files_and_analyses_the_rest(tmp_path):
    folder = poisoned_folder(tmp_path)
    summary = run_analysis(STUDY, [folder], tmp_path / "out", key=KEY, n_boot=0)
    ledger = {row["file"]: row for row in summary_rows(tmp_path / "out" / "ledger.csv")}
    for name in ("rater-id.json", "comment.json"):
        assert ledger[name]["status"] == "rejected"
        assert "text that is not valid Unicode" in ledger[name]["reason"]
    assert {ledger[f"valid-{i}.json"]["status"] for i in range(2)} == {"accepted"}
    assert summary["counts"]["raters"] == 2
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "valid-0" in report


def summary_rows(path) -> list[dict]:
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_ingest_never_hands_on_undecodable_text(tmp_path):
    ratings, ledger, profiles = ingest_responses(STUDY, KEY, [poisoned_folder(tmp_path)])
    for frame in (ratings, ledger, profiles):
        frame.to_csv(tmp_path / "out.csv")  # encodes as UTF-8: raised before the fix
    assert set(ratings["rater"]) == {"valid-0", "valid-1"}


@pytest.mark.parametrize("field", ["rater id", "comment"])
def test_the_server_refuses_with_4xx_and_stores_nothing(site, server, field):  # noqa: F811
    body = response(site["study"], site["key"], f"poison-{field[:4]}")
    if field == "rater id":
        body["rater"]["id"] += LONE
    else:
        body["panels"][0]["comment"] = "x" + LONE
        body["events"].append({"seq": len(body["events"]), "position": 0, "field": "comment",
                               "value": "x" + LONE, "at": "2026-01-02T09:00:00Z"})
        rechain(body)
    reply = post(server, escaped(body), headers={"X-Glidemed-Rater": body["rater"]["id"]
                                                 .encode("utf-8", "replace").decode("ascii",
                                                                                    "replace")})
    assert 400 <= reply.status_code < 500, reply.text
    assert "not valid Unicode" in reply.json()["error"]
    assert "Traceback" not in server.output()


def _key_file(tmp_path):
    path = tmp_path / "key.json"
    key = dict(KEY, created="2026" + LONE)
    path.write_bytes(escaped(key))
    return lambda: __import__("glidemed.survey.key", fromlist=["load_key"]).load_key(path), path


def _scores_file(tmp_path):
    from glidemed.scores.inputs import read_scores

    (tmp_path / "scores.csv").write_text("image,metric,value\n")
    path = tmp_path / "scores.json"
    path.write_bytes(b'{"schema": "glidemed-scores/1", "study_id": "demo\\ud800"}')
    return lambda: read_scores(STUDY, tmp_path / "scores.csv"), path


def _params_file(tmp_path):
    from glidemed.simulate.params import load_params

    path = tmp_path / "params.json"
    path.write_bytes(b'{"effects": {"style:\\ud800": 1}}')
    return lambda: load_params(path), path


def _roe_metz_file(tmp_path):
    from glidemed.power_mrmc import load_roe_metz

    path = tmp_path / "roe-metz.json"
    path.write_bytes(b'{"var_r\\udc00": 0.1}')
    return lambda: load_roe_metz(path), path


def _invitations_file(tmp_path):
    from glidemed.server.secrets import INVITATIONS_FILE, load_invitations

    path = tmp_path / INVITATIONS_FILE
    path.write_bytes(b'{"schema": "glidemed-invitations/1", "raters": {"R\\ud800": '
                     b'{"token_sha256": "x"}}}')
    return lambda: load_invitations(tmp_path), path


@pytest.mark.parametrize("make", [_key_file, _scores_file, _params_file, _roe_metz_file,
                                  _invitations_file])
def test_every_reader_of_outside_json_refuses_invalid_unicode_in_one_line(tmp_path, make):
    from glidemed.errors import GlidemedError

    read, path = make(tmp_path)
    with pytest.raises(GlidemedError) as info:
        read()
    message = str(info.value.message)
    assert str(path) in message and "not valid Unicode" in message and "\n" not in message
    message.encode("utf-8")
