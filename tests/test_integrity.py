"""Tamper evidence over the whole file: each edit below, made with the chain recomputed
(as a script would) or not, is flagged in the ledger with the first difference named."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from glidemed.analysis.ingest import ingest_responses
from glidemed.study import load_study
from glidemed.responses.chain import LEGACY_ALGORITHM, chain_head, chain_problems
from response_factory import make_key, make_response, rechain, write_json

ROOT = Path(__file__).resolve().parent.parent
STUDY = load_study(ROOT / "surveys" / "demo" / "study.toml")
KEY = make_key(STUDY, "build-integrity", repeat_panels=2)
ORIGINAL = make_response(STUDY, KEY, "anna", seed=5)


def ledger_row(tmp_path, data: dict) -> dict:
    _, ledger, _ = ingest_responses(STUDY, KEY, [write_json(tmp_path / "r.json", data)])
    return ledger.iloc[0].to_dict()


def fresh() -> dict:
    return copy.deepcopy(ORIGINAL)


def test_untouched_file_is_accepted(tmp_path):
    row = ledger_row(tmp_path, fresh())
    assert row["status"] == "accepted" and row["reason"] == ""


def test_copy_under_another_rater_id(tmp_path):
    data = fresh()
    data["rater"]["id"] = "forged"
    row = ledger_row(tmp_path, data)
    assert row["status"] == "flagged"
    assert "hash chain does not match the rater id, profile and events" in row["reason"]
    rechain(data)  # even with the chain recomputed, the order is not the one of 'forged'
    row = ledger_row(tmp_path, data)
    assert row["status"] == "flagged"
    assert "differs from the order and images the build gives rater id 'forged': order[0]" in row["reason"]


def test_order_entries_swapped_with_their_panels(tmp_path):
    data = fresh()
    a, b = data["panels"][3], data["panels"][4]
    data["order"][3], data["order"][4] = data["order"][4], data["order"][3]
    a["position"], b["position"] = 4, 3
    for event in data["events"]:
        if event["position"] in (3, 4):
            event["position"] = 7 - event["position"]
    data["panels"][3], data["panels"][4] = b, a
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged"
    assert f"order[3] is panel {b['token']}, the plan has {a['token']}" in row["reason"]


@pytest.mark.parametrize("keep_events", [True, False])
def test_order_and_panels_cut(tmp_path, keep_events):
    data = fresh()
    data["order"], data["panels"] = data["order"][:10], data["panels"][:10]
    if not keep_events:
        data["events"] = [e for e in data["events"] if e["position"] < 10]
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged"
    assert f"the order has 10 panels, the plan {len(ORIGINAL['order'])}" in row["reason"]
    if keep_events:
        assert "outside the order (10 panels)" in row["reason"]


def test_panel_deleted_events_kept(tmp_path):
    data = fresh()
    gone = data["panels"].pop(7)
    row = ledger_row(tmp_path, data)
    assert row["status"] == "flagged"
    assert (f"answers are recorded for panel {gone['token']} at position 7, which is missing "
            "from the file's panels") in row["reason"]
    assert "not reached" in row["reason"]  # the partial note stays, but flagged decides


def test_repeat_mark_set_on_ordinary_panels(tmp_path):
    data = fresh()
    first = next(p for p in data["panels"] if not p["repeat"])
    first["repeat"] = True
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged"
    assert f"panel {first['token']} at position {first['position']} is marked a repeat" in row["reason"]


def test_grid_positions_or_image_tokens_changed(tmp_path):
    data = fresh()
    data["panels"][2]["images"].reverse()
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged" and "grid position 1 shows" in row["reason"]
    data = fresh()
    data["panels"][2]["images"] = data["panels"][2]["images"][:1]
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged" and "grid position 2 shows nothing" in row["reason"]


def test_profile_edited_or_field_added(tmp_path):
    data = fresh()
    data["rater"]["profile"]["years"] = "30"
    row = ledger_row(tmp_path, data)
    assert row["status"] == "flagged" and "hash chain does not match" in row["reason"]
    data = fresh()
    data["rater"]["profile"]["grade"] = "consultant"
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged"
    assert "profile field 'grade' is not asked by this survey" in row["reason"]
    data = fresh()
    data["rater"]["profile"]["specialty"] = "surgery"
    row = ledger_row(tmp_path, rechain(data))
    assert "profile field 'specialty': 'surgery' is not one of its choices" in row["reason"]


@pytest.mark.parametrize("event, phrase", [
    ({"position": 999, "field": "rating:style", "value": 1}, "position 999 is outside the order"),
    ({"position": 0, "field": "rating:colour", "value": 1}, "unknown aspect 'colour'"),
    ({"position": 0, "field": "flag:odd", "value": True}, "unknown flag 'odd'"),
    ({"position": 0, "field": "rating:style", "value": 9}, "rating 9 of 'style' is not a score 0-4"),
    ({"position": 0, "field": "comment", "value": 3}, "comment 3 is not text"),
])
def test_events_the_page_cannot_write(tmp_path, event, phrase):
    data = fresh()
    data["events"].append({"seq": len(data["events"]), "at": "2026-01-02T09:30:00Z", **event})
    row = ledger_row(tmp_path, rechain(data))
    assert row["status"] == "flagged" and phrase in row["reason"], row["reason"]


def test_ratings_block_disagreeing_with_events_names_the_panel(tmp_path):
    data = fresh()
    panel = data["panels"][4]
    panel["flags"]["nonsensical"] = not panel["flags"]["nonsensical"]
    row = ledger_row(tmp_path, data)
    assert row["status"] == "flagged"
    assert f"panel {panel['token']} at position 4: flags.nonsensical is" in row["reason"]


def test_legacy_chain_still_verifies_but_new_one_covers_the_rater():
    data = fresh()
    assert chain_problems(data) == []
    legacy = copy.deepcopy(data)
    legacy["chain"] = {"algorithm": LEGACY_ALGORITHM,
                       "head": chain_head(legacy["build_hash"], legacy["events"], rater=None)}
    assert chain_problems(legacy) == []
    # the start of the new chain: sha256(build hash, newline, canonical rater block)
    start = hashlib.sha256((data["build_hash"] + "\n" + '{"id":"anna","profile":'
                            '{"specialty":"pathology","years":"5"}}').encode()).hexdigest()
    assert chain_head(data["build_hash"], [], rater=data["rater"]) == start


def test_lone_surrogate_in_a_comment_is_hashed_as_the_page_writes_it(tmp_path):
    data = fresh()
    data["events"].append({"seq": len(data["events"]), "position": 0, "field": "comment",
                           "value": "lone \ud800", "at": "2026-01-02T09:30:00Z"})
    data["panels"][0]["comment"] = "lone \ud800"
    rechain(data)
    head = chain_head(data["build_hash"], data["events"][-1:], rater=None)
    expected = hashlib.sha256((hashlib.sha256(data["build_hash"].encode()).hexdigest() + "\n"
                               + '{"at":"2026-01-02T09:30:00Z","field":"comment","position":0,'
                               f'"seq":{len(data["events"]) - 1},"value":"lone \\ud800"}}'
                               ).encode()).hexdigest()
    assert head == expected
    assert chain_problems(data) == []


def test_pseudonymized_copies_skip_only_the_checks_bound_to_the_real_id(tmp_path):
    data = fresh()
    data["rater"]["id"] = "R01"
    path = write_json(tmp_path / "r.json", data)
    _, ledger, _ = ingest_responses(STUDY, KEY, [path], pseudonymized=True)
    assert ledger.loc[0, "status"] == "accepted"
    data["panels"][0]["ratings"]["style"] = (data["panels"][0]["ratings"]["style"] + 1) % 5
    _, ledger, _ = ingest_responses(STUDY, KEY, [write_json(path, data)], pseudonymized=True)
    assert ledger.loc[0, "status"] == "flagged" and "in its recorded answers" in ledger.loc[0, "reason"]
