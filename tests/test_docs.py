"""The documentation site: it builds with --strict, and its screenshots come from the page.

``make docs`` runs the screenshot test with ``GLIDEMED_DOCS_IMG=docs/img``, so that the
pictures in the documentation are the survey and report as they are now.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from playwright.sync_api import sync_playwright
from survey_factory import ARGS, CHROMIUM, generated, require_chromium, settled

from glidemed.analysis.pipeline import run_analysis
from glidemed.paths import key_dir, survey_dir
from glidemed.simulate import simulate_responses
from glidemed.study import load_study
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key

VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = ("survey-panel", "survey-panel-dark", "survey-enlarged", "report")


def test_site_builds_strictly(tmp_path):
    """A broken link, a missing page or a CLI reference that no longer loads fails here."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("generate", "build", "analyze", "archive", "verify", "serve", "invite"):
        assert f"glidemed {command}" in cli
    for name in SCREENSHOTS:
        assert (site / "img" / f"{name}.png").is_file()


def _not_blank(path: Path) -> None:
    with Image.open(path) as image:
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        assert np.asarray(image.convert("L"), dtype=float).std() > 5, f"{path} is blank"


@pytest.mark.browser
@pytest.mark.slow
def test_screenshots_of_the_demo_survey_and_report(tmp_path, monkeypatch):
    require_chromium()
    study = generated(ROOT / "surveys" / "demo" / "study.toml", tmp_path / "build", monkeypatch)
    build_survey(study, workers=1)
    key = load_key(key_dir(study) / "key.json")
    responses = tmp_path / "responses"
    simulate_responses(study, key, 4, responses, seed=1)
    run_analysis(load_study(study.path), [responses], tmp_path / "analysis", key=key, n_boot=50)
    shots = tmp_path / "shots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto((survey_dir(study) / "index.html").as_uri() + "?rater=R01")
        page.get_by_label("Specialty").select_option("pathology")
        page.get_by_label("Years of experience").fill("7")
        page.get_by_label("I agree").check()
        page.get_by_role("button", name="Start").click()
        page.locator("#panel-screen").wait_for(state="visible")
        settled(page)
        page.screenshot(path=shots / "survey-panel.png")
        page.get_by_role("button", name="Dark display").click()
        page.screenshot(path=shots / "survey-panel-dark.png")
        page.get_by_role("button", name="Dark display").click()
        page.get_by_role("button", name="Open image 1 of 4 in the viewer").click()
        page.locator("#viewer .viewer-img").wait_for(state="visible")
        page.screenshot(path=shots / "survey-enlarged.png")
        page.goto((tmp_path / "analysis" / "report.html").as_uri())
        page.screenshot(path=shots / "report.png")
        browser.close()
    for name in SCREENSHOTS:
        _not_blank(shots / f"{name}.png")
    target = os.environ.get("GLIDEMED_DOCS_IMG")
    if target:
        for name in SCREENSHOTS:
            shutil.copyfile(shots / f"{name}.png", Path(target) / f"{name}.png")


def test_readme_example_study_loads(tmp_path):
    """The study file on the README's front page is a valid study."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my-study" / "study.toml"
    path.parent.mkdir()
    path.write_text(example, encoding="utf-8")
    study = load_study(path)
    assert [c.name for c in study.conditions] == ["glide", "sd15"]
    assert len(study.prompts()) == 2
