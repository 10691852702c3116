"""The survey page in headless Chromium: keyboard, mouse, reloads, downloads, hostile text.

Needs Debian's chromium at /usr/bin/chromium (skipped with an install hint otherwise).
One browser serves the whole module; each test gets a fresh context (empty storage).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import jsonschema
import pytest
from playwright import sync_api
from playwright.sync_api import expect
from conftest import SMALL_STUDY
from survey_factory import ARGS, CHROMIUM, require_chromium, generated, settled

from glidemed.paths import survey_dir
from glidemed.survey.build import build_survey
from glidemed.analysis.ingest import ingest_responses
from glidemed.responses.chain import chain_problems
from glidemed.survey.key import load_key
from glidemed.survey.randomize import rater_plan

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCHEMA = json.loads((Path(__file__).parent.parent / "glidemed" / "schemas" /
                     "response.schema.json").read_text())
HOSTILE = '<script>window.pwned=1</script><img src=x onerror=window.pwned=2> & {description}'
CONSENT = 'consent = "I agree to take part."\n'  # a top-level key: goes before any table
EXTRA = f"""
[[styles]]
key = "hostile"
label = "Hostile"
template = '{HOSTILE}'

[survey]
repeat_panels = 2

[[survey.profile]]
key = "specialty"
label = "Specialty"
choices = ["pathology", "radiology"]
required = true

[[survey.profile]]
key = "years"
label = "Years of experience"
"""


@pytest.fixture(scope="module")
def browser():
    require_chromium()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A built single-file survey: 12 prompts x 2 conditions + 2 repeats = 26 positions."""
    root = tmp_path_factory.mktemp("survey")
    study_path = root / "study" / "study.toml"
    study_path.parent.mkdir()
    text = SMALL_STUDY.format(images_per_prompt=6, images_per_panel=4)
    study_path.write_text(CONSENT + text + EXTRA)
    with pytest.MonkeyPatch.context() as mp:
        study = generated(study_path, root / "build", mp)
        report = build_survey(study, workers=1)
        folder_report = build_survey(study, single_file=False, workers=1,
                                     out_dir=root / "folder-survey", key_folder=root / "folder-key")
        index = survey_dir(study) / "index.html"
    data = json.loads(index.read_text().split('id="survey-data">', 1)[1].split("</script>", 1)[0])
    return {"study": study, "index": index, "data": data, "report": report,
            "folder_index": folder_report.survey_dir / "index.html"}


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    yield page
    context.close()


def open_survey(page, index: Path, rater: str | None = "r1") -> None:
    url = index.as_uri() + (f"?rater={rater}" if rater is not None else "")
    page.goto(url)


def start(page, specialty: str = "pathology") -> None:
    page.get_by_label("Specialty").select_option(specialty)
    page.get_by_label("Years of experience").fill("7")
    page.get_by_label("I agree").check()
    page.get_by_role("button", name="Start").click()
    page.locator("#panel-screen").wait_for(state="visible")


def position(page) -> int:
    settled(page)  # keys typed ahead are applied once the panel's images show
    return int(page.locator("#progress-text").text_content().split()[1]) - 1


def download(page) -> dict:
    button = page.locator("section:not([hidden]) button.download")
    with page.expect_download() as info:
        button.click()
    response = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    jsonschema.validate(response, SCHEMA)
    assert chain_problems(response) == []
    return response


def expected_order(survey, rater: str) -> list[dict]:
    data = survey["data"]
    return rater_plan(data["build_hash"], rater, [p["images"] for p in data["panels"]],
                      data["blocks"][0]["images_per_panel"], data["repeat_panels"])


def check_plan(survey, response) -> None:
    plan = expected_order(survey, response["rater"]["id"])
    tokens = [survey["data"]["panels"][e["panel"]]["token"] for e in plan]
    assert response["order"] == tokens
    for entry, panel in zip(plan, sorted(response["panels"], key=lambda p: p["position"])):
        assert panel["images"] == entry["images"] and panel["repeat"] == entry["repeat"]
    for panel in response["panels"]:
        if panel["repeat"]:
            first = next(p for p in response["panels"]
                         if p["token"] == panel["token"] and not p["repeat"])
            assert sorted(first["images"]) == sorted(panel["images"])
            assert all(a != b for a, b in zip(first["images"], panel["images"]))


