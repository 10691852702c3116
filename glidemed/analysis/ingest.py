"""Ingest returned response files: validate, keep one file per rater, unblind into the tidy table.

Every file given is accounted for in the ledger, one row per file:

- ``accepted``: valid, every panel in the rater's order rated;
- ``partial``: valid, but some panels or aspects are not rated (the rated ones are used);
- ``flagged``: valid, but its hash chain does not verify, its ratings block disagrees
  with its events, or its order, images, repeats, profile or events differ from what
  the build gives its rater id (edited after the fact, or copied under another id; see
  :mod:`glidemed.responses.integrity`); its ratings are used or excluded as ``flagged`` says;
- ``duplicate``: valid, but another file of the same rater is used instead (see below);
- ``rejected``: not used; ``reason`` says why (not JSON, wrong schema, another build...).

Each file is checked by the response contract (:mod:`glidemed.responses`).

Duplicate rule: of several usable files with the same rater id, the one used is the one
whose chain verifies, then the one with the most ratings, then the latest ``updated``
time, then the first file name in sort order. Both files are named in the ledger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from glidemed.analysis.tidy import TIDY_COLUMNS, empty_ratings, normalise
from glidemed.errors import AnalysisError
from glidemed.fileio import sha256_file
from glidemed.paths import SERVER_LOG
from glidemed.responses import (MAX_RESPONSE_BYTES, CheckedResponse, Rejected, ResponseChecker,
                                parse_response)
from glidemed.study import Study
from glidemed.survey.key import SurveyKey

FLAGGED_MODES = ("include", "exclude")
LEDGER_COLUMNS = ["file", "sha256", "rater", "status", "reason", "n_panels", "n_ratings",
                  "complete", "updated", "simulated"]


def ingest_responses(study: Study, key: SurveyKey | dict, paths: Iterable[str | os.PathLike],
                     flagged: str = "exclude", max_bytes: int = MAX_RESPONSE_BYTES,
                     key_name: str = "key", pseudonymized: bool = False,
                     allow_simulated: bool = False
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`ingest` of a one-block survey, its answers as its task's tidy table:
    ``(table, ledger, profiles)``."""
    answers, ledger, profiles = ingest(study, key, paths, flagged, max_bytes, key_name,
                                       pseudonymized, allow_simulated)
    if len(answers.context.key.tasks) != 1:
        raise AnalysisError(f"{study.path}: a survey of {len(answers.context.key.tasks)} blocks; "
                            "read it with ingest()")
    return answers.table(0), ledger, profiles


def ingest(study: Study, key: SurveyKey | dict, paths: Iterable[str | os.PathLike],
           flagged: str = "exclude", max_bytes: int = MAX_RESPONSE_BYTES,
           key_name: str = "key", pseudonymized: bool = False,
           allow_simulated: bool = False) -> tuple["Answers", pd.DataFrame, pd.DataFrame]:
    """Read response files (or folders of them) returned for the build described by ``key``.

    Returns ``(answers, ledger, profiles)``: the answers of the files used (each block's
    task makes its tidy table of them: :meth:`Answers.table`), one ledger row per file
    (:data:`LEDGER_COLUMNS`), and one profile row per rater used (``rater``, then the
    answers to the profile fields).
    ``key_name`` (e.g. the key file's path) names the key in error messages.
    ``pseudonymized``: the files' rater ids were replaced (``glidemed archive
    --pseudonymize``), so the checks bound to the real id (the hash chain's head, the
    rater's order and images) cannot apply; every other check does.
    Simulated files (``glidemed simulate``) are marked in the ledger; mixing them with
    real ones is refused unless ``allow_simulated``.
    """
    if flagged not in FLAGGED_MODES:
        raise AnalysisError(f"--flagged: expected one of {FLAGGED_MODES}, got {flagged!r}")
    context = ResponseChecker.from_key(study, key, key_name, pseudonymized)
    rows: list[CheckedResponse | dict] = []  # one per file, in the order collected
    files, aliases = collect_all_files(paths)
    by_path: dict[Path, CheckedResponse | dict] = {}
    for path, name in files.items():
        try:
            row: CheckedResponse | dict = parse_response(path, context, max_bytes, name)
        except Rejected as exc:
            row = _other_row(name, _sha256_or_blank(path), "rejected", str(exc))
        rows.append(row)
        by_path[path] = row
    parsed = [r for r in rows if isinstance(r, CheckedResponse)]
    _refuse_mixed(parsed, allow_simulated)
    used = _resolve_duplicates(parsed, flagged)
    _warn_case_only(parsed)
    ledger_rows = [r.ledger_row() if isinstance(r, CheckedResponse) else r for r in rows]
    for alias, path in aliases:
        first = by_path[path]
        first_row = first.ledger_row() if isinstance(first, CheckedResponse) else first
        ledger_rows.append(_other_row(
            alias, first_row["sha256"], "duplicate",
            f"the same file as {first_row['file']} (reached through a symbolic link); read once",
            rater=first_row["rater"]))
    ledger = pd.DataFrame(ledger_rows, columns=LEDGER_COLUMNS)
    return Answers(used, context, flagged), ledger, _profiles(used, study)


def _other_row(name: str, sha256: str, status: str, reason: str, rater: str = "") -> dict:
    """A ledger row of a file whose ratings are not read (rejected, or a second name)."""
    return {"file": name, "sha256": sha256, "rater": rater, "status": status, "reason": reason,
            "n_panels": 0, "n_ratings": 0, "complete": False, "updated": "", "simulated": False}


def _refuse_mixed(parsed: list[CheckedResponse], allow_simulated: bool) -> None:
    simulated = [p.name for p in parsed if p.simulated]
    real = [p.name for p in parsed if not p.simulated]
    if simulated and real and not allow_simulated:
        raise AnalysisError(
            f"{len(simulated)} simulated response file(s) (e.g. {simulated[0]}, written by "
            f"glidemed simulate) are mixed with {len(real)} real one(s) (e.g. {real[0]}); "
            "analyse them apart, or pass --allow-simulated to mix them on purpose")


def _warn_case_only(parsed: list[CheckedResponse]) -> None:
    """Note in the ledger rater ids that differ only by case (two raters, or one typo?)."""
    by_folded: dict[str, set[str]] = {}
    for item in parsed:
        by_folded.setdefault(item.rater.casefold(), set()).add(item.rater)
    for item in parsed:
        others = sorted(by_folded[item.rater.casefold()] - {item.rater})
        if others:
            note = (f"rater id {item.rater!r} differs only by case from "
                    f"{', '.join(map(repr, others))}: counted as different raters; give "
                    "one id if they are one person")
            item.reason = "; ".join(filter(None, [item.reason, note]))


def collect_files(paths: Iterable[str | os.PathLike]) -> dict[Path, str]:
    """The files :func:`collect_all_files` reads, each once, with their ledger names."""
    return collect_all_files(paths)[0]


def collect_all_files(paths: Iterable[str | os.PathLike]
                      ) -> tuple[dict[Path, str], list[tuple[str, Path]]]:
    """Every regular file named or inside a named folder (recursively), and every broken
    symbolic link there (the ledger rejects it), each once, sorted within a folder, with
    the name the ledger gives it: relative to its named folder, or as given. A name
    already taken by another file (``r.json`` in both folders ``a`` and ``b``) becomes the
    path as given (``b/r.json``), else the absolute path. A file reached again under a
    second name (through a symbolic link) is read once; the second name is returned in
    ``aliases`` as (its ledger name, the path read). A path that does not exist is an error."""
    seen: dict[Path, str] = {}
    first_by_target: dict[Path, Path] = {}
    aliases: list[tuple[str, Path]] = []
    names: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
                     if p.is_file() or (p.is_symlink() and not p.exists())]
        elif path.is_file() or (path.is_symlink() and not path.exists()):
            found = [(path, str(path))]
        else:
            raise AnalysisError(f"{path}: no such response file or folder")
        for p, name in found:
            if path.is_dir() and name == SERVER_LOG:
                continue  # glidemed serve's log of refused requests, not a response
            if p in seen:
                continue  # the same path given twice: one row
            resolved = p.resolve()
            if name in names:
                name = str(p) if str(p) not in names else str(resolved)
            names.add(name)
            if resolved in first_by_target:
                aliases.append((name, first_by_target[resolved]))
                continue
            first_by_target[resolved] = p
            seen[p] = name
    return seen, aliases


def _resolve_duplicates(parsed: list[CheckedResponse], flagged: str) -> list[CheckedResponse]:
    """Set status and reason of each parsed file; return the files whose ratings are used."""
    by_rater: dict[str, list[CheckedResponse]] = {}
    for item in parsed:
        by_rater.setdefault(item.rater, []).append(item)
    used = []
    for items in by_rater.values():
        items.sort(key=lambda p: (bool(p.chain), -p.n_ratings, -p.updated.timestamp(), p.name))
        kept, others = items[0], items[1:]
        for item in items:
            reasons = []
            if item.chain:
                action = "ratings used" if flagged == "include" else "ratings excluded"
                reasons.append(f"{'; '.join(item.chain)} ({action}, --flagged {flagged})")
            if item.partial_reason:
                reasons.append(f"partial: {item.partial_reason}")
            item.status = ("flagged" if item.chain else "partial" if item.partial_reason
                           else "accepted")
            item.reason = "; ".join(reasons)
        for other in others:
            why = _preference(kept, other)
            other.status = "duplicate"
            other.reason = f"same rater as {kept.name} ({why}), which is used instead" + (
                f"; {other.reason}" if other.reason else "")
        if others:
            names = ", ".join(o.name for o in others)
            kept.reason = "; ".join(filter(None, [kept.reason, f"also returned as {names} (not used)"]))
        used.append(kept)
    return used


def _preference(kept: CheckedResponse, other: CheckedResponse) -> str:
    if bool(kept.chain) != bool(other.chain):
        return "its hash chain verifies"
    if kept.n_ratings != other.n_ratings:
        return f"it has more ratings: {kept.n_ratings} vs {other.n_ratings}"
    if kept.updated != other.updated:
        return "it was updated later"
    same = ("identical ratings" if _answers(kept) == _answers(other)
            else "as many ratings (not the same ones)")
    return f"{same}, updated at the same time; first by file name"


def _answers(item: CheckedResponse) -> list:
    return sorted((p["position"], p["token"], sorted(p["ratings"].items(), key=str))
                  for p in item.data["panels"])


@dataclass
class Answers:
    """The answers of the response files used, for each block's task to unblind."""

    used: list[CheckedResponse]
    context: ResponseChecker
    flagged: str

    def table(self, block: int) -> pd.DataFrame:
        """Block ``block``'s answers as its task's tidy table."""
        from glidemed.tasks import get_task

        return get_task(self.context.key.tasks[block]).unblind(self, block)

    def panels(self, block: int, order: Callable[[dict], tuple] | None = None):
        """(rater, excluded, response panel, its KeyPanel, prompt) of every panel seen in
        ``block``, raters in order, panels by ``order`` (default: their position);
        ``excluded``: the file's chain failed and ``--flagged exclude``."""
        context = self.context
        for item in sorted(self.used, key=lambda p: p.rater):
            excluded = bool(item.chain) and self.flagged == "exclude"
            mine = [p for p in item.data["panels"] if context.block(p["token"]) == block]
            for panel in sorted(mine, key=order or (lambda p: p["position"])):
                entry = context.key.panels[panel["token"]]
                yield item.rater, excluded, panel, entry, context.prompts[entry.prompt_id]


def tidy_ratings(answers: Answers, block: int) -> pd.DataFrame:
    """One row per (panel seen, aspect) of a block of one-condition panels (ratings,
    Turing), joined with the key and prompts: :mod:`glidemed.analysis.tidy`."""
    context = answers.context
    aspects, flag_keys = list(context.block_levels[block]), context.block_flags[block]
    prompt_rank = {pid: i for i, pid in enumerate(context.prompts)}
    condition_rank = {c: i for i, c in enumerate(context.key.conditions)}

    def study_order(panel: dict) -> tuple:
        entry = context.key.panels[panel["token"]]
        return (prompt_rank[entry.prompt_id], condition_rank.get(entry.condition, 1 << 30),
                entry.condition, panel["position"])

    columns: dict[str, list] = {c: [] for c in TIDY_COLUMNS + flag_keys}
    for rater, excluded, panel, entry, prompt in answers.panels(block, study_order):
        flags = [bool(panel["flags"].get(f, False)) for f in flag_keys]
        for aspect in aspects:
            score = panel["ratings"].get(aspect)
            reason = "flagged" if excluded else "" if score is not None else "missing"
            columns["rater"].append(rater)
            columns["panel"].append(panel["token"])
            columns["prompt_id"].append(prompt.id)
            columns["style"].append(prompt.style)
            columns["style_group"].append(prompt.style_group)
            columns["topic"].append(prompt.topic)
            columns["detail"].append(prompt.detail)
            columns["condition"].append(entry.condition)
            columns["aspect"].append(aspect)
            columns["score"].append(pd.NA if reason else score)
            columns["exclusion"].append(reason)
            columns["seconds"].append(panel["seconds"])
            columns["repeat"].append(panel["repeat"])
            columns["comment"].append(panel["comment"])
            for f, value in zip(flag_keys, flags):
                columns[f].append(value)
    if not columns["rater"]:
        return empty_ratings(flag_keys)
    return normalise(pd.DataFrame(columns), flag_keys)


def _profiles(used: list[CheckedResponse], study: Study) -> pd.DataFrame:
    keys = [f.key for f in study.survey.profile]
    rows = []
    for item in sorted(used, key=lambda p: p.rater):
        profile = item.data["rater"]["profile"]
        # fields outside the study's profile are kept; one named 'rater' cannot replace the id
        rows.append({**{k: profile.get(k) for k in [*keys, *profile]}, "rater": item.rater})
    return pd.DataFrame(rows, columns=["rater"] + keys + sorted(
        {k for r in rows for k in r} - {"rater", *keys}))


def _sha256_or_blank(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return ""


def simulated_files(ledger: pd.DataFrame) -> int:
    """Response files analysed (not rejected or superseded) that glidemed simulate made."""
    if ledger.empty or "simulated" not in ledger:
        return 0
    analysed = ~ledger["status"].isin(["rejected", "duplicate"])
    return int(ledger.loc[analysed, "simulated"].fillna(False).astype(bool).sum())
