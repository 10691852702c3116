"""The blinding audit tells real leaks from coincidences: conditions named like numbers
or like glidemed's own words, a post_url holding the seed; too common a name is named."""

from __future__ import annotations

import pytest
from conftest import SMALL_STUDY
from survey_factory import built

from glidemed.errors import SurveyError
from glidemed.generate.manifest import load_manifest
from glidemed.paths import images_dir, key_dir, survey_dir
from glidemed.survey.audit import audit_survey
from glidemed.survey.key import load_key

EXTRA_CONDITIONS = """
[[conditions]]
name = "{name}"
generator = "placeholder"
params = {{ size = 32 }}
"""


def study_file(tmp_path, names: list[str], extra: str = "") -> object:
    text = SMALL_STUDY.format(images_per_prompt=4, images_per_panel=2)
    text = text.replace('name = "alpha"', f'name = "{names[0]}"')
    text = text.replace('name = "beta"', f'name = "{names[1]}"')
    text = text.replace("seed = 11", "seed = 20240611")
    text += "".join(EXTRA_CONDITIONS.format(name=n) for n in names[2:]) + extra
    path = tmp_path / "study" / "study.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def audit(study):
    return audit_survey(study, survey_dir(study), load_key(key_dir(study) / "key.json"),
                        load_manifest(images_dir(study)))


@pytest.mark.parametrize("image_format", ["jpeg", "png", "webp"])
def test_numbers_and_glidemed_words_as_condition_names_pass(tmp_path, monkeypatch, image_format):
    path = study_file(tmp_path, ["1", "2", "4", "glidemed", "jfif"],
                      '[survey]\nrepeat_panels = 2\npost_url = "https://example.org/c/20240611"\n')
    study, report = built(path, tmp_path / "b", monkeypatch, image_format=image_format,
                          single_file=image_format != "png")
    assert report.audit.ok, report.audit.problems


def test_a_real_leak_of_such_a_name_is_still_caught(tmp_path, monkeypatch):
    path = study_file(tmp_path, ["1", "2", "4", "glidemed", "jfif"])
    study, _ = built(path, tmp_path / "b", monkeypatch, image_format="jpeg", single_file=False)
    index = survey_dir(study) / "index.html"
    html = index.read_text(encoding="utf-8")
    index.write_text(html.replace('"post_url":""', '"post_url":"made with jfif"', 1),
                     encoding="utf-8")
    problems = audit(study).problems
    assert any("contains condition name 'jfif'" in p for p in problems), problems
    html = index.read_text(encoding="utf-8")
    assert '"images_per_panel":2' in html
    index.write_text(html.replace('"images_per_panel":2', '"images_per_panel":4', 1),
                     encoding="utf-8")
    assert any("blocks[0].images_per_panel" in p and "not the study's" in p for p in audit(study).problems)


def test_too_common_a_name_says_which_name_to_change(tmp_path, monkeypatch):
    path = study_file(tmp_path, ["alpha", "survey"])
    with pytest.raises(SurveyError) as info:
        built(path, tmp_path / "b", monkeypatch, image_format="jpeg", single_file=False)
    message = info.value.message
    assert "file name assets/survey.js: contains condition name 'survey'" in message
    assert "too common to tell from glidemed's own text: rename condition 'survey'" in message
