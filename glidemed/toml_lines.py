"""Where a key of a TOML file is written: line numbers for the problems of a study file.

TOML parsers give values, not positions. This scanner reads the text once and records the
line of every table header (``[survey]``, ``[[conditions]]``, counted per array) and of
every ``key = value``, under the key path a problem names (``conditions[1].generator``,
``survey.profile[0].key``). Multi-line strings are skipped. A problem about a key that is
not written (a missing key, or a value inside an inline table) gets the line of the
nearest table or key above it in the path.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
                  r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Map each key path written in ``text`` to its 1-based line number (first occurrence)."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if in_string:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER.match(line)
        if header:
            name = _dotted(header.group(2))
            parent = _with_indices(name, counts)
            if header.group(1) == "[[":
                index = counts.get(parent, -1) + 1
                counts[parent] = index
                table = f"{parent}[{index}]"
            else:
                table = parent
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = f"{table}.{_dotted(key.group(1))}" if table else _dotted(key.group(1))
            lines.setdefault(path, number)
            rest = line[key.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote
    return lines


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of ``path``, or of its nearest written parent; None when nothing matches."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _dotted(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


def _with_indices(name: str, counts: dict[str, int]) -> str:
    """The path of table ``name`` with each enclosing array of tables at its current entry:
    ``survey.profile`` stays, ``conditions.params`` after two ``[[conditions]]`` is
    ``conditions[1].params``."""
    parts = name.split(".")
    path = ""
    for part in parts[:-1]:
        path = f"{path}.{part}" if path else part
        if path in counts:
            path = f"{path}[{counts[path]}]"
    return f"{path}.{parts[-1]}" if path else parts[-1]
