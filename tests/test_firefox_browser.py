"""The survey page in Firefox (Debian's firefox-esr), driven by Puppeteer over WebDriver
BiDi (Playwright cannot drive the stock Firefox): start, rate by keyboard, reload, fit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from glidemed.survey.build import build_survey
from tests.conftest import ROOT
from tests.survey_factory import generated

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
PUPPETEER = ROOT / "build" / "node" / "node_modules" / "puppeteer-core"
NODE = shutil.which("node")


def test_the_survey_in_firefox(tmp_path, monkeypatch):
    missing = [what for what, ok in (("firefox-esr", FIREFOX), ("node", NODE),
                                     (f"puppeteer-core in {PUPPETEER} (make test installs it)",
                                      PUPPETEER.is_dir())) if not ok]
    if missing:
        message = f"not found: {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    study = generated(ROOT / "surveys" / "demo" / "study.toml", tmp_path / "build", monkeypatch)
    index = build_survey(study, workers=1).survey_dir / "index.html"
    done = subprocess.run([NODE, str(ROOT / "tests" / "firefox_survey.mjs"), str(PUPPETEER), FIREFOX,
                           index.as_uri()], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Firefox" in result["userAgent"] and result["errors"] == []
    assert result["progress"].startswith("Panel 4 of 36, 3 fully rated")
    assert result["ratings"] == [{"style": 1, "content": 2}, {"style": 2, "content": 3},
                                 {"style": 3, "content": 4}] and result["events"] == 6
    assert result["fits"] and result["smallest"] >= 300