def whole_panel_in_view(page) -> bool:
    """The panel opens at its top, its prompt and Next inside the 1280 x 800 window."""
    return page.evaluate("""() => scrollY === 0 && ['prompt', 'next'].every(id => {
        const box = document.getElementById(id).getBoundingClientRect();
        return box.top >= 0 && box.bottom <= innerHeight; })""")


def test_keyboard_rates_every_panel(page, survey):
    open_survey(page, survey["index"], "kb-rater")
    start(page)
    total = len(expected_order(survey, "kb-rater"))
    assert total == 26
    for pos in range(total):
        assert position(page) == pos
        assert page.locator("#grid img").count() == 4 and whole_panel_in_view(page)
        page.keyboard.press(str(pos % 5))
        page.keyboard.press(str((pos + 2) % 5))
        page.keyboard.press("Enter")
    page.locator("#done-screen").wait_for(state="visible")
    assert "all 26 panels" in page.locator("#done-text").text_content()
    response = download(page)
    assert response["complete"] and response["completed"]
    assert response["rater"] == {"id": "kb-rater", "profile": {"specialty": "pathology", "years": "7"}}
    assert [p["ratings"] for p in response["panels"]] == [
        {"style": pos % 5, "content": (pos + 2) % 5} for pos in range(total)]
    check_plan(survey, response)
    page.keyboard.press("ArrowLeft")  # on the done screen: nothing happens
    page.get_by_role("button", name="Back").click()
    assert position(page) == total - 1
    page.locator("#next").focus()  # arrows outside a scale change the panel
    page.keyboard.press("ArrowLeft")
    assert position(page) == total - 2
    page.locator("#next").focus()
    page.keyboard.press("ArrowRight")
    assert position(page) == total - 1
    expect(page.locator("#rate-0-1")).to_be_enabled()  # once the images show
    page.locator("#rate-0-1").focus()  # inside a scale they move the choice
    page.keyboard.press("ArrowRight")
    assert position(page) == total - 1 and page.locator("#rate-0-2").is_checked()
    assert page.errors == [] and page.evaluate("window.pwned") is None
    assert all(url.startswith(("file:", "data:", "blob:")) for url in page.requests)


def test_mouse_rates_every_panel(page, survey):
    open_survey(page, survey["index"], None)
    page.get_by_label("Rater ID").fill("mouse rater")
    page.get_by_role("button", name="Start").click()
    assert "Specialty" in page.locator("#start-error").text_content()
    start(page, "radiology")
    total = 26
    for pos in range(total):
        assert whole_panel_in_view(page)
        page.get_by_role("radio", name=f"Style {(pos * 3) % 5}", exact=True).click()
        page.get_by_role("radio", name=f"Content {pos % 5}", exact=True).click()
        if pos == 3:
            page.get_by_label("Nonsensical prompt").check()
            page.get_by_label("Comment (optional)").fill("odd prompt")
        page.get_by_role("button", name="Next").click()
    response = download(page)
    assert response["complete"]
    assert [(p["ratings"]["style"], p["ratings"]["content"]) for p in response["panels"]] == [
        ((pos * 3) % 5, pos % 5) for pos in range(total)]
    flagged = [p for p in response["panels"] if p["flags"]["nonsensical"]]
    assert [(p["position"], p["comment"]) for p in flagged] == [(3, "odd prompt")]
    check_plan(survey, response)
    assert page.errors == []


