"""Ingest: validation against the build, the ledger, the duplicate rule, unblinding."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from glidemed.analysis.ingest import LEDGER_COLUMNS, ingest_responses
from glidemed.analysis.tidy import TIDY_COLUMNS
from glidemed.errors import AnalysisError
from glidemed.study import load_study
from response_factory import make_key, make_response, rechain, write_json

ROOT = Path(__file__).resolve().parent.parent
STUDY = load_study(ROOT / "surveys" / "demo" / "study.toml")
KEY = make_key(STUDY)
N_PANELS = len(KEY["panels"])


def ingest(*paths, **kwargs):
    return ingest_responses(STUDY, KEY, list(paths), **kwargs)


def test_unblinds_every_rating(tmp_path):
    response = make_response(STUDY, KEY, "anna", seed=3)
    ratings, ledger, profiles = ingest(write_json(tmp_path / "a.json", response))
    assert list(ledger.columns) == LEDGER_COLUMNS
    assert ledger.loc[0, "status"] == "accepted" and ledger.loc[0, "reason"] == ""
    assert ledger.loc[0, "n_panels"] == N_PANELS
    assert list(ratings.columns) == TIDY_COLUMNS + ["nonsensical"]
    assert len(ratings) == N_PANELS * 2
    prompts = {p.id: p for p in STUDY.prompts()}
    for panel in response["panels"]:
        entry = KEY["panels"][panel["token"]]
        rows = ratings[ratings["panel"] == panel["token"]].set_index("aspect")
        assert set(rows["prompt_id"]) == {entry["prompt_id"]}
        assert set(rows["condition"]) == {entry["condition"]}
        assert set(rows["style"]) == {prompts[entry["prompt_id"]].style}
        assert set(rows["style_group"]) == {prompts[entry["prompt_id"]].style_group}
        assert set(rows["detail"]) == {prompts[entry["prompt_id"]].detail}
        for aspect, score in panel["ratings"].items():
            assert rows.loc[aspect, "score"] == score
        assert rows["nonsensical"].tolist() == [panel["flags"]["nonsensical"]] * 2
        assert rows["seconds"].tolist() == [panel["seconds"]] * 2
    assert profiles.to_dict(orient="records") == [
        {"rater": "anna", "specialty": "pathology", "years": "5"}]


def test_rows_follow_study_order(tmp_path):
    ratings, _, _ = ingest(write_json(tmp_path / "a.json", make_response(STUDY, KEY, "a", seed=1)))
    order = {p.id: i for i, p in enumerate(STUDY.prompts())}
    ranks = ratings["prompt_id"].map(order).tolist()
    assert ranks == sorted(ranks)
    assert list(pd.unique(ratings["style"])) == [s.key for s in STUDY.styles]


def test_repeats_and_missing_ratings(tmp_path):
    key = make_key(STUDY, "build-repeats", repeat_panels=3)
    response = make_response(STUDY, key, "bo", seed=2)
    response["panels"][5]["ratings"]["content"] = None
    response["events"] = [e for e in response["events"]
                          if not (e["position"] == 5 and e["field"] == "rating:content")]
    for i, event in enumerate(response["events"]):
        event["seq"] = i
    ratings, ledger, _ = ingest_responses(STUDY, key, [write_json(tmp_path / "b.json",
                                                                   rechain(response))])
    assert ledger.loc[0, "status"] == "partial"
    assert ledger.loc[0, "reason"] == "partial: 1 rating(s) left blank"
    assert ratings["repeat"].sum() == 3 * 2
    missing = ratings[ratings["exclusion"] == "missing"]
    assert len(missing) == 1 and missing["score"].isna().all()
    assert missing["panel"].iloc[0] == response["panels"][5]["token"]


def test_unfinished_file_is_partial(tmp_path):
    ratings, ledger, _ = ingest(write_json(tmp_path / "c.json",
                                           make_response(STUDY, KEY, "cy", n_seen=10)))
    assert ledger.loc[0, "status"] == "partial"
    assert ledger.loc[0, "reason"] == f"partial: {N_PANELS - 10} of {N_PANELS} panels not reached"
    assert ledger.loc[0, "n_panels"] == 10 and len(ratings) == 20


def test_folders_and_files_each_read_once(tmp_path):
    folder = tmp_path / "returned"
    a = write_json(folder / "a.json", make_response(STUDY, KEY, "a", seed=1))
    write_json(folder / "sub" / "b.json", make_response(STUDY, KEY, "b", seed=2))
    (folder / "notes.txt").write_text("thank you!")
    _, ledger, _ = ingest(folder, a, tmp_path / "returned" / "." / "a.json")
    assert [Path(f).name for f in ledger["file"]] == ["a.json", "notes.txt", "b.json"]
    assert ledger.set_index(ledger["file"].map(lambda f: Path(f).name)).loc[
        "notes.txt", "status"] == "rejected"


def test_same_name_in_two_folders_stays_distinct(tmp_path):
    a = write_json(tmp_path / "a" / "r.json", make_response(STUDY, KEY, "hana", seed=1))
    b = write_json(tmp_path / "b" / "r.json", make_response(STUDY, KEY, "hana", seed=1))
    _, ledger, _ = ingest(a.parent, b.parent)
    assert ledger["file"].tolist() == ["r.json", str(b)]
    assert ledger.loc[1, "reason"] == "also returned as r.json (not used)"
    assert ledger.loc[0, "reason"].startswith(f"same rater as {b} ")


def test_profile_field_named_rater_keeps_the_rater_id(tmp_path):
    response = make_response(STUDY, KEY, "ida", profile={"rater": "someone else", "years": "2"})
    _, _, profiles = ingest(write_json(tmp_path / "i.json", response))
    assert profiles["rater"].tolist() == ["ida"]


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(AnalysisError, match="no-such-folder: no such response file or folder"):
        ingest(tmp_path / "no-such-folder")


def test_key_of_another_study_is_an_error():
    key = copy.deepcopy(KEY)
    key["study_id"] = "other"
    with pytest.raises(AnalysisError, match="belongs to study 'other'"):
        ingest_responses(STUDY, key, [])
    key = copy.deepcopy(KEY)
    next(iter(key["panels"].values()))["prompt_id"] = "gone.prompt.short"
    with pytest.raises(AnalysisError, match="gone.prompt.short"):
        ingest_responses(STUDY, key, [])


def test_duplicate_rater_keeps_most_complete(tmp_path):
    full = write_json(tmp_path / "z-full.json", make_response(STUDY, KEY, "dora", seed=1))
    part = write_json(tmp_path / "a-part.json",
                      make_response(STUDY, KEY, "dora", seed=1, n_seen=20, updated="2026-02-01T00:00:00Z"))
    ratings, ledger, profiles = ingest(tmp_path)
    rows = ledger.set_index(ledger["file"].map(lambda f: Path(f).name))
    assert rows.loc["z-full.json", "status"] == "accepted"
    assert f"also returned as {part.name} (not used)" in rows.loc["z-full.json", "reason"]
    assert rows.loc["a-part.json", "status"] == "duplicate"
    assert rows.loc["a-part.json", "reason"].startswith(
        f"same rater as {full.name} (it has more ratings: {2 * N_PANELS} vs 40), which is used instead")
    assert len(ratings) == 2 * N_PANELS and len(profiles) == 1


def test_duplicate_rater_then_latest_update(tmp_path):
    write_json(tmp_path / "old.json", make_response(STUDY, KEY, "eve", seed=1))
    write_json(tmp_path / "new.json", make_response(STUDY, KEY, "eve", seed=2,
                                                    updated="2026-01-03T10:00:00+01:00"))
    ratings, ledger, _ = ingest(tmp_path)
    rows = ledger.set_index(ledger["file"].map(lambda f: Path(f).name))
    assert rows.loc["new.json", "status"] == "accepted"
    assert rows.loc["old.json", "status"] == "duplicate"
    assert "(it was updated later)" in rows.loc["old.json", "reason"]
    new = json.loads((tmp_path / "new.json").read_text())
    first = new["panels"][0]
    got = ratings[(ratings["panel"] == first["token"]) & (ratings["aspect"] == "style")]["score"]
    assert got.tolist() == [first["ratings"]["style"]]


def test_duplicate_rater_prefers_verified_chain(tmp_path):
    tampered = make_response(STUDY, KEY, "finn", seed=1, updated="2026-03-01T00:00:00Z")
    tampered["panels"][0]["ratings"]["style"] = (tampered["panels"][0]["ratings"]["style"] + 1) % 5
    write_json(tmp_path / "tampered.json", tampered)
    write_json(tmp_path / "honest.json", make_response(STUDY, KEY, "finn", seed=1, n_seen=5))
    _, ledger, _ = ingest(tmp_path)
    rows = ledger.set_index(ledger["file"].map(lambda f: Path(f).name))
    assert rows.loc["honest.json", "status"] == "partial"
    assert rows.loc["tampered.json", "status"] == "duplicate"
    assert "its hash chain verifies" in rows.loc["tampered.json", "reason"]


@pytest.mark.parametrize("mode", ["include", "exclude"])
def test_flagged_option(tmp_path, mode):
    tampered = make_response(STUDY, KEY, "gus", seed=4)
    tampered["panels"][0]["ratings"]["style"] = (tampered["panels"][0]["ratings"]["style"] + 1) % 5
    write_json(tmp_path / "t.json", tampered)
    ratings, ledger, _ = ingest(tmp_path, flagged=mode)
    assert ledger.loc[0, "status"] == "flagged"
    assert f"panel {tampered['panels'][0]['token']} at position 0: ratings.style is" in ledger.loc[0, "reason"]
    assert f"--flagged {mode}" in ledger.loc[0, "reason"]
    assert len(ratings) == 2 * N_PANELS
    if mode == "include":
        assert (ratings["exclusion"].isin(["", "missing"])).all()
        first = tampered["panels"][0]
        row = ratings[(ratings["panel"] == first["token"]) & (ratings["aspect"] == "style")]
        assert row["score"].tolist() == [first["ratings"]["style"]]
    else:
        assert (ratings["exclusion"] == "flagged").all() and ratings["score"].isna().all()


def test_flagged_option_checked(tmp_path):
    with pytest.raises(AnalysisError, match="--flagged"):
        ingest(tmp_path, flagged="maybe")


def test_no_files_gives_empty_tables(tmp_path):
    ratings, ledger, profiles = ingest(tmp_path)
    assert ratings.empty and ledger.empty and profiles.empty
    assert list(ratings.columns) == TIDY_COLUMNS + ["nonsensical"]
