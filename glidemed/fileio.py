"""Crash-safe file writing: a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from pathlib import Path
from typing import Iterator

from glidemed.errors import GlidemedError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, synced: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A write interrupted by an exception, SIGKILL or a full disk leaves at most a hidden
    ``.tmp`` file behind, never a truncated file under the final name. The temporary
    file is synced to disk before the rename unless the caller did so (``synced``).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if not synced:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path, synced=True) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def os_error_reason(exc: OSError) -> str:
    """The reason of an OSError in words; 'File exists' from making a folder where a file
    is says so."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename is not None:
        where = Path(os.fsdecode(exc.filename))
        blocking = next((p for p in [where, *where.parents] if p.is_file()), None)
        if blocking is not None:
            return f"{blocking} is a file, not a folder; choose a folder"
    return exc.strerror or str(exc)


def describe_os_error(exc: OSError, path: str | os.PathLike, what: str) -> GlidemedError:
    """Turn a disk-full or permission error into a one-line user message."""
    reason = os_error_reason(exc)
    return GlidemedError(f"could not write {what} {path}: {reason}. "
                         "Files written before this point are complete and kept; "
                         "fix the problem and run the command again.")
