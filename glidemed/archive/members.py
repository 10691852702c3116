"""Reading zip members within bounds: streamed, size- and ratio-limited, never outside a folder.

A corrupt member (a flipped byte in stored or deflated data, a bad header) is a
:class:`MemberProblem` with the member's name, never a ``BadZipFile`` or ``zlib.error``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHUNK = 1 << 20
# The paper's survey as one file is about 20 MB and an image under 1 MB; a member far
# larger than this is not part of a glidemed archive.
MAX_MEMBER_BYTES = 2 << 30
# Deflate reaches about 1000:1 on zeros; text and tables stay well under 100:1.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20  # small members may compress as they like
MAX_METADATA_BYTES = 64 << 20  # SHA256SUMS, ro-crate-metadata.json: read into memory


class MemberProblem(Exception):
    """A member cannot be read safely; the message names it and says why."""


def unsafe_name(name: str) -> str:
    """Why ``name`` may not be written below a folder ('' when it may)."""
    path = PurePosixPath(name)
    if not name or "\\" in name or "\0" in name or path.is_absolute() or (
            len(name) > 1 and name[1] == ":"):
        return "an absolute or malformed path"
    if any(part in ("..", "") for part in name.split("/")):
        return "a path that leaves the archive's folder"
    return ""


def check_bounds(info: zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES) -> None:
    """Refuse a member whose declared size or compression ratio no real member has."""
    if info.file_size > limit:
        raise MemberProblem(f"{info.filename}: {info.file_size / 1e9:.1f} GB unpacked, over the "
                            f"{limit / 1e9:.1f} GB limit; not read")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise MemberProblem(f"{info.filename}: compressed {info.file_size // max(info.compress_size, 1)}:1 "
                            f"(over {MAX_RATIO}:1; a zip bomb?); not read")


def stream_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                  sink: BinaryIO | None = None) -> str:
    """The SHA-256 of a member, read in chunks (and copied into ``sink`` if given)."""
    digest = hashlib.sha256()
    try:
        with archive.open(info) as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                if sink is not None:
                    sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError) as exc:
        raise MemberProblem(f"{info.filename}: corrupt member, cannot be read ({exc})") from None
    return digest.hexdigest()


def read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
               limit: int = MAX_METADATA_BYTES) -> bytes:
    """A small member's bytes (checked for bounds and corruption)."""
    import io

    check_bounds(info, limit)
    buffer = io.BytesIO()
    stream_member(archive, info, buffer)
    return buffer.getvalue()


def extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> str:
    """Write a member below ``root`` (never outside it) and return its SHA-256."""
    why = unsafe_name(info.filename)
    target = (root / info.filename).resolve()
    if why or not target.is_relative_to(root.resolve()):
        raise MemberProblem(f"{info.filename}: {why or 'a path outside the folder'}; not extracted")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as sink:
        return stream_member(archive, info, sink)


def outside_member(data: bytes, schema: str, name: str):
    """Decode an archive member written by someone else (:mod:`glidemed.outside_json`) and
    validate it (:func:`validated`)."""
    from glidemed.outside_json import OutsideJSONError, loads

    try:
        value = loads(data)
    except OutsideJSONError as exc:
        raise MemberProblem(f"{name}: {exc}") from None
    return validated(value, schema, name)


def validated(value, schema: str, name: str):
    """``value`` checked against ``glidemed/schemas/<schema>.schema.json``; a problem is a
    :class:`MemberProblem` naming the member and the field."""
    import jsonschema

    text = resources.files("glidemed").joinpath(f"schemas/{schema}.schema.json").read_text("utf-8")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(json.loads(text)).iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise MemberProblem(f"{name}: {where}: {error.message[:200]}")
    return value
