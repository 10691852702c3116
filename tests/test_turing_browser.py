"""The Turing survey page in headless Chromium: one image per screen, 1-5 keys, flag, download."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from bs4 import BeautifulSoup

from glidemed.analysis.ingest import ingest_responses
from glidemed.responses.chain import chain_problems
from glidemed.survey.randomize import rater_plan
from tests.survey_factory import settled
from tests.test_survey_browser import SCHEMA, browser, page  # noqa: F401  (fixtures: one Chromium, fresh contexts)
from tests.test_turing import demo  # noqa: F401  (fixture: the built, simulated, analysed turing demo)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def built(demo):
    index = demo["report"].survey_dir / "index.html"
    return {"study": demo["study"], "index": index, "data": demo["data"], "key": demo["key"]}


def test_turing_survey_by_keyboard_with_reload_and_download(page, built):
    page.goto(built["index"].as_uri() + "?rater=turing-1")
    page.get_by_label("Specialty").select_option("radiology")
    page.get_by_label("I agree").check()
    page.get_by_role("button", name="Start").click()
    page.locator("#panel-screen").wait_for(state="visible")
    soup = BeautifulSoup(page.content(), "html.parser")
    assert soup.find(id="panel-heading").get_text() == "Real or generated?"
    assert soup.find(id="prompt").get_text() == "Is this image real or generated?"
    assert [s.get_text() for s in soup.select("#aspects .num")] == ["1", "2", "3", "4", "5"]
    assert "Keys: 1\u20135" in soup.select_one("p.hint").get_text()
    total = len(built["data"]["panels"])
    for pos in range(total):
        assert page.locator("#grid img").count() == 1
        if pos == 10:
            settled(page)
            page.reload()  # autosave: nothing is lost
            page.locator("#panel-screen").wait_for(state="visible")
            assert page.locator("#progress-text").text_content().startswith("Panel 11 of 48")
        if pos == 3:
            page.locator("#flags input").check()
        page.keyboard.press(str(1 + pos % 5))
        page.keyboard.press("Enter")
    page.locator("#done-screen").wait_for(state="visible")
    with page.expect_download() as info:
        page.locator("section:not([hidden]) button.download").click()
    response = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    jsonschema.validate(response, SCHEMA)
    assert chain_problems(response) == [] and response["complete"]
    data = built["data"]
    plan = rater_plan(data["build_hash"], "turing-1", [p["images"] for p in data["panels"]], 1, 0)
    assert response["order"] == [data["panels"][e["panel"]]["token"] for e in plan]
    panels = sorted(response["panels"], key=lambda p: p["position"])
    assert [p["ratings"] for p in panels] == [{"realness": pos % 5} for pos in range(total)]
    assert [p["position"] for p in panels if p["flags"].get("flagged")] == [3]
    assert page.errors == []
    path = built["index"].parent.parent / "returned-turing-1.json"
    path.write_text(json.dumps(response))
    ratings, ledger, _ = ingest_responses(built["study"], built["key"], [path])
    assert ledger["status"].tolist() == ["accepted"] and len(ratings) == total
