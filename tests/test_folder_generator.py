"""The 'folder' generator: imports images by CSV, reports every problem by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from glidemed.errors import GenerationError
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import run_generation
from glidemed.study import load_study

FOLDER_CONDITION = """
[[conditions]]
name = "real"
generator = "folder"
params = {{ folder = "refs"{partial} }}
"""


def make_folder_study(make_study, tmp_path: Path, rows: list[str], files: list[str],
                      partial: bool = False) -> Path:
    study = make_study(images_per_prompt=2, images_per_panel=1, folder=tmp_path / "study",
                       extra=FOLDER_CONDITION.format(partial=", partial = true" if partial else ""))
    refs = study.parent / "refs"
    refs.mkdir()
    for i, name in enumerate(files):
        Image.new("RGB", (20, 20), (i * 10, 0, 0)).save(refs / name)
    (refs / "images.csv").write_text("file,prompt_id,condition\n" + "\n".join(rows) + "\n")
    return study


def all_rows() -> tuple[list[str], list[str]]:
    ids = [f"{s}.{t}.{d}" for s in ("histo", "xray") for t in ("lungs", "heart")
           for d in ("short", "detailed")]
    files = [f"{pid}-{i}.png" for pid in ids for i in range(2)]
    return [f"{f},{f.rsplit('-', 1)[0]},real" for f in files], files


def test_imports_every_mapped_image(make_study, tmp_path):
    rows, files = all_rows()
    study = make_folder_study(make_study, tmp_path, rows, files)
    out = tmp_path / "images"
    report = run_generation(load_study(study), out, conditions=["real"], progress=False)
    assert report.made == 16
    record = load_manifest(out)[("real", "xray.heart.short", 1)]
    assert record["source"].endswith("xray.heart.short-1.png")
    assert len(record["source_sha256"]) == 64


def test_missing_extra_unreadable_and_unknown_are_all_named(make_study, tmp_path):
    rows, files = all_rows()
    rows = rows[1:] + ["ghost.png,histo.lungs.short,real", "bad.png,nosuch.prompt.short,real"]
    study = make_folder_study(make_study, tmp_path, rows[:-3] + rows[-2:], files + ["stray.png"])
    (study.parent / "refs" / files[3]).write_bytes(b"not an image")
    with pytest.raises(GenerationError) as info:
        run_generation(load_study(study), tmp_path / "images", conditions=["real"], progress=False)
    message = str(info.value)
    assert "images.csv" in message
    assert "missing file ghost.png" in message
    assert "unknown prompt id 'nosuch.prompt.short'" in message
    assert f"unreadable image {files[3]}" in message
    assert "stray.png" in message and files[0] in message  # not in the mapping
    assert not (tmp_path / "images" / "real").exists()


def test_prompts_without_images_need_partial(make_study, tmp_path):
    rows, files = all_rows()
    study = make_folder_study(make_study, tmp_path, rows[:4], files[:4])
    with pytest.raises(GenerationError, match="no image mapped for .*partial = true"):
        run_generation(load_study(study), tmp_path / "a", conditions=["real"], progress=False)
    partial = make_folder_study(make_study, tmp_path / "p", rows[:4], files[:4], partial=True)
    report = run_generation(load_study(partial), tmp_path / "b", conditions=["real"],
                            progress=False)
    assert report.made == 4 and report.planned == 16


def test_short_rows_and_nested_files_are_named(make_study, tmp_path):
    rows, files = all_rows()
    study = make_folder_study(make_study, tmp_path, rows + ["lonely.png", ",histo.lungs.short,real"],
                              files)
    (study.parent / "refs" / "sub").mkdir()
    Image.new("RGB", (20, 20)).save(study.parent / "refs" / "sub" / "stray.png")
    with pytest.raises(GenerationError) as info:
        run_generation(load_study(study), tmp_path / "images", conditions=["real"], progress=False)
    message = str(info.value)
    assert f"line {len(rows) + 2}: unknown prompt id ''" in message  # the row without prompt_id
    assert f"line {len(rows) + 3}: no file given" in message
    assert "files not in the mapping: sub/stray.png" in message


def test_missing_mapping_file(make_study, tmp_path):
    study = make_study(extra=FOLDER_CONDITION.format(partial=""))
    (study.parent / "refs").mkdir()
    with pytest.raises(GenerationError, match="mapping CSV not found"):
        run_generation(load_study(study), tmp_path / "i", conditions=["real"], progress=False)
