"""WCAG 2.1 AA by axe-core (from the npm registry; `make test` installs it) on every screen
of the survey page, in the light and the dark theme: start, a rating panel, the enlarged
image, the end page, a Turing screen and a pairwise screen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glidemed.survey.build import build_survey
from tests.conftest import ROOT
from tests.survey_factory import generated, settled
from tests.test_survey_browser import browser  # noqa: F401  (fixture: one Chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Path(os.environ.get("GLIDEMED_AXE", ROOT / "build" / "node" / "node_modules" / "axe-core" / "axe.min.js"))
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        message = (f"{AXE}: axe-core not installed; run `make test` (it installs it with npm) "
                   "or set GLIDEMED_AXE to axe.min.js")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def surveys(tmp_path_factory):
    built = {}
    for name in ("demo", "turing-demo", "pairwise-demo"):
        root = tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as mp:
            study = generated(ROOT / "surveys" / name / "study.toml", root / "build", mp)
            built[name] = build_survey(study, workers=1).survey_dir / "index.html"
    return built


def violations(page, axe_source: str) -> list[str]:
    page.add_script_tag(content=axe_source)
    result = page.evaluate("""tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})
                              .then(r => r.violations.map(v => v.id + ': ' + v.help + ' (' +
                                    v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ') + ')'))""", TAGS)
    return result


def start(page) -> None:
    page.get_by_label("Rater ID").fill("a11y")
    if page.get_by_label("Specialty").count():
        page.get_by_label("Specialty").select_option("radiology")
    if page.get_by_label("I agree").is_visible():
        page.get_by_label("I agree").check()
    page.get_by_role("button", name="Start").click()
    page.locator("#panel-screen").wait_for(state="visible")
    settled(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_screen_passes_axe(browser, surveys, axe_source, scheme):
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    found = {}
    page.goto(surveys["demo"].as_uri())
    assert page.evaluate("document.documentElement.dataset.theme") == scheme
    found["start"] = violations(page, axe_source)
    start(page)
    page.keyboard.press("2")
    found["panel"] = violations(page, axe_source)
    page.locator("#grid button").first.click()
    found["enlarged image"] = violations(page, axe_source)
    page.keyboard.press("Escape")
    for name in ("turing-demo", "pairwise-demo"):
        page.goto(surveys[name].as_uri())
        start(page)
        found[name] = violations(page, axe_source)
    page.goto(surveys["pairwise-demo"].as_uri())
    page.locator("#panel-screen").wait_for(state="visible")
    while page.locator("#panel-screen").is_visible():
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")
    assert page.locator("#done-screen").is_visible()
    found["end"] = violations(page, axe_source)
    context.close()
    assert {k: v for k, v in found.items() if v} == {}


def test_axe_reports_a_violation_it_should(browser, surveys, axe_source):
    """The check can fail: an image without a text alternative is reported."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(surveys["demo"].as_uri())
    page.evaluate("document.getElementById('instructions').appendChild(document.createElement('img'))")
    assert any(v.startswith("image-alt") for v in violations(page, axe_source))
    context.close()
