"""Small built surveys for the survey tests: generate placeholder images, then build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glidemed.generate.runner import run_generation
from glidemed.paths import images_dir
from glidemed.study import Study, load_study
from glidemed.survey.build import BuildReport, build_survey

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_HINT = ("Debian chromium not found at /usr/bin/chromium; install it with "
                 "`apt-get install -y chromium` to run the browser tests")


def require_chromium() -> None:
    """Skip a browser test where Debian's chromium is missing; fail instead under CI
    (``CI=true``), which installs it, so that no browser test is skipped unnoticed there."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(CHROMIUM_HINT)
    pytest.skip(CHROMIUM_HINT)


# A condition of real reference images for some prompts (folder generator), as TOML that
# make_study's ``extra`` takes (indented like the rest of such snippets).
CONTROL_CONDITION = """
        [[conditions]]
        name = "real"
        generator = "folder"
        params = { folder = "refs", partial = true }
"""


def generated(study_path: Path, build_dir: Path, monkeypatch) -> Study:
    """Load the study with outputs under ``build_dir`` and generate its images."""
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(build_dir))
    study = load_study(study_path)
    run_generation(study, images_dir(study), progress=False)
    return study


def built(study_path: Path, build_dir: Path, monkeypatch, **options) -> tuple[Study, BuildReport]:
    study = generated(study_path, build_dir, monkeypatch)
    options.setdefault("workers", 1)
    return study, build_survey(study, **options)


def settled(page) -> None:
    """Wait until the shown panel's images have loaded (keys typed ahead are then applied):
    before a reload, which would drop keys still waiting for the images."""
    page.wait_for_function("() => !document.querySelector('#grid[aria-busy=true]') || "
                           "document.getElementById('panel-screen').hidden")
