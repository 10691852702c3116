"""The rater's reading workstation in headless Chromium: every panel seen whole and large,
images that did not load refused, themes, and Next over a missing answer.

Geometry is checked by bounding boxes at the screen sizes raters use."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from glidemed.survey.build import build_survey
from tests.conftest import ROOT
from tests.survey_factory import generated, settled
from tests.test_survey_browser import browser  # noqa: F401  (fixture: one Chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO = ROOT / "surveys" / "demo" / "study.toml"

BOXES = """() => {
  const box = e => { const b = e.getBoundingClientRect();
                     return {left: b.left, top: b.top, right: b.right, bottom: b.bottom,
                             width: b.width, height: b.height}; };
  const all = s => [...document.querySelectorAll(s)].map(box);
  return {prompt: box(document.getElementById('prompt')), next: box(document.getElementById('next')),
          images: all('#grid img'), choices: all('#aspects .choice'), fieldsets: all('#aspects fieldset'),
          grid: box(document.getElementById('grid')), scrollY: window.scrollY,
          scrollWidth: document.scrollingElement.scrollWidth};
}"""


def built_demo(tmp_path_factory, name: str, extra: str = "", folder: bool = False):
    root = tmp_path_factory.mktemp(name)
    path = root / "study" / "study.toml"
    path.parent.mkdir()
    text = DEMO.read_text()
    path.write_text(text.replace("[survey]\n", f"[survey]\n{extra}", 1))
    with pytest.MonkeyPatch.context() as mp:
        study = generated(path, root / "build", mp)
        report = build_survey(study, workers=1, single_file=not folder)
    return study, report


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return built_demo(tmp_path_factory, "workstation")


def open_panel(browser, report, width: int, height: int, rater: str, query: str = ""):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.goto((report.survey_dir / "index.html").as_uri() if not query else query)
    page.get_by_label("Rater ID").fill(rater)
    page.get_by_label("Specialty").select_option("radiology")
    page.get_by_label("I agree").check()
    page.get_by_role("button", name="Start").click()
    page.locator("#panel-screen").wait_for(state="visible")
    settled(page)
    return context, page


def inside(box: dict, width: int, height: int) -> bool:
    return box["left"] >= 0 and box["top"] >= 0 and box["right"] <= width and box["bottom"] <= height


def check_whole_panel(page, width: int, height: int, min_side: float) -> None:
    settled(page)
    boxes = page.evaluate(BOXES)
    assert boxes["scrollY"] == 0 and boxes["scrollWidth"] <= width
    for name in ("prompt", "next"):
        assert inside(boxes[name], width, height), (name, boxes[name])
    assert len(boxes["images"]) == 4 and len(boxes["choices"]) == 10
    for box in boxes["images"] + boxes["choices"]:
        assert inside(box, width, height), box
    assert min(min(b["width"], b["height"]) for b in boxes["images"]) >= min_side
    grid, first = boxes["grid"], boxes["fieldsets"][0]
    assert grid["right"] <= first["left"]  # images left, questions right


@pytest.mark.parametrize("width, height, min_side", [(1280, 800, 300), (1920, 1080, 450)])
def test_every_panel_fits_the_screen_by_keyboard_and_mouse(browser, demo, width, height, min_side):
    _, report = demo
    context, page = open_panel(browser, report, width, height, f"fit-{width}")
    check_whole_panel(page, width, height, min_side)
    page.keyboard.press("2")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    check_whole_panel(page, width, height, min_side)
    page.locator("#aspects .choice").nth(1).click()
    page.locator("#aspects .choice").nth(7).click()
    page.get_by_role("button", name="Next").click()
    check_whole_panel(page, width, height, min_side)
    page.get_by_role("button", name="Back").click()
    check_whole_panel(page, width, height, min_side)
    # the images are never shown above twice their own size (max_upscale 2, 256 px images)
    assert max(b["width"] for b in page.evaluate(BOXES)["images"]) <= 2 * 256 + 1 or \
        page.evaluate("[...document.querySelectorAll('#grid img')].every("
                      "i => i.getBoundingClientRect().height <= 2 * i.naturalHeight + 1)")
    context.close()


def test_a_phone_stacks_images_above_the_questions(browser, demo):
    _, report = demo
    context, page = open_panel(browser, report, 390, 844, "phone")
    boxes = page.evaluate(BOXES)
    assert boxes["scrollWidth"] <= 390
    assert boxes["grid"]["bottom"] <= boxes["prompt"]["top"] or \
        boxes["grid"]["bottom"] <= boxes["fieldsets"][0]["top"]
    assert not page.locator("p.hint").first.is_visible()  # no keyboard hint on a phone
    context.close()


def test_a_panel_whose_images_did_not_load_cannot_be_rated(browser, tmp_path_factory):
    study, report = built_demo(tmp_path_factory, "failing", folder=True)
    folder = report.survey_dir
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/index.html"
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(url)
        data = json.loads(page.locator("#survey-data").text_content())
        blocked = {data["images"][t].split("/")[-1] for t in data["panels"][0]["images"]} | {
            data["images"][t].split("/")[-1] for p in data["panels"] for t in p["images"]}
        page.route("**/assets/*", lambda route: route.abort()
                   if route.request.url.split("/")[-1] in blocked else route.continue_())
        page.get_by_label("Rater ID").fill("offline")
        page.get_by_label("Specialty").select_option("radiology")
        page.get_by_label("I agree").check()
        page.get_by_role("button", name="Start").click()
        status = page.locator("#image-status")
        expect(status).to_be_visible()
        assert "cannot be rated" in status.text_content()
        assert page.locator("#rate-0-2").is_disabled()
        page.keyboard.press("2")  # refused: nothing recorded
        page.unroute("**/assets/*")
        page.get_by_role("button", name="Load the images again").click()
        expect(status).to_be_hidden()
        expect(page.locator("#rate-0-2")).to_be_enabled()
        with page.expect_download() as info:
            page.locator("#panel-screen button.download").click()
        response = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
        first = next(p for p in response["panels"] if p["position"] == 0)
        assert first["image_failures"] >= 1 and first["ratings"] == {"style": None, "content": None}
        assert response["events"] == []
    finally:
        context.close()
        server.shutdown()


def test_dark_theme_from_the_study_and_the_raters_toggle(browser, tmp_path_factory):
    _, report = built_demo(tmp_path_factory, "dark", 'theme = "dark"\n')
    context, page = open_panel(browser, report, 1280, 800, "night")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(28, 28, 28)"  # a neutral grey, no tint
    assert page.evaluate("[...document.querySelectorAll('#grid img')].every("
                         "i => getComputedStyle(i).filter === 'none')")
    page.get_by_role("button", name="Dark display").click()  # the rater's choice wins, and stays
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.reload()
    page.locator("#panel-screen").wait_for(state="visible")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    context.close()


def test_auto_theme_follows_the_browser(browser, demo):
    _, report = demo
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto((report.survey_dir / "index.html").as_uri())
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    context.close()


def test_next_over_a_missing_answer_asks_once_or_waits(browser, demo, tmp_path_factory):
    _, report = demo
    context, page = open_panel(browser, report, 1280, 800, "hasty")
    page.keyboard.press("1")  # style only
    page.get_by_role("button", name="Next").click()
    note = page.locator("#missing-note")
    expect(note).to_have_text("Content not rated. Press Next again to go on; you can come back "
                              "to this panel later.")
    assert page.locator("#progress-text").text_content().startswith("Panel 1 of")
    page.get_by_role("button", name="Next").click()
    settled(page)
    assert page.locator("#progress-text").text_content().startswith("Panel 2 of")
    context.close()
    _, strict = built_demo(tmp_path_factory, "strict", "require_answers = true\n")
    context, page = open_panel(browser, strict, 1280, 800, "strict")
    for _ in range(2):
        page.get_by_role("button", name="Next").click()
        expect(page.locator("#missing-note")).to_contain_text("rate every scale to go on")
    assert page.locator("#progress-text").text_content().startswith("Panel 1 of")
    context.close()


def test_start_screen_tells_the_effort_and_marks_missing_fields(browser, tmp_path_factory):
    _, report = built_demo(tmp_path_factory, "effort", 'contact = "Dr A. Smith, a.smith@example.org"\n'
                                                      "seconds_per_panel = 30\n")
    context = browser.new_context()
    page = context.new_page()
    page.goto((report.survey_dir / "index.html").as_uri())
    effort = page.locator("#effort").text_content()
    assert effort.startswith("36 panels; about 18 minutes at 30 seconds a panel")
    assert "a.smith@example.org" in page.locator("#start-contact").text_content()
    page.get_by_role("button", name="Start").click()
    assert page.get_by_label("Rater ID").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "rater-id"
    context.close()


def test_the_viewer_zooms_pans_levels_steps_and_keeps_the_rating_keys(browser, demo):
    _, report = demo
    context, page = open_panel(browser, report, 1280, 800, "viewer")
    prompt = page.locator("#prompt").text_content()
    page.locator("#grid button").nth(1).click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    assert page.locator(".viewer-prompt").text_content() == prompt
    assert page.locator(".viewer-caption").text_content() == "Image 2 of 4"
    state = "() => ({scale: parseFloat(getComputedStyle(document.querySelector('.viewer-img')).transform.split('(')[1]), " \
            "filter: getComputedStyle(document.querySelector('.viewer-img')).filter, " \
            "left: document.querySelector('.viewer-img').getBoundingClientRect().left})"
    fitted = page.evaluate(state)
    stage = page.locator(".viewer-stage").bounding_box()
    page.mouse.move(stage["x"] + 100, stage["y"] + 100)
    for _ in range(12):
        page.mouse.wheel(0, -100)
    zoomed = page.evaluate(state)
    assert zoomed["scale"] >= 8  # image pixels shown at least 8 times
    page.mouse.down()
    page.mouse.move(stage["x"] + 300, stage["y"] + 150)
    page.mouse.up()
    assert page.evaluate(state)["left"] > zoomed["left"] + 150  # dragged right
    page.keyboard.press("o")
    assert abs(page.evaluate(state)["scale"] - 1) < 1e-6  # 1:1 (device pixel ratio 1)
    page.keyboard.press("B")
    page.keyboard.press("c")
    assert page.evaluate(state)["filter"] == "brightness(1.1) contrast(0.9)"
    page.keyboard.press("r")
    assert page.evaluate(state)["filter"] == "brightness(1) contrast(1)"
    assert abs(page.evaluate(state)["scale"] - fitted["scale"]) < 1e-6
    page.keyboard.press("ArrowRight")
    assert page.locator(".viewer-caption").text_content() == "Image 3 of 4"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.locator(".viewer-caption").text_content() == "Image 1 of 4"
    page.keyboard.press("3")  # the rating keys work with the viewer open
    page.keyboard.press("4")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert page.locator("#rate-0-3").is_checked() and page.locator("#rate-1-4").is_checked()
    page.keyboard.press("v")  # a key opens it too
    expect(viewer).to_be_visible()
    page.keyboard.press("Escape")
    with page.expect_download() as info:
        page.locator("#panel-screen button.download").click()
    response = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    first = next(p for p in response["panels"] if p["position"] == 0)
    assert first["viewer"]["zoom"] >= 12 and first["viewer"]["one_to_one"] == 1
    assert first["viewer"]["window"] == 2
    assert first["ratings"] == {"style": 3, "content": 4}
    context.close()


def test_the_page_in_german(browser, tmp_path_factory):
    _, report = built_demo(tmp_path_factory, "german", 'language = "de"\n')
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto((report.survey_dir / "index.html").as_uri())
    assert page.evaluate("document.documentElement.lang") == "de"
    assert page.locator("#effort").text_content().startswith("36 Tafeln; etwa 12 Minuten")
    page.get_by_role("button", name="Starten").click()
    assert page.locator("#start-error").text_content().startswith("Geben Sie Ihre Bewerter-ID ein.")
    page.get_by_label("Bewerter-ID").fill("de-1")
    page.get_by_label("Specialty").select_option("radiology")
    page.get_by_label("Ich stimme zu").check()
    page.get_by_role("button", name="Starten").click()
    page.locator("#panel-screen").wait_for(state="visible")
    settled(page)
    assert page.locator("#progress-text").text_content().startswith("Tafel 1 von 36, 0 vollständig bewertet")
    assert page.get_by_role("button", name="Weiter").is_visible()
    page.get_by_role("button", name="Weiter").click()
    expect(page.locator("#missing-note")).to_contain_text("Style und Content nicht bewertet")
    page.get_by_role("button", name="Bild 1 von 4 im Betrachter öffnen").click()
    expect(page.get_by_role("button", name="Schließen")).to_be_visible()
    context.close()


def test_every_language_has_every_text_with_its_fields():
    import re

    from glidemed.survey.texts import languages, page_texts

    english = page_texts("en")
    assert "de" in languages()
    for code in languages():
        table = page_texts(code)
        assert set(table) == set(english), code
        for key, text in table.items():
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", english[key])), (code, key)
