"""key.json: written only when valid, loaded with clear errors."""

from __future__ import annotations

import json

import pytest

from glidemed.errors import SurveyError
from glidemed.survey.key import load_key, write_key

GOOD = {"schema": "glidemed-key/1", "study_id": "s", "build_hash": "a" * 64,
        "created": "2026-01-01T00:00:00+00:00", "study_sha256": "b" * 64, "conditions": ["x"],
        "panels": {"Pan1": {"prompt_id": "p", "condition": "x", "control": False,
                            "images": {"Img1": "x/p/00.png"}}},
        "left_out": []}


def test_round_trip(tmp_path):
    write_key(tmp_path / "key.json", GOOD)
    assert load_key(tmp_path / "key.json").data == GOOD


@pytest.mark.parametrize("change, message", [
    ({"schema": "other"}, "schema"),
    ({"build_hash": "XYZ"}, "build_hash"),
    ({"panels": {"bad token!": GOOD["panels"]["Pan1"]}}, "not a valid token"),
    ({"panels": {"Pan1": {**GOOD["panels"]["Pan1"], "condition": "y"}}}, "not in conditions"),
    ({"panels": {"Pan1": {**GOOD["panels"]["Pan1"], "images": {}}}}, "non-empty"),
    ({"left_out": [{"prompt_id": "p"}]}, "left_out"),
])
def test_invalid_keys_are_rejected(tmp_path, change, message):
    path = tmp_path / "key.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(SurveyError, match=message) as err:
        load_key(path)
    assert str(path) in str(err.value)
    with pytest.raises(SurveyError):
        write_key(tmp_path / "new.json", {**GOOD, **change})
    assert not (tmp_path / "new.json").exists()


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(SurveyError, match="build the survey first"):
        load_key(tmp_path / "none.json")
    (tmp_path / "k.json").write_text("{")
    with pytest.raises(SurveyError, match="cannot read"):
        load_key(tmp_path / "k.json")