def test_random_reloads_lose_nothing(page, survey):
    """Fault suite: reload at random points, even between two answers of one panel."""
    rng = random.Random(4)
    open_survey(page, survey["index"], "reloader")
    start(page)
    expected: dict[int, dict] = {}
    reloads = 0
    for step in range(60):
        pos = position(page)
        action = rng.choice(["style", "content", "flag", "comment", "next", "next", "back"])
        answers = expected.setdefault(pos, {"style": None, "content": None, "flag": False,
                                            "comment": ""})
        if action in ("style", "content"):
            value = rng.randrange(5)
            page.get_by_role("radio", name=f"{action.title()} {value}", exact=True).check()
            answers[action] = value
        elif action == "flag":
            answers["flag"] = not answers["flag"]
            page.get_by_label("Nonsensical prompt").set_checked(answers["flag"])
        elif action == "comment":
            answers["comment"] = f"note {step} ü"
            page.get_by_label("Comment (optional)").fill(answers["comment"])
        elif action == "next" and pos < 25:
            page.get_by_role("button", name="Next").click()
        elif action == "back" and pos > 0:
            page.get_by_role("button", name="Back").click()
        if rng.random() < 0.3:
            reloads += 1
            settled(page)
            page.reload()
            page.locator("#panel-screen").wait_for(state="visible")
            pos = position(page)
            shown = expected.get(pos)
            if shown:
                for aspect in ("style", "content"):
                    if shown[aspect] is not None:
                        name = f"{aspect.title()} {shown[aspect]}"
                        assert page.get_by_role("radio", name=name, exact=True).is_checked()
                assert page.get_by_label("Comment (optional)").input_value() == shown["comment"]
    assert reloads >= 10
    response = download(page)
    got = {p["position"]: {"style": p["ratings"]["style"], "content": p["ratings"]["content"],
                           "flag": p["flags"]["nonsensical"], "comment": p["comment"]}
           for p in response["panels"]}
    assert got == expected
    assert page.errors == []


def test_hostile_prompt_is_inert_text(page, survey):
    open_survey(page, survey["index"], "h")
    start(page)
    texts = []
    for _ in range(26):
        texts.append(page.locator("#prompt").text_content())
        if "pwned" in texts[-1]:
            assert page.locator("#prompt img, #prompt script").count() == 0
        page.keyboard.press("Enter")  # unrated: the page asks first
        page.locator("#missing-note").wait_for(state="visible")
        page.keyboard.press("Enter")
    hostile = [t for t in texts if "pwned" in t]
    assert len(hostile) >= 8
    assert all(t == HOSTILE.replace("{description}", t.split("& ", 1)[1]) for t in hostile)
    assert page.evaluate("window.pwned") is None and page.errors == []


def test_chain_of_tricky_comments_matches_python(page, survey):
    open_survey(page, survey["index"], "chain")
    start(page)
    comments = ['quote " backslash \\ slash / tab \t newline \n', "é ñ 中文 😀 \u2028\u2029",
                "ctrl \u0001\u001f del \u007f"]
    for text in comments:
        page.get_by_label("Comment (optional)").fill(text)
        page.keyboard.press("Tab")
        page.get_by_role("button", name="Next").click()  # unrated: the page asks first
        page.get_by_role("button", name="Next").click()
    page.evaluate("""() => { const c = document.getElementById('comment');
        c.value = 'lone \\ud800 surrogate'; c.dispatchEvent(new Event('input')); }""")
    response = download(page)  # validates the chain with glidemed.responses.chain
    assert [p["comment"] for p in response["panels"][:4]] == comments + ["lone \ufffd surrogate"]
    assert [e["field"] for e in response["events"]] == ["comment"] * 4


def test_odd_rater_id_and_partial_download(page, survey):
    rater = "../<b>Dr O'Neil</b> & co?"
    from urllib.parse import quote
    page.goto(survey["index"].as_uri() + "?rater=" + quote(rater))
    assert page.get_by_label("Rater ID").input_value() == rater
    start(page)
    page.keyboard.press("2")
    button = page.locator("#panel-screen button.download")
    with page.expect_download() as info:
        button.click()
    digest = hashlib.sha256(rater.encode()).hexdigest()[:8]  # keeps two such ids apart
    assert info.value.suggested_filename == f"response-small-_b_Dr_O_Neil_b_co_-{digest}.json"
    response = json.loads(Path(info.value.path()).read_text())
    jsonschema.validate(response, SCHEMA)
    assert response["rater"]["id"] == rater and not response["complete"]
    assert len(response["panels"]) == 1 and response["panels"][0]["ratings"]["style"] == 2
    assert page.locator("#title").text_content() == "Small test study"


def test_storage_failure_tells_rater_to_download(browser, survey):
    context = browser.new_context(accept_downloads=True)
    context.add_init_script("Storage.prototype.setItem = function () {"
                            " throw new DOMException('full', 'QuotaExceededError'); };")
    page = context.new_page()
    open_survey(page, survey["index"], "nostore")
    warning = page.get_by_role("alert").filter(has_text="Download your responses now")
    assert warning.is_visible()
    start(page)
    page.keyboard.press("4")
    assert warning.is_visible()
    response = download(page)
    assert response["panels"][0]["ratings"]["style"] == 4
    context.close()


