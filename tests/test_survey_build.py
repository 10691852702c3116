"""glidemed build: the survey page (parsed, not regex-matched), the key, options and errors."""

from __future__ import annotations

import json
import os

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from PIL import Image
from survey_factory import CONTROL_CONDITION, built, generated

from glidemed.cli import main
from glidemed.errors import StudyError, SurveyError
from glidemed.paths import images_dir, key_dir, survey_dir
from glidemed.study import load_study
from glidemed.survey import build as build_module
from glidemed.survey.build import build_survey
from glidemed.survey.key import TOKEN_RE, load_key

HOSTILE = '<script>window.pwned=1</script></script><img src=x onerror="window.pwned=2"> & {description}'


def page(study) -> tuple[BeautifulSoup, dict]:
    html = (survey_dir(study) / "index.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(html, "html.parser")
    return soup, json.loads(soup.find("script", id="survey-data").string)


def test_single_file_is_self_contained(make_study, tmp_path, monkeypatch):
    study, report = built(make_study(), tmp_path / "b", monkeypatch)
    assert sorted(p.name for p in survey_dir(study).iterdir()) == ["index.html"]
    soup, data = page(study)
    assert [s.get("src") for s in soup.find_all("script")] == [None, None]
    assert soup.find("link") is None and soup.find("style", id="survey-css") is not None
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert all(src.startswith("data:image/webp;base64,") for src in data["images"].values())
    assert len(data["panels"]) == report.panels == 16
    assert report.size_bytes == (survey_dir(study) / "index.html").stat().st_size


def test_page_names_controls_for_screen_readers(make_study, tmp_path, monkeypatch):
    study, _ = built(make_study(), tmp_path / "b", monkeypatch)
    soup, _ = page(study)
    buttons = {b.get_text(strip=True) for b in soup.find_all("button")}
    assert {"Start", "Back", "Next", "Download responses"} <= buttons
    assert soup.find("label", attrs={"for": "rater-id"}).get_text() == "Rater ID"
    assert soup.find("label", attrs={"for": "comment"}) is not None
    assert soup.find(id="progress-text")["aria-live"] == "polite"
    assert soup.find(id="storage-warning")["role"] == "alert"
    assert soup.find("meta", attrs={"name": "viewport"}) is not None


def test_folder_mode_writes_assets(make_study, tmp_path, monkeypatch):
    study, report = built(make_study(), tmp_path / "b", monkeypatch, single_file=False)
    folder = survey_dir(study)
    soup, data = page(study)
    assert soup.find("script", src=True)["src"] == "assets/survey.js"
    assert soup.find("link", rel="stylesheet")["href"] == "assets/survey.css"
    for token, src in data["images"].items():
        assert src == f"assets/{token}.webp" and (folder / src).is_file()
    assert len(list((folder / "assets").iterdir())) == report.images + 2


def test_key_stays_outside_and_matches_page(make_study, tmp_path, monkeypatch):
    study, report = built(make_study(), tmp_path / "b", monkeypatch)
    key = load_key(key_dir(study) / "key.json").data
    _, data = page(study)
    assert key["build_hash"] == data["build_hash"] == report.build_hash
    assert set(key["panels"]) == {p["token"] for p in data["panels"]}
    assert {(p["prompt_id"], p["condition"]) for p in key["panels"].values()} == {
        (pr.id, c) for pr in study.prompts() for c in ("alpha", "beta")}
    for panel in data["panels"]:
        assert TOKEN_RE.match(panel["token"]) and set(panel) == {"token", "text", "images"}
        assert set(panel["images"]) == set(key["panels"][panel["token"]]["images"])
    assert not any(p.name.startswith("key") for p in survey_dir(study).rglob("*"))
    manifest = json.loads((key_dir(study) / "build.json").read_text())
    assert manifest["build_hash"] == report.build_hash and "index.html" in manifest["files"]


def test_rebuild_keeps_tokens_unless_asked(make_study, tmp_path, monkeypatch):
    study, first = built(make_study(), tmp_path / "b", monkeypatch)
    key1 = load_key(key_dir(study) / "key.json").data
    second = build_survey(study, single_file=False, workers=1)
    key2 = load_key(key_dir(study) / "key.json").data
    assert key1["panels"] == key2["panels"] and first.build_hash == second.build_hash
    assert not (key_dir(study) / "previous").exists()
    third = build_survey(study, new_tokens=True, workers=1)
    key3 = load_key(key_dir(study) / "key.json").data
    assert not set(key3["panels"]) & set(key1["panels"])
    assert third.build_hash != first.build_hash
    kept = key_dir(study) / "previous" / f"key-{first.build_hash[:16]}.json"
    assert load_key(kept).data == key2 and str(kept) in third.warnings[0]


def test_prompt_markup_is_data_not_html(make_study, tmp_path, monkeypatch):
    path = make_study()
    text = path.read_text().replace("A histopathological image of {description}",
                                    HOSTILE.replace('"', '\\"'))
    path.write_text(text)
    study, _ = built(path, tmp_path / "b", monkeypatch)
    soup, data = page(study)
    assert [s.get("id") for s in soup.find_all("script")] == ["survey-data", "survey-js"]
    assert soup.find("img") is None or soup.find("img").get("onerror") is None
    hostile = [p["text"] for p in data["panels"] if "pwned" in p["text"]]
    assert hostile and all(t.startswith("<script>window.pwned=1</script></script>") for t in hostile)


def test_missing_images_listed_or_left_out(make_study, tmp_path, monkeypatch):
    study = generated(make_study(), tmp_path / "b", monkeypatch)
    os.remove(images_dir(study) / "alpha" / "histo.lungs.short" / "01.png")
    (images_dir(study) / "beta" / "xray.heart.detailed" / "00.png").write_bytes(b"corrupt")
    with pytest.raises(SurveyError) as err:
        build_survey(study, workers=1)
    message = str(err.value)
    assert "2 panel(s)" in message and "alpha/histo.lungs.short" in message
    assert "beta/xray.heart.detailed" in message and not survey_dir(study).exists()
    report = build_survey(study, leave_out_missing=True, workers=1)
    assert report.panels == 14
    assert {(x["condition"], x["prompt_id"]) for x in report.left_out} == {
        ("alpha", "histo.lungs.short"), ("beta", "xray.heart.detailed")}
    assert load_key(key_dir(study) / "key.json").data["left_out"] == report.left_out


def test_no_images_at_all(make_study, tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "b"))
    with pytest.raises(SurveyError, match="glidemed generate small"):
        build_survey(load_study(make_study()))


