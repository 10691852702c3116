"""JSON written by someone else (raters, servers, earlier runs, archives), decoded once.

Every reader of outside JSON goes through :func:`loads` or :func:`load_file`, so that one
rule holds everywhere: the text is valid UTF-8 and valid Unicode (no lone surrogate
escapes such as ``"\\ud800"``, which Python would decode into a string that cannot be
written back), an object has no key twice, numbers are finite and of bounded length, and
``NaN``/``Infinity`` are not numbers. A broken file is a :class:`OutsideJSONError` with a
one-line reason, raised here rather than far away when the value is written out.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

MAX_NUMBER_DIGITS = 100  # longer JSON numbers are not values of any glidemed file


class OutsideJSONError(ValueError):
    """Outside JSON that cannot be used; ``str()`` is a one-line reason without file name."""


def loads(text: str | bytes) -> Any:
    """Decode outside JSON text (or UTF-8 bytes, a BOM allowed) under the rules above."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise OutsideJSONError(f"not UTF-8 text (invalid byte 0x{text[exc.start]:02x} at "
                                   f"offset {exc.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                           parse_constant=_no_constant, parse_float=_finite_float,
                           parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        # a string that never closes runs to the end of the file: truncated too
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if cut else "invalid JSON"
        raise OutsideJSONError(f"{what}: {exc.msg} at line {exc.lineno}, "
                               f"column {exc.colno}") from None
    except RecursionError:
        raise OutsideJSONError("JSON nested too deeply") from None
    except OutsideJSONError:
        raise
    except ValueError as exc:  # from the hooks below
        raise OutsideJSONError(f"invalid JSON: {exc}") from None
    check_unicode(value)
    return value


def load_file(path: str | os.PathLike, max_bytes: int | None = None) -> Any:
    """Read and decode an outside JSON file; :class:`OutsideJSONError` names the file."""
    path = Path(path)
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise OutsideJSONError(f"{path}: larger than {max_bytes} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise OutsideJSONError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return loads(raw)
    except OutsideJSONError as exc:
        raise OutsideJSONError(f"{path}: {exc}") from None


def check_unicode(value: Any, where: str = "") -> None:
    """Raise :class:`OutsideJSONError` if any string (key or value) in ``value`` holds a
    code point that UTF-8 cannot encode (a lone surrogate)."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            _check_text(item, at)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_text(key, f"{at}/{key!r}" if at else repr(key))
                stack.append((inner, f"{at}/{key}" if at else str(key)))
        elif isinstance(item, list):
            stack.extend((inner, f"{at}/{i}") for i, inner in enumerate(item))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        point = ord(text[exc.start])
        place = f" in {where.lstrip('/')}" if where else ""
        raise OutsideJSONError(f"text that is not valid Unicode{place} (lone surrogate "
                               f"U+{point:04X}, written as an escape)") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {dup!r} appears twice in one object")
    return result


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:30]} is too large (beyond the range of a "
                         "floating-point number)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a whole number of {len(text.lstrip('-'))} digits is too large "
                         f"(at most {MAX_NUMBER_DIGITS})")
    return int(text)
