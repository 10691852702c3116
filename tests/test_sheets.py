"""Contact sheets, overviews and comparisons from any generator's output."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from glidemed.cli import main
from glidemed.errors import GlidemedError
from glidemed.generate.runner import run_generation
from glidemed.sheets import make_sheets
from glidemed.study import load_study


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    study = load_study("demo")
    images = tmp_path_factory.mktemp("images")
    # Only the CT prompts, and one prompt's 'soft' images removed, to show gaps are handled.
    run_generation(study, images, only=["ct.*"], progress=False)
    for png in (images / "soft" / "ct.malaria.short").glob("*.png"):
        png.unlink()
    return study, images


def test_all_sheets_written_and_captioned(demo, tmp_path):
    study, images = demo
    report = make_sheets(study, images, tmp_path, cell=64)
    prompts = [p for p in study.prompts() if p.style == "ct"]
    files = {p.relative_to(tmp_path).as_posix(): caption for p, caption in report.sheets}
    # Contact sheets: every prompt x condition with images (one prompt's 'soft' images gone).
    contact = [f for f in files if f.startswith("contact/")]
    assert len(contact) == 2 * len(prompts) - 1
    assert "contact/soft/ct.malaria.short.png" not in files
    caption = files["contact/sharp/ct.lungs.detailed.png"]
    prompt = next(p for p in prompts if p.id == "ct.lungs.detailed")
    assert prompt.text in caption and "sharp" in caption and "6 image(s)" in caption
    # Overviews and comparisons.
    assert {"overview-sharp.png", "overview-soft.png"} <= set(files)
    compare = [f for f in files if f.startswith("compare/")]
    # A prompt with images under one condition only has nothing to compare.
    assert len(compare) == len(prompts) - 1 and "compare/ct.malaria.short.png" not in files
    assert "sharp" in files["compare/ct.lungs.short.png"] and "soft" in files["compare/ct.lungs.short.png"]
    for relpath in files:
        assert (tmp_path / relpath).is_file()


def test_sheet_geometry(demo, tmp_path):
    study, images = demo
    make_sheets(study, images, tmp_path, cell=64)
    with Image.open(tmp_path / "contact/sharp/ct.lungs.short.png") as sheet:
        # Six 64 px images in one row plus margins, and a caption band above them.
        assert sheet.width == 2 * 10 + 6 * 64 + 5 * 6
        assert sheet.height > 64 + 2 * 10
        top = sheet.crop((0, 0, sheet.width, sheet.height - 64 - 10)).convert("L")
        assert top.getextrema()[0] < 100  # caption text is drawn
    with Image.open(tmp_path / "overview-sharp.png") as overview:
        # 3 topics as columns of 32 px thumbnails after the row labels.
        assert overview.width == 2 * 10 + 150 + 3 * 32 + 2 * 6


def test_compare_has_one_row_per_condition(demo, tmp_path):
    study, images = demo
    make_sheets(study, images, tmp_path, cell=64)
    with Image.open(tmp_path / "compare/ct.lungs.short.png") as sheet:
        assert sheet.width == 2 * 10 + 150 + 6 * 64 + 5 * 6

        def lightness(top: int, height: int) -> tuple[int, int]:
            return sheet.crop((10 + 150, top, sheet.width - 10, top + height)).convert("L").getextrema()

        first_row = sheet.height - 10 - 2 * 64 - 6
        assert lightness(first_row, 64)[0] < 255 and lightness(first_row + 64 + 6, 64)[0] < 255
        assert lightness(first_row + 64, 6) == (255, 255)  # the gap between the two rows
        assert lightness(first_row - 10, 10) == (255, 255)  # no third row above them


def test_no_images_is_a_clear_error(tmp_path):
    with pytest.raises(GlidemedError, match="no generated images .* run `glidemed generate demo` first"):
        make_sheets(load_study("demo"), tmp_path / "none", tmp_path / "out")


def test_cli(demo, tmp_path):
    _, images = demo
    result = CliRunner().invoke(main, ["sheets", "demo", "--images", str(images),
                                       "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert f"-> {tmp_path / 's'}" in result.output
    assert (tmp_path / "s" / "overview-soft.png").is_file()


def test_default_folder_is_under_build(demo, tmp_path, monkeypatch):
    _, images = demo
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["sheets", "demo", "--images", str(images)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "sheets" / "overview-sharp.png").is_file()
    assert not (Path(tmp_path) / "demo" / "survey").exists()
