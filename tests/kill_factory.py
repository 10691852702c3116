"""Start `glidemed generate` as a process and SIGKILL it once some images are made."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from glidemed.generate.manifest import load_manifest


def kill_after(command: list[str], env: dict, images: Path, records: int,
               timeout: float) -> dict:
    """Run ``command``; SIGKILL it as soon as ``images``' manifest holds ``records`` records
    (within ``timeout`` seconds) and return the manifest as it was left."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(load_manifest(images)) >= records:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return load_manifest(images)