def test_folder_build_runs_from_file_urls(page, survey):
    open_survey(page, survey["folder_index"], "f")
    start(page)
    assert page.locator("#grid img").count() == 4
    loaded = page.evaluate("""() => Array.from(document.querySelectorAll('#grid img'))
        .map(img => img.complete && img.naturalWidth)""")
    assert all(w == 32 for w in loaded)
    page.locator("#grid button").first.click()
    assert page.locator("#viewer").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#viewer").is_visible()
    page.keyboard.press("1")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    assert position(page) == 1 and page.errors == []


def test_images_load_in_single_file(page, survey):
    open_survey(page, survey["index"], "img")
    start(page)
    widths = page.evaluate("""async () => { const imgs = [...document.querySelectorAll('#grid img')];
        await Promise.all(imgs.map(i => i.decode())); return imgs.map(i => i.naturalWidth); }""")
    assert widths == [32, 32, 32, 32]


@pytest.fixture
def collector():
    """A local HTTP server that accepts POSTed responses: yields (its URL, what it received)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Collect(BaseHTTPRequestHandler):
        def _cors(self):
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.send_header("Access-Control-Allow-Private-Network", "true")

        def do_OPTIONS(self):
            self.send_response(204)
            self._cors()
            self.end_headers()

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self._cors()
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/collect", received
    finally:
        server.shutdown()


def posting_survey(tmp_path, monkeypatch, url: str) -> Path:
    """A 16-panel single-file survey (no profile, no consent) that POSTs to ``url``."""
    root = tmp_path / "study"
    root.mkdir()
    (root / "study.toml").write_text(
        SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2)
        + f'\n[survey]\npost_url = "{url}"\n')
    study = generated(root / "study.toml", tmp_path / "build", monkeypatch)
    return build_survey(study, workers=1).survey_dir / "index.html"


def rate_until_sent(page, digits: str, advance) -> None:
    """Start, rate all 16 panels by typing ``digits`` (one per aspect), moving on with
    ``advance(position)``, and wait until the page reports the POST."""
    page.get_by_role("button", name="Start").click()
    for pos in range(16):
        for digit in digits:
            page.keyboard.press(digit)
        advance(pos)
    page.locator("#post-status").filter(has_text="were sent").wait_for(timeout=5000)


def test_post_to_investigator_and_download_stays(page, tmp_path, monkeypatch, collector):
    url, received = collector
    open_survey(page, posting_survey(tmp_path, monkeypatch, url), "poster")
    rate_until_sent(page, "12", lambda pos: page.keyboard.press("Enter"))
    response = download(page)
    settled(page)
    page.reload()  # back on the last page: the same answers are not sent twice
    page.locator("#done-screen").wait_for(state="visible")
    page.get_by_role("button", name="Back").click()
    page.keyboard.press("Enter")
    page.locator("#done-screen").wait_for(state="visible")
    page.wait_for_timeout(300)
    assert len(received) == 1 and received[0]["chain"] == response["chain"]
    assert received[0]["complete"] and received[0]["rater"]["id"] == "poster"


def test_edited_last_comment_is_posted_again(page, tmp_path, monkeypatch, collector):
    """Editing the comment just written adds no event, yet the changed answers are sent."""
    url, received = collector
    open_survey(page, posting_survey(tmp_path, monkeypatch, url), "editor")

    def comment_last_then_next(pos: int) -> None:
        if pos == 15:
            page.get_by_label("Comment (optional)").fill("first thought")
        page.get_by_role("button", name="Next").click()

    rate_until_sent(page, "30", comment_last_then_next)
    page.get_by_role("button", name="Back").click()
    page.get_by_label("Comment (optional)").fill("second thought")
    page.get_by_role("button", name="Next").click()
    page.locator("#done-screen").wait_for(state="visible")
    page.locator("#post-status").filter(has_text="were sent").wait_for(timeout=5000)
    response = download(page)
    assert len(received) == 2 and received[1]["chain"] == response["chain"]
    assert received[1]["panels"][-1]["comment"] == "second thought"


def test_chain_covers_every_sha256_padding_case(page, survey):
    """Events whose hashed text grows one character at a time: every length mod 64."""
    open_survey(page, survey["index"], "lengths")
    start(page)
    page.evaluate("""() => {
        const c = document.getElementById('comment');
        for (let n = 0; n < 140; n++) {
            document.getElementById('rate-0-' + (n % 5)).click();
            c.value = 'x'.repeat(n) + (n % 3 ? 'é' : '');
            c.dispatchEvent(new Event('input'));
        } }""")
    response = download(page)
    assert len(response["events"]) == 280


def test_phone_layout_and_touch(browser, survey):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                                  has_touch=True, accept_downloads=True)
    page = context.new_page()
    open_survey(page, survey["index"], "phone")
    start(page)
    for pos in range(2):
        page.locator(f"label[for=rate-0-{pos + 2}]").tap()
        page.locator("label[for=rate-1-1]").tap()
        page.get_by_role("button", name="Next").tap()
    assert position(page) == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = page.locator("#grid button").first.bounding_box()
    assert 100 < box["width"] < 200  # two columns of images fill the narrow screen
    response = download(page)
    assert [p["ratings"] for p in response["panels"][:2]] == [
        {"style": 2, "content": 1}, {"style": 3, "content": 1}]
    context.close()


def test_second_rater_on_one_browser(page, survey):
    open_survey(page, survey["index"], None)
    page.get_by_label("Rater ID").fill("first")
    start(page)
    page.keyboard.press("4")
    page.get_by_role("button", name="Start as another rater").click()
    assert page.get_by_label("Rater ID").input_value() == ""
    page.get_by_label("Rater ID").fill("second")
    start(page)
    page.keyboard.press("1")
    settled(page)
    page.reload()
    page.locator("#panel-screen").wait_for(state="visible")
    assert download(page)["rater"]["id"] == "second"
    open_survey(page, survey["index"], "first")
    page.locator("#panel-screen").wait_for(state="visible")
    response = download(page)
    assert response["rater"]["id"] == "first" and response["panels"][0]["ratings"]["style"] == 4


def test_chain_start_binds_rater_and_profile_as_python_does(page, survey, tmp_path):
    """Python and the page agree on the chain's start (rater id in NFC, profile answers);
    the file passes every check of analyze against the build's key; editing the id or a
    profile answer afterwards breaks the chain; non-Latin ids download under distinct names."""
    names, files = [], []
    for typed in ["  Jose\u0301 \u4e2d\u6587  ", "\u0416\u0435\u043d\u044f"]:
        open_survey(page, survey["index"], None)
        page.get_by_label("Rater ID").fill(typed)
        page.get_by_label("Specialty").select_option("radiology")
        page.get_by_label("Years of experience").fill("\u0434\u0435\u0441\u044f\u0442\u044c \"10\"")
        page.get_by_label("I agree").check()
        page.get_by_role("button", name="Start").click()
        page.locator("#panel-screen").wait_for(state="visible")
        page.keyboard.press("3")
        page.keyboard.press("1")
        with page.expect_download() as info:
            page.locator("#panel-screen button.download").click()
        names.append(info.value.suggested_filename)
        files.append(Path(info.value.save_as(tmp_path / f"r{len(files)}.json") or
                          tmp_path / f"r{len(files)}.json"))
        page.get_by_role("button", name="Start as another rater").click()
    assert len(set(names)) == 2
    first = json.loads(files[0].read_text(encoding="utf-8"))
    assert first["rater"]["id"] == "Jos\u00e9 \u4e2d\u6587"  # trimmed, NFC
    assert first["chain"]["algorithm"] == "sha256-chain/2" and chain_problems(first) == []
    key = load_key(survey["report"].key_path)
    _, ledger, _ = ingest_responses(survey["study"], key, files)
    assert ledger["status"].tolist() == ["partial", "partial"], ledger["reason"].tolist()
    assert all(r.startswith("partial:") for r in ledger["reason"])
    for field, value in [("id", "Jos\u00e9 \u4e2d\u6587x"), ("profile", {"specialty": "pathology",
                                                                     "years": "10"})]:
        edited = json.loads(files[0].read_text(encoding="utf-8"))
        edited["rater"][field] = value
        assert any("hash chain does not match the rater id, profile and events" in p
                   for p in chain_problems(edited))
    assert page.errors == []
