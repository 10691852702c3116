"""The generation manifest: one JSON record per image, in append-only JSON-lines files.

Each process appends to its own file under ``images/manifest/`` (one per shard), so
shards running at once never write the same file, and reading the folder merges them.
A record is written only after its image is in place, and each line is flushed (and
synced after each batch), so a crash leaves at most one partial last line, which the
reader skips.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from glidemed import outside_json

MANIFEST_DIR = "manifest"
Key = tuple[str, str, int]  # (condition, prompt_id, index)


def manifest_dir(images_dir: Path) -> Path:
    return Path(images_dir) / MANIFEST_DIR


def record_key(record: dict) -> Key:
    """The image a record describes; KeyError/TypeError/ValueError for an unusable record."""
    if not (isinstance(record["file"], str) and isinstance(record["sha256"], str)):
        raise TypeError("file and sha256 must be strings")
    return (record["condition"], record["prompt_id"], int(record["index"]))


def load_manifest(images_dir: Path) -> dict[Key, dict]:
    """All records under ``images_dir``, the newest per image winning."""
    records: dict[Key, dict] = {}
    folder = manifest_dir(images_dir)
    if not folder.is_dir():
        return records
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, "rb") as handle:  # a line that is not UTF-8 is one unusable line
            for line in handle:
                try:
                    # glidemed's own lines may hold -Infinity (a scheduler's settings), so
                    # not outside_json.loads; but text that is not Unicode is never kept
                    record = json.loads(line)
                    outside_json.check_unicode(record)
                    key = record_key(record)
                except (ValueError, KeyError, TypeError):  # not UTF-8, not Unicode too
                    continue  # a line cut short by a crash (or edited): its image is re-made
                old = records.get(key)
                if old is None or record.get("created", "") >= old.get("created", ""):
                    records[key] = record
    return records


class ManifestWriter:
    """Appends records to one manifest file: each flushed at once, synced by ``sync``."""

    def __init__(self, images_dir: Path, tag: str):
        self.path = manifest_dir(images_dir) / f"{tag}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened with the first record, so a run that fails before any image writes no file.
        self._handle: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")
            if self._handle.tell() > 0:
                self._end_partial_line()
        return self._handle

    def _end_partial_line(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                self._handle.write("\n")

    def append(self, record: dict) -> None:
        """Write one record; flushed at once, so a killed process loses nothing written."""
        handle = self._open()
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()

    def sync(self) -> None:
        """Force the records to disk (after each batch: a power cut re-makes one batch at most)."""
        if self._handle is not None:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.sync()
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
