"""Pairwise and two-block surveys in headless Chromium, answered by keyboard with a reload."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from glidemed.analysis.ingest import ingest
from glidemed.survey.build import build_survey
from glidemed.responses.chain import chain_problems
from glidemed.survey.randomize import key_plan
from tests.survey_factory import generated, settled
from tests.test_pairwise import TURING, page_data, pairwise, two_blocks_text  # noqa: F401  (fixture)
from tests.test_survey_browser import SCHEMA, browser, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def download(page) -> dict:
    with page.expect_download() as info:
        page.locator("section:not([hidden]) button.download").click()
    response = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    jsonschema.validate(response, SCHEMA)
    assert chain_problems(response) == []
    return response


def test_pairwise_survey_by_keyboard_with_reload(page, pairwise, tmp_path):
    key = pairwise["key"]
    page.goto((pairwise["report"].survey_dir / "index.html").as_uri() + "?rater=pair-1")
    page.get_by_role("button", name="Start").click()
    page.locator("#panel-screen").wait_for(state="visible")
    assert page.locator("#panel-heading").text_content() == "Which image is better?"
    assert page.locator("#grid figcaption").all_text_contents() == ["Left", "Right"]
    left, right = (page.locator("#grid figure").nth(i).bounding_box() for i in range(2))
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 1  # side by side
    total = len(key["panels"])
    for pos in range(total):
        if pos == 7:
            settled(page)
            page.reload()
            page.locator("#panel-screen").wait_for(state="visible")
            assert page.locator("#progress-text").text_content().startswith(f"Panel 8 of {total}")
        page.keyboard.press(str(1 + pos % 3))  # style: left, equal, right in turn
        page.keyboard.press(str(1 + (pos + 1) % 3))  # content
        page.keyboard.press("Enter")
    page.locator("#done-screen").wait_for(state="visible")
    response = download(page)
    assert response["complete"]
    plan = key_plan(key, "pair-1")
    assert response["order"] == [e["token"] for e in plan]
    panels = sorted(response["panels"], key=lambda p: p["position"])
    assert [p["ratings"] for p in panels] == [{"style": pos % 3, "content": (pos + 1) % 3}
                                              for pos in range(total)]
    assert [p["images"] for p in panels] == [e["images"] for e in plan]
    path = tmp_path / "pair-1.json"
    path.write_text(json.dumps(response))
    answers, ledger, _ = ingest(pairwise["study"], key, [path])
    assert ledger["status"].tolist() == ["accepted"]
    table = answers.table(0)
    first = table[table["panel"] == panels[0]["token"]].set_index("aspect")
    conditions = key["panels"][panels[0]["token"]]["image_conditions"]
    assert [first.loc["style", "left"], first.loc["style", "right"]] == [conditions[t] for t in panels[0]["images"]]
    assert page.errors == []


@pytest.fixture(scope="module")
def two_blocks(tmp_path_factory):
    root = tmp_path_factory.mktemp("blocks")
    path = root / "study" / "study.toml"
    path.parent.mkdir()
    path.write_text(two_blocks_text())
    for item in TURING.parent.iterdir():
        if item.is_dir():
            (path.parent / item.name).symlink_to(item)
    with pytest.MonkeyPatch.context() as mp:
        study = generated(path, root / "build", mp)
        report = build_survey(study, workers=1)
    return {"study": study, "report": report, "key": json.loads(report.key_path.read_text()),
            "data": page_data(report), "root": root}


def test_two_block_survey_turing_then_ratings_with_reload(page, two_blocks):
    data, key = two_blocks["data"], two_blocks["key"]
    n_turing, n_ratings = (b["panels"] for b in data["blocks"])
    page.goto((two_blocks["report"].survey_dir / "index.html").as_uri() + "?rater=both-1")
    page.get_by_label("Specialty").select_option("pathology")
    page.get_by_label("I agree").check()
    page.get_by_role("button", name="Start").click()
    page.locator("#panel-screen").wait_for(state="visible")
    total = n_turing + n_ratings
    for pos in range(total):
        if pos == n_turing:  # the ratings block starts with its own instructions
            page.locator("#block-screen").wait_for(state="visible")
            assert page.locator("#block-instructions").text_content() == "Now rate the images."
            assert page.locator("#block-heading").text_content() == "Part 2 of 2"
            settled(page)
            page.reload()  # the instructions screen comes back after a reload
            page.locator("#block-screen").wait_for(state="visible")
            page.keyboard.press("Enter")  # Continue has the focus
            page.locator("#panel-screen").wait_for(state="visible")
        if pos == 5 or pos == n_turing + 2:
            settled(page)
            page.reload()
            page.locator("#panel-screen").wait_for(state="visible")
            assert page.locator("#progress-text").text_content().startswith(f"Panel {pos + 1} of {total}")
        if pos < n_turing:
            assert page.locator("#grid img").count() == 1
            assert page.locator("#panel-heading").text_content() == "Real or generated?"
            page.keyboard.press(str(1 + pos % 5))
        else:
            assert page.locator("#grid img").count() == 2
            page.keyboard.press(str(pos % 5))
            page.keyboard.press(str((pos + 2) % 5))
        page.keyboard.press("Enter")
    page.locator("#done-screen").wait_for(state="visible")
    response = download(page)
    assert response["complete"] and len(response["order"]) == total
    assert response["order"] == [e["token"] for e in key_plan(key, "both-1")]
    panels = sorted(response["panels"], key=lambda p: p["position"])
    assert [p["ratings"] for p in panels[:n_turing]] == [{"realness": pos % 5} for pos in range(n_turing)]
    assert [p["ratings"] for p in panels[n_turing:]] == [{"style": pos % 5, "content": (pos + 2) % 5}
                                                         for pos in range(n_turing, total)]
    path = two_blocks["root"] / "both-1.json"
    path.write_text(json.dumps(response))
    answers, ledger, _ = ingest(two_blocks["study"], key, [path])
    assert ledger["status"].tolist() == ["accepted"]
    assert len(answers.table(0)) == n_turing and len(answers.table(1)) == 2 * n_ratings
    assert page.errors == []