def test_images_share_format_and_size(make_study, tmp_path, monkeypatch):
    path = make_study()
    path.write_text(path.read_text().replace(
        'name = "beta"\ngenerator = "placeholder"\nparams = { size = 32 }',
        'name = "beta"\ngenerator = "placeholder"\nparams = { size = 48 }'))
    study, report = built(path, tmp_path / "b", monkeypatch, image_format="png")
    assert [c.params["size"] for c in study.conditions] == [32, 48]  # sources do differ
    assert report.encoding.size == 32
    _, data = page(study)
    import base64
    import io
    shapes = set()
    for src in data["images"].values():
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            shapes.add((im.format, im.size))
    assert shapes == {("PNG", (32, 32))}


def test_controls_and_examples(make_study, tmp_path, monkeypatch):
    folder = tmp_path / "study"
    refs = folder / "refs"
    refs.mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 10, 10)).save(refs / "ref-a.png")
    Image.new("RGB", (40, 40), (10, 200, 10)).save(folder / "level4.png")
    (refs / "images.csv").write_text("file,prompt_id\nref-a.png,xray.lungs.short\n")
    path = make_study(folder=folder, extra=CONTROL_CONDITION + """
        [survey]
        conditions = ["alpha"]
        controls = ["real"]
        repeat_panels = 2

        [[survey.examples]]
        aspect = "style"
        level = 4
        file = "level4.png"
        caption = "a perfect style"
        """)
    study, report = built(path, tmp_path / "b", monkeypatch)
    key = load_key(key_dir(study) / "key.json").data
    controls = [p for p in key["panels"].values() if p["control"]]
    assert key["conditions"] == ["alpha", "real"] and report.panels == 9
    assert [(c["prompt_id"], len(c["images"])) for c in controls] == [("xray.lungs.short", 1)]
    _, data = page(study)
    assert data["repeat_panels"] == 2
    assert [(e["aspect"], e["level"], e["caption"]) for e in data["examples"]] == [
        ("style", 4, "a perfect style")]
    assert data["examples"][0]["image"] in data["images"]


