"""The served survey in headless Chromium: an invited rater's answers reach `glidemed serve`
through a server restart and a full disk, and "sent" is shown only once it is stored."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from playwright import sync_api
from click.testing import CliRunner
from conftest import SMALL_STUDY
from server_factory import ServedSurvey, free_port, limit_file_size
from survey_factory import ARGS, CHROMIUM, require_chromium, generated

from glidemed.analysis.ingest import ingest_responses
from glidemed.cli import main
from glidemed.paths import received_dir, server_dir
from glidemed.survey.build import build_survey
from glidemed.responses.chain import chain_problems
from glidemed.survey.key import load_key

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def stored(study, rater: str) -> list[Path]:
    folder = received_dir(study) / rater
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_answers_given_while_the_server_is_down_arrive_after_it_is_back(tmp_path, monkeypatch):
    require_chromium()
    study_path = tmp_path / "study" / "study.toml"
    study_path.parent.mkdir()
    study_path.write_text(SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2))
    study = generated(study_path, tmp_path / "build", monkeypatch)
    key = load_key(build_survey(study, single_file=False, workers=1).key_path)
    port = free_port()
    ids = tmp_path / "ids.txt"
    ids.write_text("ivy\n")
    result = CliRunner().invoke(main, ["invite", str(study_path), "--raters", str(ids),
                                       "--base-url", f"http://127.0.0.1:{port}/", "--local"])
    assert result.exit_code == 0, result.output
    with open(server_dir(study) / "invitations.csv", newline="") as handle:
        link = next(csv.DictReader(handle))["link"]

    server = ServedSurvey(study_path, tmp_path / "build", port=port).start()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_context(accept_downloads=True).new_page()
            errors, hosts = [], set()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
            page.goto(link)
            page.get_by_role("button", name="Start").click()
            for pos in range(5):
                page.keyboard.press(str(pos % 5))
                page.keyboard.press("2")
                page.keyboard.press("Enter")
            # the first rating is sent at once, with ivy's token from the link
            status = page.locator("#send-state")  # "stored", or newer answers not yet sent
            status.filter(has_text="stored").wait_for(timeout=20000)
            assert len(stored(study, "ivy")) == 1
            assert "stored by the server" in status.text_content() or \
                status.text_content().startswith("Saved in this browser; sending to the server shortly")

            server.stop()  # the header says so within 5 s, before any answer is sent
            status.filter(has_text="cannot be reached").wait_for(timeout=5000)
            for pos in range(5, 16):
                page.keyboard.press(str(pos % 5))
                page.keyboard.press("1")
                page.keyboard.press("Enter")
            page.locator("#done-screen").wait_for(state="visible")
            done = page.locator("#post-status")
            done.filter(has_text="cannot be reached").wait_for(timeout=20000)
            assert "kept in this browser" in done.text_content()
            assert "were sent" not in done.text_content()

            # back, but with a full disk: 507, still not "sent", the page keeps retrying
            full = ServedSurvey(study_path, tmp_path / "build", port=port,
                                preexec=limit_file_size).start()
            done.filter(has_text="507").wait_for(timeout=40000)
            assert "were sent" not in done.text_content()
            full.stop()
            assert len(stored(study, "ivy")) == 1

            server = ServedSurvey(study_path, tmp_path / "build", port=port).start()
            done.filter(has_text="were sent and stored").wait_for(timeout=60000)
            with page.expect_download() as info:  # the download stays available
                page.locator("#done-screen button.download").click()
            downloaded = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
            browser.close()
    finally:
        server.stop()
    files = stored(study, "ivy")
    assert len(files) == 2
    latest = json.loads(files[-1].read_text(encoding="utf-8"))
    assert chain_problems(latest) == []
    assert latest["chain"] == downloaded["chain"] and latest["panels"] == downloaded["panels"]
    # with the server gone, a panel whose images did not load could not be rated, and says so
    panels = sorted(latest["panels"], key=lambda p: p["position"])
    assert [p["ratings"]["content"] for p in panels[:5]] == [2] * 5
    failed = [p for p in panels if p.get("image_failures")]
    assert len(failed) >= 9 and all(p["ratings"]["content"] is None for p in failed)
    assert all(p["ratings"]["content"] == 1 for p in panels[5:] if not p.get("image_failures"))
    assert not latest["complete"]
    ratings, ledger, _ = ingest_responses(study, key, [received_dir(study)])
    assert list(ledger["status"]) == ["duplicate", "partial"]
    assert set(ratings["rater"]) == {"ivy"}
    assert errors == [] and hosts == {f"127.0.0.1:{port}"}
