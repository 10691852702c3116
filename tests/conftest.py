"""Shared fixtures: project paths, the seed study's spreadsheet, small test studies."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# An installed package named 'tests' (torch-fidelity ships one) would shadow this folder in
# 'from tests.x import ...': bind the name to this folder.
if list(getattr(sys.modules.get("tests"), "__path__", [])) != [str(ROOT / "tests")]:
    sys.modules["tests"] = types.ModuleType("tests")
    sys.modules["tests"].__path__ = [str(ROOT / "tests")]
KATHER_XLSX = ROOT.parent / "shared" / "kather2022" / "observer_study_glide_v1_merge.xlsx"

SMALL_STUDY = """
id = "small"
title = "Small test study"
instructions = "Rate the images."
seed = 11
images_per_prompt = {images_per_prompt}
images_per_panel = {images_per_panel}

[[conditions]]
name = "alpha"
generator = "placeholder"
params = {{ size = 32 }}

[[conditions]]
name = "beta"
generator = "placeholder"
params = {{ size = 32 }}

[[styles]]
key = "histo"
label = "Histopathology"
template = "A histopathological image of {{description}}"

[[styles]]
key = "xray"
label = "X-ray"
template = "An x-ray image of {{description}}"
group = "radiology"

[[topics]]
key = "lungs"
short = "the lungs"
detailed = "the lungs, organs in the chest"

[[topics]]
key = "heart"
short = "the heart"
detailed = "the heart, an organ of muscle cells"
"""


def require_kather_xlsx() -> Path:
    """The published ratings of the seed study, read from ../shared/kather2022/ beside the
    project; a reference test fails (never skips) where they are missing."""
    if not KATHER_XLSX.is_file():
        pytest.fail(f"seed study ratings not found at {KATHER_XLSX}: the R-checked tests need "
                    "the published spreadsheet (KatherLab/synth-user-study) there")
    return KATHER_XLSX


@pytest.fixture(scope="session")
def kather_xlsx() -> Path:
    return require_kather_xlsx()


@pytest.fixture
def make_study(tmp_path):
    """Write a small placeholder study (8 prompts, 2 conditions) and return its path.

    Keyword arguments fill the template; ``extra`` is appended as raw TOML.
    """

    def factory(images_per_prompt: int = 4, images_per_panel: int = 2, extra: str = "",
                folder: Path | None = None) -> Path:
        target = (folder or tmp_path / "study") / "study.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = SMALL_STUDY.format(images_per_prompt=images_per_prompt,
                                  images_per_panel=images_per_panel)
        target.write_text(text + textwrap.dedent(extra), encoding="utf-8")
        return target

    return factory