def image_part(study) -> int:
    """Bytes of the page's embedded images (their data: addresses)."""
    return sum(len(uri) for uri in page(study)[1]["images"].values())


def test_size_warning(make_study, tmp_path, monkeypatch):
    path = make_study(extra="[survey]\nmax_file_mb = 0\n")
    monkeypatch.setattr(build_module, "SIZE_WARNING_BYTES", 1000)
    _, report = built(path, tmp_path / "b", monkeypatch)
    page_file = report.survey_dir / "index.html"
    assert report.encoding.quality == 75 and report.warnings == [
        f"{page_file} is {page_file.stat().st_size / 1e6:.1f} MB, more than [survey] max_file_mb "
        "(0.001 MB) even at image quality 75: use --image-format webp, a smaller --image-size, "
        "or host the survey with --folder"]
    monkeypatch.setattr(build_module, "SIZE_WARNING_BYTES", page_file.stat().st_size)
    assert built(path, tmp_path / "b", monkeypatch)[1].warnings == []


def test_quality_lowered_to_fit_the_budget(make_study, tmp_path, monkeypatch):
    study, report = built(make_study(), tmp_path / "b", monkeypatch)
    at_75 = image_part(study)
    assert report.encoding.quality == 75 and report.warnings == []
    size = (report.survey_dir / "index.html").stat().st_size
    budget_mb = (size - 0.08 * at_75) / 1e6
    path = make_study(extra=f"[survey]\nmax_file_mb = {budget_mb!r}\n")
    study, report = built(path, tmp_path / "b", monkeypatch)
    quality = report.encoding.quality
    assert 50 <= quality < 75 and quality % 5 == 0
    assert report.size_bytes == (report.survey_dir / "index.html").stat().st_size <= budget_mb * 1e6
    assert report.warnings[0] == (
        f"image quality lowered from 75 to {quality} for every image alike, to keep the single "
        f"file under {budget_mb:g} MB ([survey] max_file_mb); host the survey with --folder "
        "to keep 75")
    build_record = json.loads((key_dir(study) / "build.json").read_text())
    assert build_record["options"]["image_quality"] == quality
    # a folder has no budget; a budget nothing fits keeps the study's quality
    assert built(path, tmp_path / "b", monkeypatch, single_file=False)[1].encoding.quality == 75
    tiny = make_study(extra="[survey]\nmax_file_mb = 0.001\n")
    _, report = built(tiny, tmp_path / "b", monkeypatch)
    assert report.encoding.quality == 75 and "even at image quality 75" in report.warnings[0]


def test_cli_build_and_audit(make_study, tmp_path, monkeypatch):
    study = generated(make_study(), tmp_path / "b", monkeypatch)
    runner = CliRunner()
    result = runner.invoke(main, ["build", str(study.path), "--image-format", "webp",
                                  "--image-quality", "60"])
    assert result.exit_code == 0, result.output
    assert "16 panels" in result.output and "webp q60" in result.output and "MB" in result.output
    result = runner.invoke(main, ["audit-blinding", str(study.path)])
    assert result.exit_code == 0 and "blinding audit passed" in result.output
    os.remove(images_dir(study) / "alpha" / "histo.heart.short" / "00.png")
    result = runner.invoke(main, ["build", str(study.path)])
    assert result.exit_code == 1 and "alpha/histo.heart.short" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["build", str(study.path), "--leave-out-missing"])
    assert result.exit_code == 0 and "left out alpha/histo.heart.short" in result.output


