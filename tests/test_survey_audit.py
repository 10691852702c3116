"""The blinding audit: a clean build passes; every kind of planted leak is caught."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin
from survey_factory import built, generated

from glidemed.errors import SurveyError
from glidemed.generate.manifest import load_manifest
from glidemed.paths import images_dir, key_dir, survey_dir
from glidemed.survey import build as build_module
from glidemed.survey.audit import audit_blinding, audit_survey, image_problems
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key


def audit(study):
    return audit_survey(study, survey_dir(study), load_key(key_dir(study) / "key.json"),
                        load_manifest(images_dir(study)))


def edit_page(study, old: str, new: str) -> None:
    index = survey_dir(study) / "index.html"
    html = index.read_text(encoding="utf-8")
    assert old in html
    index.write_text(html.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def folder_build(make_study, tmp_path, monkeypatch):
    study, _ = built(make_study(), tmp_path / "b", monkeypatch, single_file=False,
                     image_format="jpeg")
    return study


def test_clean_builds_pass(make_study, tmp_path, monkeypatch, folder_build):
    report = audit(folder_build)
    assert report.ok, report.problems
    assert report.images == 16 * 4 and report.files == 16 * 4 + 3
    study, _ = built(make_study(folder=tmp_path / "s2"), tmp_path / "b2", monkeypatch)
    assert audit_blinding(study).images == 64


def test_exif_and_png_text_are_caught(folder_build):
    study = folder_build
    seed = str(next(iter(load_manifest(images_dir(study)).values()))["seed"])
    target = next((survey_dir(study) / "assets").glob("*.jpg"))
    exif = Image.Exif()
    exif[0x010E] = f"seed {seed}"  # ImageDescription
    Image.new("RGB", (32, 32)).save(target, format="JPEG", exif=exif.tobytes())
    problems = audit(study).problems
    assert any("APP1" in p for p in problems)
    assert any(f"image seed {seed!r}" in p for p in problems)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "generated")
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="PNG", pnginfo=info)
    assert image_problems(buffer.getvalue())[0] == ["PNG metadata chunk (tEXt)"]


def test_webp_metadata_is_caught():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "alpha"
    Image.new("RGB", (16, 16)).save(buffer, format="WEBP", exif=exif.tobytes())
    problems, header = image_problems(buffer.getvalue())
    assert any("EXIF" in p for p in problems) and b"alpha" in header
    clean = io.BytesIO()
    Image.new("RGB", (16, 16)).save(clean, format="WEBP")
    assert image_problems(clean.getvalue())[0] == []


def test_names_in_files_and_page_are_caught(folder_build):
    study = folder_build
    (survey_dir(study) / "assets" / "alpha-notes.txt").write_text("x")
    edit_page(study, "<main>", "<main><p>made with the placeholder generator</p>")
    problems = audit(study).problems
    assert any("unexpected file" in p for p in problems)
    assert any("file name assets/alpha-notes.txt: contains condition name 'alpha'" in p
               for p in problems)
    assert any(p == "index.html: contains generator name 'placeholder'" for p in problems)


def test_changed_code_is_scanned(folder_build):
    study = folder_build
    js = survey_dir(study) / "assets" / "survey.js"
    js.write_text(js.read_text() + "\n// beta\n")
    assert any("assets/survey.js: contains condition name 'beta'" in p for p in audit(study).problems)


def test_page_data_leaks_are_caught(folder_build):
    study = folder_build
    key = load_key(key_dir(study) / "key.json").data
    token, panel = next(iter(key["panels"].items()))
    file = next(iter(panel["images"].values()))
    edit_page(study, f'{{"token":"{token}",', f'{{"token":"{token}","cond":"{panel["condition"]}",')
    edit_page(study, '"post_url":""', f'"post_url":"{file}"')
    edit_page(study, '"title":"Small test study"', '"title":"Small test study (beta)"')
    problems = audit(study).problems
    assert any("extra fields ['cond']" in p for p in problems)
    assert any(f"contains condition name {panel['condition']!r}" in p for p in problems)
    assert any("image file of the key" in p for p in problems)
    assert any("data.title): text not from the study" in p for p in problems)


def test_public_text_may_contain_a_condition_name(make_study, tmp_path, monkeypatch):
    path = make_study()
    path.write_text(path.read_text().replace('short = "the lungs"', 'short = "alpha cells"'))
    study, report = built(path, tmp_path / "b", monkeypatch)
    assert any("alpha cells" in p.text for p in study.prompts())
    assert report.audit.ok


def test_unequal_image_sizes_are_caught(folder_build):
    study = folder_build
    target = next((survey_dir(study) / "assets").glob("*.jpg"))
    Image.new("RGB", (64, 64)).save(target, format="JPEG")
    assert any("differ in format or size" in p for p in audit(study).problems)


def test_build_fails_and_writes_nothing_when_audit_fails(make_study, tmp_path, monkeypatch):
    study = generated(make_study(), tmp_path / "b", monkeypatch)
    real = build_module.page_data

    def leaky(*args, **kwargs):
        data = real(*args, **kwargs)
        data["debug"] = "condition beta"
        return data

    monkeypatch.setattr(build_module, "page_data", leaky)
    with pytest.raises(SurveyError, match="blinding audit failed.*condition name 'beta'"):
        build_survey(study, workers=1)
    assert not survey_dir(study).exists() and not (key_dir(study) / "key.json").exists()
    assert not list(survey_dir(study).parent.glob(".survey*"))


def test_misshapen_page_data_is_reported_not_a_crash(folder_build):
    study = folder_build
    edit_page(study, '"images":{', '"images":{"Abcd1234":7,')
    with pytest.raises(SurveyError, match="survey data block is not shaped like glidemed's"):
        audit_blinding(study)


def test_page_data_that_is_not_valid_unicode_is_reported_not_a_crash(folder_build):
    study = folder_build
    edit_page(study, '"images":{', '"images":{"Abcd1234":"\\ud800",')
    with pytest.raises(SurveyError, match="survey data block is not usable JSON \\(text that is "
                                          "not valid Unicode"):
        audit_blinding(study)
