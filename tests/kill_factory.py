"""Start `glidemed generate` as a process, SIGKILL it once some images are made, resume."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from glidemed.fileio import sha256_file
from glidemed.generate.manifest import load_manifest


def wait_for_records(proc: subprocess.Popen, manifest_records, records: int) -> None:
    """Return once ``manifest_records()`` counts ``records`` or ``proc`` has ended, whichever
    happens first: the loop ends on one of these two events, never on a clock."""
    while proc.poll() is None and manifest_records() < records:
        time.sleep(0.005)


def kill_after(command: list[str], env: dict, images: Path, records: int) -> dict:
    """Run ``command``; SIGKILL it as soon as ``images``' manifest holds ``records`` records
    and return the manifest as it was left."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_records(proc, lambda: len(load_manifest(images)), records)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return load_manifest(images)


def resume_and_check(command: list[str], env: dict, images: Path, made_before: dict,
                     total: int) -> dict:
    """Run ``command`` again after a kill: it makes exactly the missing images, every record's
    file matches its hash, and the images made before the kill are kept as they were."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"{total - len(made_before)} image(s) made" in done.stdout
    records = load_manifest(images)
    assert len(records) == total
    for key, rec in records.items():
        assert sha256_file(images / rec["file"]) == rec["sha256"]
        if key in made_before:
            assert rec["sha256"] == made_before[key]["sha256"]
    return records
