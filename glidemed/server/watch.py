"""What `serve` checks on each request to see that a file it read at start has changed."""

from __future__ import annotations

import os
from pathlib import Path

Stamp = tuple[int, int, int] | None


def file_stamp(path: Path) -> Stamp:
    """(inode, size, mtime_ns) of ``path``, None when it does not exist: one ``stat``.

    An atomic replace (write, then rename) always gives a new inode, so a file written as
    glidemed writes its files is seen to change even within one clock tick."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns
