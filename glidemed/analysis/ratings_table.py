"""`analyze --ratings TABLE.csv`: read a tidy ratings table and check it against the study.

The table is checked like a response file, every problem at once: the tidy columns, a
rater id on every row, aspects, conditions and styles of the study, scores that are
whole numbers on the aspect's scale, finite non-negative seconds, true/false in the
repeat and flag columns, and no rating given twice (same rater, panel, aspect and
repeat). Rows are numbered as in a spreadsheet: the header is row 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from glidemed.analysis.tidy import TIDY_COLUMNS, normalise
from glidemed.errors import AnalysisError
from glidemed.study import Study

MAX_SHOWN = 12
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def read_ratings_table(path: Path, study: Study) -> pd.DataFrame:
    """The tidy table in ``path``, checked against ``study``; :class:`AnalysisError` naming
    the file and every problem (with row numbers) otherwise."""
    flags = [f.key for f in study.flags]
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise AnalysisError(f"{path}: cannot read ratings table ({exc})") from None
    missing = [c for c in TIDY_COLUMNS + flags if c not in raw.columns]
    if missing:
        raise AnalysisError(f"{path}: ratings table lacks column(s): {', '.join(missing)}")
    problems = table_problems(raw, study)
    if problems:
        raise AnalysisError(problems_message(path, problems))
    return normalise(_typed(raw, flags), flags)


def problems_message(path: str | Path, problems: list[str]) -> str:
    """One line naming the file and its problems (the first MAX_SHOWN, then a count)."""
    shown = "; ".join(problems[:MAX_SHOWN])
    more = f"; ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    return f"{path}: {len(problems)} problem(s): {shown}{more}"


def table_problems(raw: pd.DataFrame, study: Study) -> list[str]:
    """Every problem of a table read as text, in row order."""
    levels = {a.key: len(a.levels) for a in study.aspects}
    conditions = {c.name for c in study.conditions}
    styles = {s.key for s in study.styles}
    flags = [f.key for f in study.flags]
    problems: list[tuple[int, str]] = []
    seen: dict[tuple, int] = {}
    for i, row in enumerate(raw.to_dict(orient="records")):
        number = i + 2
        def bad(text: str) -> None:
            problems.append((number, f"row {number}: {text}"))
        if not row["rater"].strip():
            bad("empty rater id")
        if row["aspect"] not in levels:
            bad(f"unknown aspect {short(row['aspect'])} (study aspects: {', '.join(levels)})")
        if row["condition"] not in conditions:
            bad(f"unknown condition {short(row['condition'])} "
                f"(study conditions: {', '.join(sorted(conditions))})")
        if row["style"] not in styles:
            bad(f"unknown style {short(row['style'])}")
        score = row["score"].strip()
        if score:
            if not (score.isascii() and score.lstrip("-").isdigit()) or len(score) > 6:
                bad(f"score {short(score)} is not a whole number")
            elif row["aspect"] in levels and not 0 <= int(score) < levels[row["aspect"]]:
                bad(f"score {score} is out of range 0-{levels[row['aspect']] - 1} "
                    f"for aspect {row['aspect']!r}")
        seconds = row["seconds"].strip()
        if seconds:
            try:
                value = float(seconds)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and value >= 0):
                bad(f"seconds {short(seconds)} is not a finite number >= 0")
        for column in ["repeat", *flags]:
            if row[column].strip().lower() not in TRUE | FALSE:
                bad(f"{column} {short(row[column])} is not true or false")
        key = (row["rater"].strip(), row["panel"], row["aspect"],
               row["repeat"].strip().lower() in TRUE)
        if key in seen:
            bad(f"the same rating as row {seen[key]} (rater {short(key[0])}, panel "
                f"{short(key[1])}, aspect {short(key[2])}) given twice")
        else:
            seen[key] = number
    return [text for _, text in problems]


def _typed(raw: pd.DataFrame, flags: list[str]) -> pd.DataFrame:
    df = raw.copy()
    df["rater"] = df["rater"].str.strip()
    df["score"] = pd.array([int(s) if s.strip() else pd.NA for s in df["score"]], dtype="Int64")
    df["seconds"] = pd.array([float(s) if s.strip() else pd.NA for s in df["seconds"]],
                             dtype="Float64")
    for column in ["repeat", *flags]:
        df[column] = pd.array([v.strip().lower() in TRUE for v in df[column]], dtype="boolean")
    return df


def short(value: object, limit: int = 40) -> str:
    """``repr`` of a value read from a file, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
