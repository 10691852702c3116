"""Compare an archived analysis with its re-run: JSON values, CSV cells, report text."""

from __future__ import annotations

import csv
import math
from html.parser import HTMLParser
from pathlib import Path

NUMERIC_TOLERANCE = 1e-6
# Fields that legitimately differ between two runs of the same analysis: the date, the
# software versions, where the responses were read, and the hashes of output files that
# embed them (report.html).
VOLATILE_KEYS = {"created", "versions", "outputs", "inputs"}


def compare_json(name: str, old, new, where: str, out: list[str]) -> None:
    """Append to ``out`` every difference between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key in VOLATILE_KEYS:
                continue
            if key not in old or key not in new:
                out.append(f"{name}: {where}{key}: present in only one of archived/re-run")
            else:
                compare_json(name, old[key], new[key], f"{where}{key}.", out)
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            out.append(f"{name}: {where.rstrip('.')}: {len(old)} items archived, {len(new)} re-run")
        for i, (a, b) in enumerate(zip(old, new)):
            compare_json(name, a, b, f"{where}{i}.", out)
    elif not same_value(old, new):
        out.append(f"{name}: {where.rstrip('.')}: archived {old!r}, re-run {new!r}")


def compare_csv(name: str, old: Path, new: Path, out: list[str],
                renamed: dict[str, str] | None = None) -> None:
    """Append every differing cell; ``renamed`` maps re-run file names to archived ones."""
    with (open(old, newline="", encoding="utf-8", errors="replace") as a,
          open(new, newline="", encoding="utf-8") as b):
        old_rows, new_rows = list(csv.reader(a)), list(csv.reader(b))
    if renamed:
        new_rows = [[rename(cell, renamed) for cell in row] for row in new_rows]
    if len(old_rows) != len(new_rows):
        out.append(f"{name}: {len(old_rows)} rows archived, {len(new_rows)} re-run")
        return
    header = old_rows[0] if old_rows else []
    for r, (row_a, row_b) in enumerate(zip(old_rows, new_rows)):
        if len(row_a) != len(row_b):
            out.append(f"{name}: row {r}: {len(row_a)} columns archived, {len(row_b)} re-run")
        for c, (a, b) in enumerate(zip(row_a, row_b)):
            column = header[c] if c < len(header) else str(c)
            if column in VOLATILE_KEYS:
                continue
            if not same_value(a, b):
                out.append(f"{name}: row {r}, column {column}: archived {a!r}, re-run {b!r}")


def rename(text: str, renamed: dict[str, str]) -> str:
    """``text`` with every re-run file name replaced by the name the analysis gave it."""
    for new, old in sorted(renamed.items(), key=lambda item: -len(item[0])):
        text = text.replace(new, old)
    return text


def same_value(a, b) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=NUMERIC_TOLERANCE, abs_tol=NUMERIC_TOLERANCE)


class _Text(HTMLParser):
    """The visible text of a page, one entry per text node (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data) -> None:
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def page_text(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.parts


def compare_report(name: str, old: bytes, new: bytes, out: list[str],
                   renamed: dict[str, str] | None = None) -> bool:
    """Compare the archived report with the regenerated one. Returns whether their text is
    equal; the bytes can still differ (the figures, drawn by another matplotlib)."""
    old_text = page_text(old.decode("utf-8", "replace"))
    new_text = [rename(part, renamed or {}) for part in page_text(new.decode("utf-8", "replace"))]
    if old_text == new_text:
        return True
    for i, (a, b) in enumerate(zip(old_text, new_text)):
        if a != b:
            out.append(f"{name}: differs from the regenerated report at text {i + 1}: "
                       f"archived {a[:80]!r}, regenerated {b[:80]!r}")
            return False
    out.append(f"{name}: {len(old_text)} text parts archived, {len(new_text)} regenerated")
    return False