def test_cli_audit_without_build(make_study, tmp_path, monkeypatch):
    study = generated(make_study(), tmp_path / "b", monkeypatch)
    result = CliRunner().invoke(main, ["audit-blinding", str(study.path)])
    assert result.exit_code == 1 and "glidemed build" in result.output


def test_invalid_old_key_is_not_overwritten(make_study, tmp_path, monkeypatch):
    study, _ = built(make_study(), tmp_path / "b", monkeypatch)
    key_path = key_dir(study) / "key.json"
    key_path.write_text("{ not json")
    with pytest.raises(SurveyError, match="key.json"):
        build_survey(study, workers=1)
    assert key_path.read_text() == "{ not json"


def test_disk_full_leaves_no_half_survey(make_study, tmp_path, monkeypatch):
    import errno

    from glidemed.errors import GlidemedError
    study, first = built(make_study(), tmp_path / "b", monkeypatch)
    before = (survey_dir(study) / "index.html").read_bytes()
    real_write = build_module._write_folder

    def full_disk(folder, *args):
        real_write(folder, *args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build_module, "_write_folder", full_disk)
    with pytest.raises(GlidemedError, match="No space left on device"):
        build_survey(study, new_tokens=True, workers=1)
    assert (survey_dir(study) / "index.html").read_bytes() == before
    assert load_key(key_dir(study) / "key.json").data["build_hash"] == first.build_hash
    assert sorted(p.name for p in survey_dir(study).parent.iterdir()) == ["images", "key", "survey"]


def test_post_url_is_the_only_allowed_connection(make_study, tmp_path, monkeypatch):
    path = make_study(extra='[survey]\npost_url = "https://example.org/collect?x=1"\n')
    study, _ = built(path, tmp_path / "b", monkeypatch)
    soup, data = page(study)
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
    assert "connect-src https://example.org;" in csp
    assert data["post_url"] == "https://example.org/collect?x=1"


def test_no_condition_generator_or_seed_in_any_byte(make_study, tmp_path, monkeypatch):
    """Independent of the audit: search every file and every decoded image byte."""
    import base64
    import re

    from glidemed.generate.manifest import load_manifest
    for single in (True, False):
        study, _ = built(make_study(folder=tmp_path / f"s{single}"), tmp_path / f"b{single}",
                         monkeypatch, single_file=single)
        seeds = {str(r["seed"]).encode() for r in load_manifest(images_dir(study)).values()}
        needles = {b"alpha", b"beta", b"placeholder", *seeds}
        blobs = []
        for path in survey_dir(study).rglob("*"):
            if path.is_file():
                blobs.append(path.relative_to(survey_dir(study)).as_posix().encode())
                data = path.read_bytes()
                blobs += [base64.b64decode(m) for m in re.findall(rb"base64,([A-Za-z0-9+/=]+)", data)]
                blobs.append(re.sub(rb"base64,[A-Za-z0-9+/=]+", b"", data))
        assert len(blobs) > 64
        for blob in blobs:
            low = blob.lower()
            assert not [n for n in needles if re.search(rb"(?<![a-z0-9])" + n + rb"(?![a-z0-9])", low)]


def test_post_url_must_be_http(make_study):
    path = make_study(extra='[survey]\npost_url = "javascript:alert(1)"\n')
    with pytest.raises(StudyError, match="survey.post_url: expected an http"):
        load_study(path)


def test_keyboard_hint_follows_the_scale():
    from bs4 import BeautifulSoup

    from glidemed.survey.render import render_page, survey_context

    data = {"blocks": [{"first_value": 0, "aspects": [{"key": "quality", "label": "Quality",
                                                       "question": "", "levels": ["bad", "fair", "good"]}]}]}
    page = BeautifulSoup(render_page(survey_context(data, single_file=True)), "html.parser")
    assert page.select_one("p.hint").get_text().startswith("Keys: 0\u20132 rate")
