"""Import the seed study's published spreadsheet (Kather et al. 2022) into the tidy table.

Format: sheet 'raw data', one row per prompt, a 'Prompt' column with the prompt text and
columns ``<Aspect>_Observer<N>`` (e.g. ``Style_Observer1``, ``Content_Observer3``) holding
a score or one of the codes 'nonsensical' (the rater judged the prompt nonsensical) and
'missing' (no rating). Other columns (e.g. the medians) are ignored, but a column that
mentions an observer without that exact form is an error, so no ratings are dropped.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from glidemed.analysis.tidy import TIDY_COLUMNS, apply_nonsensical, normalise, write_ratings_csv
from glidemed.errors import AnalysisError
from glidemed.study import Study

SHEET = "raw data"
PROMPT_COLUMN = "Prompt"
_RATING_COLUMN = re.compile(r"^\s*([A-Za-z]+)_Observer(\d+)\s*$", re.IGNORECASE)
NONSENSICAL, MISSING = "nonsensical", "missing"


def read_legacy_spreadsheet(study: Study, path: Path | str, nonsensical: str = "exclude", *,
                            condition: str | None = None) -> pd.DataFrame:
    """Read ``path`` into the tidy ratings table of ``study``.

    Prompts are matched to the study's prompt ids by their text (surrounding whitespace
    ignored). Raters are 'observer1', 'observer2', ...; panel = prompt id; the condition is
    ``condition`` or the study's first condition; seconds unknown; no repeats.
    'missing' is always excluded (exclusion 'missing'); 'nonsensical' sets the
    ``nonsensical`` flag and is then treated as ``nonsensical`` says: 'exclude', 'zero' or
    'paper' (see :func:`glidemed.analysis.tidy.apply_nonsensical`).
    """
    path = Path(path)
    raw = _read_sheet(path)
    aspects = {a.key.lower(): a for a in study.aspects}
    columns = _rating_columns(raw, aspects, path)
    cond = condition or study.conditions[0].name
    if cond not in [c.name for c in study.conditions]:
        raise AnalysisError(f"{path}: condition {cond!r} is not in study {study.id!r}")
    by_text = {p.text.strip(): p for p in study.prompts()}
    flags = [f.key for f in study.flags]
    if NONSENSICAL not in flags:
        flags.append(NONSENSICAL)

    rows, seen = [], {}
    for index, record in raw.iterrows():
        line = index + 2  # spreadsheet row (header is row 1)
        text = record[PROMPT_COLUMN]
        if not isinstance(text, str) or not text.strip():
            raise AnalysisError(f"{path}: sheet {SHEET!r} row {line}: empty prompt")
        prompt = by_text.get(text.strip())
        if prompt is None:
            raise AnalysisError(f"{path}: sheet {SHEET!r} row {line}: prompt {text.strip()!r} "
                                f"matches no prompt of study {study.id!r}")
        if prompt.id in seen:
            raise AnalysisError(f"{path}: sheet {SHEET!r} rows {seen[prompt.id]} and {line}: "
                                f"prompt {text.strip()!r} appears twice")
        seen[prompt.id] = line
        for column, aspect_key, observer in columns:
            score, exclusion, flagged = _cell(record[column], aspects[aspect_key].values,
                                              path, line, column)
            row = {
                "rater": f"observer{observer}", "panel": prompt.id, "prompt_id": prompt.id,
                "style": prompt.style, "style_group": prompt.style_group, "topic": prompt.topic,
                "detail": prompt.detail, "condition": cond, "aspect": aspects[aspect_key].key,
                "score": score, "exclusion": exclusion, "seconds": pd.NA, "repeat": False,
                "comment": "",
            }
            row.update({flag: False for flag in flags})
            row[NONSENSICAL] = flagged
            rows.append(row)
    df = pd.DataFrame(rows, columns=TIDY_COLUMNS + flags)
    return apply_nonsensical(normalise(df, flags), nonsensical)


def _read_sheet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise AnalysisError(f"{path}: no such file")
    try:
        with pd.ExcelFile(path) as book:
            if SHEET not in book.sheet_names:
                raise AnalysisError(f"{path}: no sheet {SHEET!r} "
                                    f"(sheets: {', '.join(map(str, book.sheet_names))})")
            raw = pd.read_excel(book, sheet_name=SHEET, dtype=object)
    except AnalysisError:
        raise
    except Exception as exc:  # noqa: BLE001 -- openpyxl raises many kinds on damaged files
        raise AnalysisError(f"{path}: cannot read spreadsheet, is it an .xlsx workbook? "
                            f"({type(exc).__name__}: {exc})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    if PROMPT_COLUMN not in raw.columns:
        raise AnalysisError(f"{path}: sheet {SHEET!r} has no {PROMPT_COLUMN!r} column")
    return raw.dropna(how="all")


def _rating_columns(raw: pd.DataFrame, aspects: dict, path: Path) -> list[tuple[str, str, int]]:
    """[(column, aspect key (lower case), observer number)] in sheet order."""
    found, seen = [], {}
    for column in raw.columns:
        match = _RATING_COLUMN.match(column)
        if not match:
            if "observer" in column.lower():  # e.g. 'Style Observer1', 'Style_Observer1.1'
                raise AnalysisError(f"{path}: column {column!r} looks like ratings but is not "
                                    "named <Aspect>_Observer<N>; rename it so it is not lost")
            continue
        aspect, observer = match.group(1).lower(), int(match.group(2))
        if aspect not in aspects:
            raise AnalysisError(f"{path}: column {column!r} names no aspect of the study "
                                f"(aspects: {', '.join(aspects)})")
        if (aspect, observer) in seen:  # e.g. 'Style_Observer1' and 'style_observer01'
            raise AnalysisError(f"{path}: columns {seen[aspect, observer]!r} and {column!r} both "
                                f"hold observer {observer}'s {aspect} ratings")
        seen[aspect, observer] = column
        found.append((column, aspect, observer))
    if not found:
        raise AnalysisError(f"{path}: sheet {SHEET!r} has no <Aspect>_Observer<N> columns")
    return found


def _cell(value: object, levels: list[int], path: Path, line: int,
          column: str) -> tuple[object, str, bool]:
    """(score, exclusion, nonsensical flag) of one cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return pd.NA, MISSING, False  # an empty cell is a missing rating
    if isinstance(value, str):
        code = value.strip().lower()
        if code == MISSING or code == "":
            return pd.NA, MISSING, False
        if code == NONSENSICAL:
            return pd.NA, NONSENSICAL, True
        try:
            value = float(code)
        except ValueError:
            raise AnalysisError(f"{path}: sheet {SHEET!r} row {line} column {column!r}: "
                                f"{value!r} is neither a score nor 'nonsensical'/'missing'") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() \
            and int(value) in levels:
        return int(value), "", False
    raise AnalysisError(f"{path}: sheet {SHEET!r} row {line} column {column!r}: score {value!r} "
                        f"is not one of {levels}")


def exclusion_counts(df: pd.DataFrame) -> dict[str, int]:
    """Ratings per exclusion reason, plus 'usable'."""
    counts = df["exclusion"].replace("", "usable").value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def import_ratings(study: Study, spreadsheet: Path, out: Path,
                   nonsensical: str = "exclude") -> dict[str, int]:
    """The import-ratings stage: read the spreadsheet, write ``out``, return exclusion counts."""
    df = read_legacy_spreadsheet(study, spreadsheet, nonsensical)
    write_ratings_csv(df, out)
    return exclusion_counts(df)
