"""Ingest edge cases: symbolic links, rater-id rule, numbers beyond range, simulated files,
files of an earlier build, the duplicate wording."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from glidemed.analysis.ingest import ingest_responses
from glidemed.errors import AnalysisError
from glidemed.study import load_study
from response_factory import make_key, make_response, write_json

ROOT = Path(__file__).resolve().parent.parent
STUDY = load_study(ROOT / "surveys" / "demo" / "study.toml")
KEY = make_key(STUDY)


def ingest(*paths, **kwargs):
    return ingest_responses(STUDY, KEY, list(paths), **kwargs)


def test_broken_link_and_second_name_are_in_the_ledger(tmp_path):
    folder = tmp_path / "responses"
    real = write_json(folder / "a.json", make_response(STUDY, KEY, "a", seed=1))
    os.symlink(real, folder / "b-link.json")
    os.symlink(folder / "gone.json", folder / "broken.json")
    _, ledger, _ = ingest(folder)
    rows = ledger.set_index("file")
    assert sorted(rows.index) == ["a.json", "b-link.json", "broken.json"]
    assert rows.loc["a.json", "status"] == "accepted"
    assert rows.loc["b-link.json", "status"] == "duplicate"
    assert rows.loc["b-link.json", "reason"] == ("the same file as a.json (reached through a "
                                                 "symbolic link); read once")
    assert rows.loc["b-link.json", "sha256"] == rows.loc["a.json", "sha256"]
    assert rows.loc["broken.json", "status"] == "rejected"
    assert "broken symbolic link" in rows.loc["broken.json", "reason"]


def test_rater_ids_are_trimmed_and_nfc_and_case_only_differences_warned(tmp_path):
    composed = "Jos\u00e9"
    decomposed = unicodedata.normalize("NFD", composed)
    write_json(tmp_path / "1.json", make_response(STUDY, KEY, f"  {decomposed} ", seed=1, n_seen=5))
    write_json(tmp_path / "2.json", make_response(STUDY, KEY, composed, seed=2))
    write_json(tmp_path / "3.json", make_response(STUDY, KEY, "JOS\u00c9", seed=3))
    ratings, ledger, profiles = ingest(tmp_path)
    rows = ledger.set_index("file")
    # one rater despite spaces and decomposition; the page's plan of each id still checked
    assert rows.loc["1.json", "status"] == "duplicate" and rows.loc["2.json", "status"] == "accepted"
    assert set(ratings["rater"]) == {composed, "JOS\u00c9"}
    assert sorted(profiles["rater"]) == sorted([composed, "JOS\u00c9"])
    assert "differs only by case from 'JOS\u00c9': counted as different raters" in rows.loc["2.json", "reason"]
    assert "differs only by case from 'Jos\u00e9'" in rows.loc["3.json", "reason"]


@pytest.mark.parametrize("rater", [" ", "   ", "\t\n ", "\u3000\u00a0"])
def test_rater_id_of_only_spaces_is_rejected_in_one_line(tmp_path, rater):
    write_json(tmp_path / "blank.json", make_response(STUDY, KEY, rater, seed=1))
    write_json(tmp_path / "ok.json", make_response(STUDY, KEY, "ok", seed=2))
    ratings, ledger, _ = ingest(tmp_path)
    rows = ledger.set_index("file")
    assert rows.loc["blank.json", "status"] == "rejected"
    assert rows.loc["blank.json", "reason"] == ("rater.id: empty once surrounding spaces are "
                                                "removed (a rater id is needed)")
    assert rows.loc["ok.json", "status"] == "accepted" and set(ratings["rater"]) == {"ok"}


@pytest.mark.parametrize("text, phrase", [
    ("1e309", "number 1e309 is too large"),
    ("9" * 5000, "a whole number of 5000 digits is too large"),
])
def test_numbers_out_of_range_are_rejected_plainly(tmp_path, text, phrase):
    data = make_response(STUDY, KEY, "n", seed=1)
    data["panels"][0]["seconds"] = 12.5
    raw = json.dumps(data).replace('"seconds": 12.5', f'"seconds": {text}', 1)
    (tmp_path / "n.json").write_text(raw)
    _, ledger, _ = ingest(tmp_path / "n.json")
    assert ledger.loc[0, "status"] == "rejected"
    assert ledger.loc[0, "reason"].startswith(f"invalid JSON: {phrase}")
    assert "set_int_max_str_digits" not in ledger.loc[0, "reason"]


def simulated(rater: str, seed: int) -> dict:
    data = make_response(STUDY, KEY, rater, seed=seed)
    data["browser"] = "glidemed simulate 0.1"
    return data


def test_simulated_files_are_marked_and_never_mixed_unasked(tmp_path):
    write_json(tmp_path / "real.json", make_response(STUDY, KEY, "real", seed=1))
    write_json(tmp_path / "sim.json", simulated("sim-01", 2))
    with pytest.raises(AnalysisError, match=r"1 simulated response file\(s\) \(e.g. sim.json.*"
                                            r"mixed with 1 real one\(s\).*--allow-simulated"):
        ingest(tmp_path)
    _, ledger, _ = ingest(tmp_path, allow_simulated=True)
    assert ledger.set_index("file")["simulated"].to_dict() == {"real.json": False, "sim.json": True}
    _, ledger, _ = ingest(tmp_path / "sim.json")  # simulated alone: fine
    assert ledger["simulated"].tolist() == [True]


def test_file_of_an_earlier_build_points_to_its_kept_key(tmp_path):
    old = make_key(STUDY, "build-old")
    data = make_response(STUDY, old, "o", seed=1)
    write_json(tmp_path / "o.json", data)
    key_path = tmp_path / "key" / "key.json"
    write_json(key_path, KEY)
    _, ledger, _ = ingest_responses(STUDY, KEY, [tmp_path / "o.json"], key_name=str(key_path))
    assert "the key of an earlier build is kept in" in ledger.loc[0, "reason"]
    kept = tmp_path / "key" / "previous" / f"key-{old['build_hash'][:16]}.json"
    write_json(kept, old)
    _, ledger, _ = ingest_responses(STUDY, KEY, [tmp_path / "o.json"], key_name=str(key_path))
    assert f"its key is {kept}: analyse these files with --key {kept}" in ledger.loc[0, "reason"]


def test_duplicate_reason_says_whether_the_ratings_are_the_same(tmp_path):
    same = make_response(STUDY, KEY, "d", seed=1)
    write_json(tmp_path / "a.json", same)
    write_json(tmp_path / "b.json", same)
    _, ledger, _ = ingest(tmp_path)
    assert "identical ratings, updated at the same time; first by file name" in ledger.loc[1, "reason"]
    write_json(tmp_path / "b.json", make_response(STUDY, KEY, "d", seed=2))
    _, ledger, _ = ingest(tmp_path)
    assert ("as many ratings (not the same ones), updated at the same time; first by file name"
            in ledger.loc[1, "reason"])

