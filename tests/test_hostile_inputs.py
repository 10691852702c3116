"""Hostile and broken response files: each is rejected or flagged with its own reason in the
ledger, every valid file alongside is kept, and the parser never crashes (hypothesis)."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glidemed.analysis.ingest import ingest_responses
from glidemed.responses import (Rejected, ResponseChecker, check_schema, decode_response,
                                parse_response)
from glidemed.study import load_study
from response_factory import make_key, make_response, rechain, write_json

ROOT = Path(__file__).resolve().parent.parent
STUDY = load_study(ROOT / "surveys" / "demo" / "study.toml")
KEY = make_key(STUDY)
VALID = make_response(STUDY, KEY, "valid-0", seed=1)
_COUNTER = itertools.count()


def edited(change, chain: bool = True) -> dict:
    """A copy of the valid response changed by ``change``; the chain is recomputed (as a
    forger would) unless ``chain`` is False, so that each case trips only its own check."""
    # one rater each (no duplicates), with the order and images the build gives that id
    data = make_response(STUDY, KEY, f"hostile-{next(_COUNTER)}", seed=1)
    change(data)
    if chain and isinstance(data.get("events"), list) and isinstance(data.get("build_hash"), str):
        try:
            rechain(data)
        except (TypeError, KeyError, AttributeError):
            pass
    return data


def setitem(path: str, value):
    """A change that sets ``data[a][b]...`` for path 'a.b...' (integers index lists)."""
    def change(data):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for p in parents:
            target = target[p]
        target[last] = value
    return change


def delitem(path: str):
    def change(data):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for p in parents:
            target = target[p]
        del target[last]
    return change


def swap_first_token(data):
    data["panels"][0]["token"] = data["panels"][1]["token"]


def duplicate_position(data):
    data["panels"].append(copy.deepcopy(data["panels"][0]))


def unknown_order_token(data):
    data["order"][-1] = "Zz" * 6


def dump(data) -> bytes:
    return json.dumps(data).encode("utf-8")


TRUNC = dump(VALID)
# name -> (file bytes, expected status, a phrase the ledger reason must contain)
CASES: dict[str, tuple[bytes, str, str]] = {
    "truncated": (TRUNC[: len(TRUNC) // 2], "rejected", "truncated JSON"),
    "truncated-at-end": (TRUNC[:-1], "rejected", "truncated JSON"),
    "invalid-json": (b'{"schema": "glidemed-response/1",,}', "rejected", "invalid JSON"),
    "trailing-garbage": (TRUNC + b" }{", "rejected", "invalid JSON: Extra data"),
    "empty": (b"", "rejected", "empty file"),
    "whitespace": (b" \n\t\n", "rejected", "only whitespace"),
    "non-utf8": (b'{"schema": "glidemed-response/1", "rater": "\xff\xfe"}', "rejected", "not UTF-8"),
    "latin1": (dump(edited(setitem("panels.0.comment", "caf\u00e9"))).replace(
        b"caf\\u00e9", "caf\u00e9".encode("latin-1")), "rejected", "not UTF-8"),
    "binary-png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "rejected", "not UTF-8"),
    "deeply-nested": (b"[" * 200_000 + b"]" * 200_000, "rejected", "nested too deeply"),
    "nested-in-field": (dump(edited(setitem("rater.profile", {}))).replace(
        b'"profile": {}', b'"profile": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        "rejected", "nested too deeply"),
    "json-array": (b"[1, 2, 3]", "rejected", "not a glidemed response (a JSON array"),
    "json-string": (b'"hello"', "rejected", "not a glidemed response (a JSON string"),
    "other-json": (b'{"name": "package", "version": "1.0"}', "rejected",
                   "JSON object without 'schema'"),
    "key-file": (dump(KEY), "rejected", "schema is 'glidemed-key/1'"),
    "future-schema": (dump(edited(setitem("schema", "glidemed-response/2"))), "rejected",
                      "schema is 'glidemed-response/2'"),
    "html-page": (b"<!doctype html><html><body>survey</body></html>", "rejected", "invalid JSON"),
    "nan-literal": (dump(edited(setitem("panels.0.seconds", 1.5))).replace(
        b'"seconds": 1.5', b'"seconds": NaN', 1), "rejected", "NaN is not a JSON number"),
    "duplicate-json-key": (dump(edited(setitem("panels.0.comment", "x"))).replace(
        b'"comment": "x"', b'"comment": "x", "comment": "y"', 1), "rejected",
        "key 'comment' appears twice"),
    "missing-chain": (dump(edited(delitem("chain"))), "rejected", "'chain' is a required property"),
    "extra-field": (dump(edited(setitem("extra", 1))), "rejected", "unexpected field(s) 'extra'"),
    "rater-id-number": (dump(edited(setitem("rater.id", 42))), "rejected",
                        "rater.id: expected string, got 42"),
    "ratings-list": (dump(edited(setitem("panels.0.ratings", [1, 2]))), "rejected",
                     "panels[0].ratings: expected object"),
    "panels-object": (dump(edited(setitem("panels", {"a": 1}))), "rejected",
                      "panels: expected array"),
    "score-string": (dump(edited(setitem("panels.0.ratings.style", "3"))), "rejected",
                     "panels[0].ratings.style: expected ['integer', 'null'], got '3'"),
    "score-bool": (dump(edited(setitem("panels.0.ratings.style", True))), "rejected",
                   "panels[0].ratings.style: expected ['integer', 'null'], got True"),
    "score-fraction": (dump(edited(setitem("panels.0.ratings.style", 2.5))), "rejected",
                       "got 2.5"),
    "score-float-whole": (dump(edited(setitem("panels.0.ratings.content", 2.0))), "rejected",
                          "score 2.0 is not a whole number"),
    "score-huge": (dump(edited(setitem("panels.0.ratings.style", 10**30))), "rejected",
                   "fails maximum 100"),
    "score-negative": (dump(edited(setitem("panels.0.ratings.style", -1))), "rejected",
                       "-1 fails minimum 0"),
    "score-out-of-range": (dump(edited(setitem("panels.0.ratings.style", 7))), "rejected",
                           "score 7 is out of range 0-4"),
    "unknown-aspect": (dump(edited(setitem("panels.0.ratings.colour", 1))), "rejected",
                       "unknown aspect 'colour'"),
    "unknown-flag": (dump(edited(setitem("panels.0.flags.boring", True))), "rejected",
                     "unknown flag 'boring'"),
    "unknown-panel-token": (dump(edited(setitem("panels.0.token", "Unknown-token-1"))),
                            "rejected", "'Unknown-token-1' is not a panel of this build"),
    "bad-token-pattern": (dump(edited(setitem("panels.0.token", "<b>x</b>"))), "rejected",
                          "panels[0].token: '<b>x</b>' fails pattern"),
    "unknown-order-token": (dump(edited(unknown_order_token)), "rejected",
                            "order: 1 panel token(s) not in this build's key"),
    "duplicated-token": (dump(edited(swap_first_token)), "rejected",
                         "is not at position 0 of the order"),
    "duplicated-position": (dump(edited(duplicate_position)), "rejected",
                            "position 0 appears twice"),
    "foreign-image-token": (dump(edited(setitem("panels.0.images.0", "Foreign-image"))),
                            "rejected", "image token 'Foreign-image' does not belong"),
    "position-out-of-order": (dump(edited(setitem("panels.0.position", 10_000))), "rejected",
                              "is not at position 10000 of the order"),
    "another-build": (dump(edited(setitem("build_hash", "ab" * 32))), "rejected",
                      "from another survey build"),
    "another-study": (dump(edited(setitem("study_id", "kather2022"))), "rejected",
                      "response to study 'kather2022', not 'demo'"),
    "bad-date": (dump(edited(setitem("updated", "yesterday"))), "rejected",
                 "updated: 'yesterday' fails format 'date-time'"),
    "bad-chain-head": (dump(edited(setitem("chain.head", "not-a-hash"), chain=False)), "rejected",
                       "chain.head: 'not-a-hash' fails pattern"),
    "no-ratings": (dump(edited(setitem("panels", []))), "rejected", "no panel has a rating"),
    "empty-rater-id": (dump(edited(setitem("rater.id", ""))), "rejected",
                       "rater.id: '' fails minLength 1"),
    "score-edited-by-hand": (dump(edited(setitem(
        "panels.0.ratings.style", (VALID["panels"][0]["ratings"]["style"] + 1) % 5), chain=False)),
                             "flagged", "in its recorded answers"),
    "event-edited-by-hand": (dump(edited(setitem("events.0.value", 0), chain=False)),
                             "flagged", "hash chain does not match"),
    "events-renumbered": (dump(edited(setitem("events.0.seq", 5))), "flagged",
                          "sequence numbers are not 0, 1, 2"),
}
BIG = "huge-50mb"  # written separately: a 50 MB file, rejected by its size without being read


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    folder = tmp_path_factory.mktemp("responses")
    for i in range(3):
        write_json(folder / f"valid-{i}.json", make_response(STUDY, KEY, f"valid-{i}", seed=i))
    for name, (content, _, _) in CASES.items():
        (folder / f"{name}.json").write_bytes(content)
    with open(folder / f"{BIG}.json", "wb") as handle:  # sparse: cheap to make
        handle.write(dump(VALID))
        handle.truncate(50 * 1024 * 1024)
    ratings, ledger, profiles = ingest_responses(STUDY, KEY, [folder])
    return ratings, ledger.set_index(ledger["file"].map(lambda f: Path(f).stem))


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_file_has_its_own_reason(ingested, name):
    _, ledger = ingested
    row = ledger.loc[name]
    _, status, phrase = CASES[name]
    assert row["status"] == status
    assert phrase in row["reason"], row["reason"]


# Cases that are one problem met in two places, and so share their reason.
SAME_PROBLEM = [{"deeply-nested", "nested-in-field"}]


def test_reasons_are_distinct(ingested):
    _, ledger = ingested
    reasons = ledger.loc[sorted(CASES), "reason"]
    shared = [set(names) for names in reasons.groupby(reasons).groups.values() if len(names) > 1]
    assert shared == SAME_PROBLEM


def test_fifty_megabyte_file_rejected_by_size(ingested):
    _, ledger = ingested
    row = ledger.loc[BIG]
    assert row["status"] == "rejected"
    assert "52.4 MB, over the 21 MB limit" in row["reason"] and "not read" in row["reason"]
    assert len(row["sha256"]) == 64  # hashed by streaming, never loaded whole


def test_big_file_is_not_read(tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a 50 MB file whole"))
    with pytest.raises(Rejected, match="limit"):
        parse_response(big, ResponseChecker.from_key(STUDY, KEY))


def test_every_valid_file_kept(ingested):
    ratings, ledger = ingested
    assert list(ledger.loc[[f"valid-{i}" for i in range(3)], "status"]) == ["accepted"] * 3
    n_panels = len(KEY["panels"])
    assert len(ratings) == (3 + 3) * n_panels * len(STUDY.aspects)  # 3 valid + 3 flagged files
    used = ratings[ratings["exclusion"] == ""]
    assert sorted(used["rater"].unique()) == ["valid-0", "valid-1", "valid-2"]
    # flagged files are accounted for as excluded rows, never silently dropped
    flagged = set(ratings.loc[ratings["exclusion"] == "flagged", "rater"])
    assert len(flagged) == 3 and all(r.startswith("hostile-") for r in flagged)


def test_every_file_in_ledger(ingested):
    _, ledger = ingested
    assert len(ledger) == len(CASES) + 1 + 3
    assert ledger["reason"].str.len().gt(0).sum() == len(CASES) + 1


def test_reasons_do_not_echo_huge_values(ingested):
    _, ledger = ingested
    assert ledger["reason"].str.len().max() < 400


# --- property-based fuzzing of the parser ---------------------------------------------

CONTEXT = ResponseChecker.from_key(STUDY, KEY)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=20)


def _parse(raw: bytes, tmp: Path) -> None:
    tmp.write_bytes(raw)
    try:
        parse_response(tmp, CONTEXT)
    except Rejected as exc:
        assert str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(tmp_path, raw):
    _parse(raw, tmp_path / "r.json")


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_arbitrary_json_rejected_cleanly(value):
    with pytest.raises(Rejected):
        check_schema(decode_response(json.dumps(value).encode()))


FIELDS = ["schema", "study_id", "build_hash", "rater", "rater.id", "rater.profile", "started",
          "updated", "complete", "order", "order.0", "panels", "panels.0", "panels.0.token",
          "panels.0.position", "panels.0.repeat", "panels.0.images", "panels.0.ratings",
          "panels.0.ratings.style", "panels.0.flags", "panels.0.comment", "panels.0.seconds",
          "events", "events.0", "events.0.value", "events.0.field", "chain", "chain.head"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=json_values, forge=st.booleans())
def test_mutated_response_accepted_or_rejected_never_crashes(tmp_path, field, value, forge):
    data = edited(setitem(field, value), chain=forge)
    _parse(json.dumps(data).encode(), tmp_path / "r.json")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scores=st.lists(st.integers(0, 4) | st.none(), min_size=2, max_size=2))
def test_valid_scores_round_trip(tmp_path, scores):
    data = copy.deepcopy(VALID)
    data["panels"][0]["ratings"] = dict(zip(["style", "content"], scores))
    data["events"] = [e for e in data["events"]
                      if not (e["position"] == 0 and e["field"].startswith("rating"))]
    data["events"] += [{"seq": 0, "position": 0, "field": f"rating:{a}", "value": s,
                        "at": "2026-01-02T09:00:00Z"}
                       for a, s in zip(["style", "content"], scores) if s is not None]
    for i, event in enumerate(data["events"]):
        event["seq"] = i
    rechain(data)
    write_json(tmp_path / "r.json", data)
    ratings, ledger, _ = ingest_responses(STUDY, KEY, [tmp_path / "r.json"])
    assert ledger.loc[0, "status"] in ("accepted", "partial"), ledger.loc[0, "reason"]
    first = ratings[ratings["panel"] == data["panels"][0]["token"]].set_index("aspect")
    for aspect, score in zip(["style", "content"], scores):
        got = first.loc[aspect, "score"]
        assert got is pd.NA if score is None else got == score


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_fast_and_reference_validators_agree(field, value):
    import fastjsonschema

    from glidemed.responses import fast_validator, response_validator

    data = edited(setitem(field, value))
    try:
        fast_validator()(data)
        fast_ok = True
    except fastjsonschema.JsonSchemaException:
        fast_ok = False
    assert fast_ok == response_validator().is_valid(data)


def test_float_position_rejected(tmp_path):
    data = edited(setitem("panels.0.position", 0.0))
    write_json(tmp_path / "r.json", data)
    _, ledger, _ = ingest_responses(STUDY, KEY, [tmp_path])
    assert ledger.loc[0, "status"] == "rejected"
    assert "panels[0].position: 0.0 is not a whole number" in ledger.loc[0, "reason"]
