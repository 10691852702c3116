"""Writing an analysis folder: every task's tables, figures, report and summary go through here.

The folder is written beside its final place and replaces it only once complete (an
error leaves the previous analysis as it was); summary.json, written last, lists the
SHA-256 of every other file. Tables people open in spreadsheets have their formula-like
cells neutralised; JSON values are made plain (NaN as null).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from glidemed.errors import AnalysisError
from glidemed.fileio import write_text_atomic

SOFTWARE = ("numpy", "pandas", "scipy", "statsmodels", "scikit-posthocs", "krippendorff",
            "matplotlib", "jinja2", "jsonschema")


@contextmanager
def analysis_folder(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out`` to write into; it replaces ``out`` atomically when the
    block ends without error, and is removed otherwise (``out`` then stays as it was)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        _replace_dir(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AnalysisError(f"could not write the analysis to {out}: {exc.strerror or exc}. "
                            "Nothing there was changed; fix the problem and run again.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise



def json_ready(value: Any) -> Any:
    """JSON-ready: NaN and NA become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value



# Tables of text people open in spreadsheets and glidemed never reads back: their cells
# that a spreadsheet would run as a formula are neutralised (ratings.csv is data, kept exact).
SPREADSHEET_SAFE = ("ledger", "profiles")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells starting like a formula (=, +, -, @, tab, CR) begin with an
    apostrophe, so that a spreadsheet shows them as text instead of running them."""
    def cell(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(cell)
    return out


def write_ledger_only(ledger: pd.DataFrame, out: Path) -> Path:
    """Write the ledger of a run with no usable rating, so that no file's reason is lost:
    as ``out/ledger.csv`` when ``out`` holds no earlier analysis (the folder then holds the
    ledger alone), else beside it as ``<out>-ledger.csv``, leaving that analysis as it was."""
    earlier = out.is_dir() and (out / "summary.json").is_file()
    target = out.with_name(f"{out.name}-ledger.csv") if earlier else out / "ledger.csv"
    if not earlier and out.exists() and not _only_a_ledger(out):
        target = out.with_name(f"{out.name}-ledger.csv")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, spreadsheet_safe(ledger).to_csv(index=False))
    except OSError as exc:
        raise AnalysisError(f"could not write the ledger to {target}: {exc.strerror or exc}") from None
    return target


def _only_a_ledger(out: Path) -> bool:
    return out.is_dir() and [p.name for p in out.iterdir()] in ([], ["ledger.csv"])


def check_out_dir(out: Path, ratings: Any = None) -> None:
    """Refuse to replace a folder that holds something other than a glidemed analysis.

    Besides an earlier analysis (it has summary.json), a folder holding only the
    ``ratings.csv`` being analysed is replaced, as ``glidemed import-ratings`` leaves it:
    the analysis writes that table again.
    """
    if not out.exists() or (out / "summary.json").is_file() or _only_a_ledger(out):
        return
    contents = list(out.iterdir()) if out.is_dir() else None
    only_these_ratings = (isinstance(ratings, (str, os.PathLike)) and contents == [out / "ratings.csv"]
                          and Path(ratings).resolve() == contents[0].resolve())
    if contents is None or (contents and not only_these_ratings):
        raise AnalysisError(f"{out}: exists and is not a glidemed analysis folder (no summary.json); "
                            "choose a new or empty folder with --out")



def _replace_dir(new: Path, out: Path) -> None:
    """Put ``new`` at ``out``; the old folder is kept aside until the rename succeeded."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    try:
        os.replace(new, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    os.chmod(out, 0o755 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())



def software_versions() -> dict[str, str]:
    versions = {"glidemed": _version("glidemed"), "python": platform.python_version()}
    versions.update({name: _version(name) for name in SOFTWARE})
    return versions


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"




def write_tables(folder: Path, tables: dict[str, pd.DataFrame], latex: tuple[str, ...] = (),
                 csv: bool = True, labels=None, references: dict[str, str] | None = None) -> None:
    """``<name>.csv`` for every table (the ledger and profiles spreadsheet-safe; not with
    ``csv`` False) and ``<name>.tex`` for those named in ``latex``: for people, with the
    study's ``labels`` and headings in words (see columns.readable)."""
    from glidemed.analysis.columns import readable
    from glidemed.analysis.labels import Labels

    for name, table in tables.items():
        if name in SPREADSHEET_SAFE:
            table = spreadsheet_safe(table)
        if csv:
            (folder / f"{name}.csv").write_text(table.to_csv(index=False), encoding="utf-8")
        if name in latex:
            shown = readable(table, labels or Labels(), references, name)
            (folder / f"{name}.tex").write_text(latex_table(name, shown), encoding="utf-8")


def latex_table(name: str, table: pd.DataFrame) -> str:
    return table.to_latex(index=False, escape=True, na_rep="", float_format="%.4g",
                          longtable=len(table) > 40, caption=name.replace("_", " ").capitalize(),
                          label=f"tab:{name}")


def write_sections(folder: Path, sections: list, labels=None) -> None:
    """The tables (CSV and LaTeX) and figures (PNG, SVG, PDF and their numbers) of report
    sections."""
    from glidemed.analysis.figures import write_figure

    (folder / "figures").mkdir(exist_ok=True)
    for section in sections:
        write_tables(folder, section.tables, tuple(section.tables), labels=labels)
        for name, figure in section.figures.items():
            write_figure(folder / "figures", name, figure)


def study_columns(labels) -> dict[str, tuple[str, str]]:
    """The data dictionary's entries for a study's own columns: its flags and profile fields."""
    flags = {k: (v, f"the rater marked the panel: {v}") for k, v in labels.by_factor.get("flag", {}).items()}
    fields = {k: (v, f"the rater's answer to the profile question {v!r}")
              for k, v in labels.by_factor.get("profile", {}).items()}
    return {**flags, **fields}


def write_columns(folder: Path, extra: dict[str, tuple[str, str]] | None = None) -> None:
    """columns.csv: every column of every CSV in ``folder`` with its heading and meaning."""
    from glidemed.analysis.columns import COLUMNS, dictionary

    tables = {}
    for path in sorted(folder.rglob("*.csv")):
        if path.name != "columns.csv":
            header = pd.read_csv(path, nrows=0).columns
            tables[path.relative_to(folder).as_posix()] = [str(c) for c in header]
    merged = {**(extra or {}), **COLUMNS}
    table = dictionary(tables, merged)
    table.to_csv(folder / "columns.csv", index=False)


def write_summary(folder: Path, summary: dict,
                  columns: dict[str, tuple[str, str]] | None = None) -> dict:
    """summary.json, written last: ``summary`` plus the SHA-256 of every other file, after
    the data dictionary columns.csv (the study's own ``columns`` added)."""
    from glidemed.fileio import sha256_file

    write_columns(folder, columns)
    outputs = {p.relative_to(folder).as_posix(): sha256_file(p)
               for p in sorted(folder.rglob("*")) if p.is_file()}
    summary = json_ready({**summary, "outputs": outputs})
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False),
                                         encoding="utf-8")
    return summary
