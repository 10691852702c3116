"""The generation runner: seeds, resume, corruption, shards, filters, SIGKILL, disk errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from glidemed.errors import GenerationError, GlidemedError
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import Shard, image_seed, plan_jobs, run_generation
from glidemed.study import load_study
from kill_factory import wait_for_records


def generate(study_path: Path, out: Path, **options):
    return run_generation(load_study(study_path), out, progress=False, **options)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*.png"))}


def test_seeds_depend_only_on_their_inputs():
    # Pinned: a changed derivation would silently change every image of a re-run study.
    assert image_seed(1, "a", "x.y.short", 0) == 9034691846763225418
    seeds = {image_seed(1, c, p, i) for c in "ab" for p in ("p1", "p2") for i in range(3)}
    assert len(seeds) == 12
    assert 0 <= image_seed(1, "a", "p", 0) < 2**63


def test_run_writes_images_and_manifest_records(make_study, tmp_path):
    out = tmp_path / "images"
    report = generate(make_study(), out)
    assert (report.made, report.skipped, report.planned) == (64, 0, 64)
    records = load_manifest(out)
    assert len(records) == 64
    record = records[("beta", "xray.heart.detailed", 3)]
    assert record["file"] == "beta/xray.heart.detailed/03.png"
    assert record["seed"] == image_seed(11, "beta", "xray.heart.detailed", 3)
    assert record["generator"] == "placeholder" and record["params"] == {"size": 32}
    assert record["text"] == "An x-ray image of the heart, an organ of muscle cells"
    assert {"python", "glidemed", "pillow"} <= set(record["versions"])
    assert record["seconds"] >= 0 and len(record["sha256"]) == 64


def test_rerun_skips_verified_and_remakes_corrupt_or_deleted(make_study, tmp_path):
    out = tmp_path / "images"
    study = make_study()
    generate(study, out)
    before = tree_bytes(out)
    (out / "alpha/histo.lungs.short/00.png").write_bytes(b"garbage")
    (out / "beta/xray.heart.short/02.png").unlink()
    report = generate(study, out)
    assert report.made == 2 and report.skipped == 62
    assert sorted(report.remade) == ["alpha/histo.lungs.short/00.png", "beta/xray.heart.short/02.png"]
    assert tree_bytes(out) == before


def test_remade_lists_only_what_this_run_remade(make_study, tmp_path):
    out = tmp_path / "images"
    study = make_study()
    generate(study, out)
    (out / "alpha/histo.lungs.short/00.png").unlink()
    (out / "beta/xray.heart.short/02.png").unlink()
    report = generate(study, out, limit=1)
    assert report.made == 1 and report.remade == ["alpha/histo.lungs.short/00.png"]


def test_shards_partition_the_work_and_merge(make_study, tmp_path):
    study = make_study()
    full, sharded = tmp_path / "full", tmp_path / "sharded"
    generate(study, full)
    counts = [generate(study, sharded, shard=Shard(i, 3)).made for i in (1, 2, 3)]
    assert sum(counts) == 64 and all(counts)
    assert sorted(p.name for p in (sharded / "manifest").iterdir()) == [
        "shard-1-of-3.jsonl", "shard-2-of-3.jsonl", "shard-3-of-3.jsonl"]
    assert tree_bytes(full) == tree_bytes(sharded)
    assert generate(study, sharded).made == 0


def test_filters_condition_only_and_limit(make_study, tmp_path):
    study = make_study()
    assert generate(study, tmp_path / "a", conditions=["beta"]).made == 32
    assert generate(study, tmp_path / "b", only=["xray.*", "histo.lungs.short"]).made == 40
    assert generate(study, tmp_path / "c", limit=5).made == 5
    with pytest.raises(GenerationError, match="unknown condition"):
        plan_jobs(load_study(study), conditions=["gamma"])
    with pytest.raises(GenerationError, match="expected I/N"):
        Shard.parse("two")


def test_disk_full_stops_cleanly_and_resumes(make_study, tmp_path, monkeypatch):
    study = make_study()
    out = tmp_path / "images"
    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(GlidemedError, match="No space left on device.*run the command again"):
        generate(study, out)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not list(out.rglob("*.tmp"))
    records = load_manifest(out)
    assert len(records) == 10
    assert generate(study, out).made == 54
    assert tree_bytes(out) == tree_bytes(_fresh(study, tmp_path / "fresh"))


def _fresh(study: Path, out: Path) -> Path:
    generate(study, out)
    return out


def stable_manifest(folder: Path) -> dict:
    """Manifest records without the fields that differ between two runs (timing)."""
    return {key: {k: v for k, v in record.items() if k not in ("created", "seconds")}
            for key, record in load_manifest(folder).items()}


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_equals_uninterrupted_run(make_study, tmp_path):
    study = make_study(images_per_prompt=12)
    study.write_text(study.read_text().replace("size = 32", "size = 640"))
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "glidemed", "generate", str(study), "--out", str(out),
               "--no-progress"]
    manifest = out / "manifest" / "all.jsonl"
    for kill_after in (5, 60, 120):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_records(process, lambda: manifest.read_text().count("\n")
                         if manifest.exists() else 0, kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(load_manifest(out)) < 192, "the run should have been killed midway"
        for path in out.rglob("*.png"):  # hidden .tmp files may remain; final names are whole
            with Image.open(path) as image:
                image.load()
    resumed = generate(study, out)
    assert resumed.made + resumed.skipped == 192 and resumed.skipped >= 120
    fresh = _fresh(study, tmp_path / "fresh")
    assert tree_bytes(out) == tree_bytes(fresh)
    assert stable_manifest(out) == stable_manifest(fresh)


def test_manifest_line_without_file_or_hash_is_remade(make_study, tmp_path):
    study = make_study()
    out = tmp_path / "images"
    generate(study, out)
    manifest = out / "manifest" / "all.jsonl"
    lines = manifest.read_text().splitlines()
    record = json.loads(lines[0])
    del record["sha256"]
    record["created"] = "9999"  # newest, so it would win over the intact line
    manifest.write_text("\n".join(lines + [json.dumps(record)]) + "\n")
    assert len(load_manifest(out)) == 64
    assert generate(study, out).made == 0
