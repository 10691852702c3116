"""Ingest returned response files: validate, keep one file per rater, unblind into the tidy table.

Every file given is accounted for in the ledger, one row per file:

- ``accepted``: valid, every panel in the rater's order rated;
- ``partial``: valid, but some panels or aspects are not rated (the rated ones are used);
- ``flagged``: valid, but its hash chain does not verify, its ratings block disagrees
  with its events, or its order, images, repeats, profile or events differ from what
  the build gives its rater id (edited after the fact, or copied under another id; see
  :mod:`glidemed.analysis.integrity`); its ratings are used or excluded as ``flagged`` says;
- ``duplicate``: valid, but another file of the same rater is used instead (see below);
- ``rejected``: not used; ``reason`` says why (not JSON, wrong schema, another build...).

Duplicate rule: of several usable files with the same rater id, the one used is the one
whose chain verifies, then the one with the most ratings, then the latest ``updated``
time, then the first file name in sort order. Both files are named in the ledger.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import fastjsonschema
import jsonschema
import pandas as pd

from glidemed import outside_json
from glidemed.analysis.integrity import integrity_problems
from glidemed.analysis.tidy import TIDY_COLUMNS, empty_ratings, normalise
from glidemed.errors import AnalysisError
from glidemed.fileio import sha256_bytes, sha256_file
from glidemed.paths import SERVER_LOG
from glidemed.study import Study
from glidemed.survey.chain import chain_problems

RESPONSE_SCHEMA = "glidemed-response/1"
# A real response (2,176 panels with every answer event) is a few MB; anything far larger
# is not a response, and is rejected without being read.
MAX_RESPONSE_BYTES = 20 * 1024 * 1024
FLAGGED_MODES = ("include", "exclude")
LEDGER_COLUMNS = ["file", "sha256", "rater", "status", "reason", "n_panels", "n_ratings",
                  "complete", "updated", "simulated"]
SIMULATED_BROWSER = "glidemed simulate"  # how simulated files name their browser


class Rejected(Exception):
    """A response file cannot be used; the message is its ledger reason."""


@dataclass
class _Parsed:
    """A response that passed every check, with what the ledger and the tidy table need."""

    name: str  # the file as the ledger names it
    sha256: str
    data: dict
    n_panels: int  # panels with at least one rating
    n_ratings: int
    partial_reason: str
    chain: list[str]  # hash-chain problems; empty when the chain verifies
    status: str = ""
    reason: str = ""

    @property
    def rater(self) -> str:
        """The rater id as analysed: trimmed, in Unicode NFC (see :func:`normalise_rater`)."""
        return normalise_rater(self.data["rater"]["id"])

    @property
    def simulated(self) -> bool:
        return is_simulated(self.data)

    @property
    def updated(self) -> datetime:
        return _parse_time(self.data["updated"])

    def ledger_row(self) -> dict:
        return {"file": self.name, "sha256": self.sha256, "rater": self.rater,
                "status": self.status, "reason": self.reason, "n_panels": self.n_panels,
                "n_ratings": self.n_ratings, "complete": not self.partial_reason,
                "updated": self.data["updated"], "simulated": self.simulated}


def normalise_rater(rater: str) -> str:
    """The rule for rater ids: surrounding spaces removed, Unicode NFC (so that 'é' typed
    as one character or as 'e' and an accent is one id). Case is kept: ids that differ
    only by case are two raters, and the ledger warns about them."""
    return unicodedata.normalize("NFC", rater.strip())


def is_simulated(data: dict) -> bool:
    """Whether a response was written by ``glidemed simulate`` (its browser field says so)."""
    return str(data.get("browser", "")).startswith(SIMULATED_BROWSER)


def _schema() -> dict:
    text = resources.files("glidemed").joinpath("schemas/response.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def response_validator() -> jsonschema.protocols.Validator:
    """The reference JSON Schema validator (formats such as date-time checked); it words
    the ledger's reasons."""
    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@lru_cache(maxsize=1)
def fast_validator() -> Callable[[Any], Any]:
    """The same schema compiled to Python (fastjsonschema): about 50 times faster, so that
    valid files, the common case, are checked quickly."""
    return fastjsonschema.compile(_schema())


def ingest_responses(study: Study, key: dict, paths: Iterable[str | os.PathLike],
                     flagged: str = "exclude", max_bytes: int = MAX_RESPONSE_BYTES,
                     key_name: str = "key", pseudonymized: bool = False,
                     allow_simulated: bool = False
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`ingest` of a one-block survey, its answers as its task's tidy table:
    ``(table, ledger, profiles)``."""
    answers, ledger, profiles = ingest(study, key, paths, flagged, max_bytes, key_name,
                                       pseudonymized, allow_simulated)
    if len(answers.context.tasks) != 1:
        raise AnalysisError(f"{study.path}: a survey of {len(answers.context.tasks)} blocks; "
                            "read it with ingest()")
    return answers.table(0), ledger, profiles


def ingest(study: Study, key: dict, paths: Iterable[str | os.PathLike],
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
    context = _Context.from_key(study, key, key_name)
    context.pseudonymized = pseudonymized
    rows: list[_Parsed | dict] = []  # one per file, in the order collected
    files, aliases = collect_all_files(paths)
    by_path: dict[Path, _Parsed | dict] = {}
    for path, name in files.items():
        try:
            row: _Parsed | dict = parse_response(path, context, max_bytes, name)
        except Rejected as exc:
            row = _other_row(name, _sha256_or_blank(path), "rejected", str(exc))
        rows.append(row)
        by_path[path] = row
    parsed = [r for r in rows if isinstance(r, _Parsed)]
    _refuse_mixed(parsed, allow_simulated)
    used = _resolve_duplicates(parsed, flagged)
    _warn_case_only(parsed)
    ledger_rows = [r.ledger_row() if isinstance(r, _Parsed) else r for r in rows]
    for alias, path in aliases:
        first = by_path[path]
        first_row = first.ledger_row() if isinstance(first, _Parsed) else first
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


def _refuse_mixed(parsed: list[_Parsed], allow_simulated: bool) -> None:
    simulated = [p.name for p in parsed if p.simulated]
    real = [p.name for p in parsed if not p.simulated]
    if simulated and real and not allow_simulated:
        raise AnalysisError(
            f"{len(simulated)} simulated response file(s) (e.g. {simulated[0]}, written by "
            f"glidemed simulate) are mixed with {len(real)} real one(s) (e.g. {real[0]}); "
            "analyse them apart, or pass --allow-simulated to mix them on purpose")


def _warn_case_only(parsed: list[_Parsed]) -> None:
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


@dataclass
class _Context:
    """What a response is checked against: the study and the build's key. Each block of
    the survey has its own scales (``levels``: aspect -> number of levels) and flags."""

    study: Study
    key: dict
    build_hash: str
    panels: dict[str, dict]
    images: dict[str, frozenset[str]]
    tasks: list[str]  # each block's task
    block_levels: list[dict[str, int]]
    block_flags: list[list[str]]
    prompts: dict[str, Any]
    pseudonymized: bool = False
    key_name: str = "key"

    def block(self, token: str) -> int:
        return self.panels[token].get("block", 0)

    def levels(self, token: str) -> dict[str, int]:
        return self.block_levels[self.block(token)]

    def flags(self, token: str) -> list[str]:
        return self.block_flags[self.block(token)]

    @classmethod
    def from_key(cls, study: Study, key: dict, key_name: str = "key") -> "_Context":
        try:
            panels = key["panels"]
            build_hash = key["build_hash"]
            images = {t: frozenset(p["images"]) for t, p in panels.items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise AnalysisError(f"{key_name}: not a glidemed key (missing {exc})") from None
        if key.get("study_id") not in (None, study.id):
            raise AnalysisError(f"{key_name}: belongs to study {key.get('study_id')!r}, "
                                f"not {study.id!r}")
        prompts = {p.id: p for p in study.prompts()}
        unknown = sorted({p["prompt_id"] for p in panels.values()} - set(prompts))
        if unknown:
            raise AnalysisError(f"{key_name}: prompt id(s) not in study {study.id!r}: "
                                f"{', '.join(unknown[:5])} (was the study file changed after the build?)")
        from glidemed.survey.randomize import key_blocks
        from glidemed.tasks import block_views

        views = block_views(study)
        tasks = [b.get("task", "ratings") for b in key_blocks(key)]
        if tasks != [v.task for v in views]:
            raise AnalysisError(f"{key_name}: its survey has the task(s) {', '.join(tasks)}, the "
                                f"study file {', '.join(v.task for v in views)} (was the study "
                                "file changed after the build?)")
        return cls(study, key, build_hash, panels, images, tasks,
                   [{a.key: len(a.levels) for a in v.aspects} for v in views],
                   [[f.key for f in v.flags] for v in views], prompts, key_name=key_name)


def parse_response(path: Path, context: _Context, max_bytes: int = MAX_RESPONSE_BYTES,
                   name: str | None = None) -> _Parsed:
    """Read and check one response file; raise :class:`Rejected` with the reason. ``name``:
    how the ledger names the file (default: ``path``)."""
    if path.is_symlink() and not path.exists():
        raise Rejected(f"broken symbolic link (it points to {os.readlink(path)}, which does "
                       "not exist)")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Rejected(f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB "
                           "limit for a response file; not read")
        raw = path.read_bytes()
    except OSError as exc:
        raise Rejected(f"cannot read file: {exc.strerror or exc}") from None
    return check_response(raw, context, str(path) if name is None else name)


def response_context(study: Study, key: dict, key_name: str = "key") -> _Context:
    """What :func:`check_response` checks a response against (built once per key)."""
    return _Context.from_key(study, key, key_name)


def check_response(raw: bytes, context: _Context, name: str, data: Any = None) -> _Parsed:
    """Every check of one response's bytes (JSON, schema, build, answers, chain): the
    same for a file given to ``analyze`` and a body POSTed to ``glidemed serve``.
    ``data``: ``raw`` already decoded by :func:`decode_response`. Raises :class:`Rejected`
    with the reason."""
    data = decode_response(raw) if data is None else data
    check_schema(data)
    if not normalise_rater(data["rater"]["id"]):
        raise Rejected("rater.id: empty once surrounding spaces are removed (a rater id is "
                       "needed)")
    _check_build(data, context)
    n_panels, n_ratings, partial = _check_answers(data, context)
    order = data["order"]
    chain = chain_problems(data, context.pseudonymized) + integrity_problems(
        data, context.key, context.study.images_per_panel, context.study.survey.repeat_panels,
        context.study.survey.profile, [context.levels(t) for t in order],
        [context.flags(t) for t in order], check_plan=not context.pseudonymized)
    return _Parsed(name, sha256_bytes(raw), data, n_panels, n_ratings, partial, chain)


def decode_response(raw: bytes) -> Any:
    """Bytes -> JSON value; :class:`Rejected` for empty, non-UTF-8, invalid or hostile JSON
    (text that is not valid Unicode included: see :mod:`glidemed.outside_json`)."""
    if not raw.strip():
        raise Rejected("empty file" if not raw else "file holds only whitespace")
    try:
        return outside_json.loads(raw)
    except outside_json.OutsideJSONError as exc:
        reason = str(exc)
        if reason.startswith("not UTF-8"):
            reason += "; is this a response file?"
        raise Rejected(reason) from None


def check_schema(data: Any) -> None:
    """Raise :class:`Rejected` unless ``data`` is a valid response per the JSON Schema."""
    if not isinstance(data, dict) or "schema" not in data:
        kind = ("JSON object without 'schema'" if isinstance(data, dict)
                else _JSON_KINDS.get(type(data), type(data).__name__))
        raise Rejected(f"not a glidemed response (a {kind}, expected an object with "
                       f"'schema': '{RESPONSE_SCHEMA}')")
    if data["schema"] != RESPONSE_SCHEMA:
        raise Rejected(f"not a glidemed response: schema is {_short(data['schema'])}, "
                       f"expected '{RESPONSE_SCHEMA}'")
    try:
        fast_validator()(data)
        return
    except fastjsonschema.JsonSchemaException as exc:
        fast_message = str(exc)
    errors = sorted(response_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:  # the two validators disagree: report the compiled one's finding
        raise Rejected(f"does not match the response schema: {_short(fast_message, 160)}")
    shown = "; ".join(f"{schema_where(e)}: {_short_message(e)}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    raise Rejected(f"does not match the response schema: {shown}{more}")


_JSON_KINDS = {list: "JSON array", str: "JSON string", int: "JSON number", float: "JSON number",
               bool: "JSON boolean", type(None): "JSON null"}


def _check_build(data: dict, context: _Context) -> None:
    if data["study_id"] != context.study.id:
        raise Rejected(f"response to study {_short(data['study_id'])}, not {context.study.id!r}")
    if data["build_hash"] != context.build_hash:
        raise Rejected(f"from another survey build (build hash {data['build_hash'][:12]}..., "
                       f"this key's is {context.build_hash[:12]}...); "
                       + _previous_key_hint(context.key_name, data["build_hash"]))


def _previous_key_hint(key_name: str, build_hash: str) -> str:
    """Where the key of an earlier build is: the build keeps it in key/previous/."""
    folder = Path(key_name).parent / "previous" if key_name != "key" else Path("key/previous")
    kept = folder / f"key-{build_hash[:16]}.json"
    if kept.is_file():
        return f"its key is {kept}: analyse these files with --key {kept}"
    return (f"the key of an earlier build is kept in {folder}/ (key-<build hash>.json); "
            "analyse the files of that build with --key")


def _check_answers(data: dict, context: _Context) -> tuple[int, int, str]:
    """Check tokens, positions, aspects, flags and scores against the key and the study.
    Returns (panels rated, ratings given, why it is partial or '')."""
    order = data["order"]
    unknown = [t for t in order if t not in context.panels]
    if unknown:
        raise Rejected(f"order: {len(unknown)} panel token(s) not in this build's key, "
                       f"e.g. {unknown[0]!r}")
    first_seen: dict[str, int] = {}
    positions: set[int] = set()
    n_panels = n_ratings = n_missing = 0
    for i, panel in enumerate(data["panels"]):
        where = f"panels[{i}]"
        token, position = panel["token"], panel["position"]
        if not isinstance(position, int):
            raise Rejected(f"{where}.position: {position!r} is not a whole number")
        if token not in context.panels:
            raise Rejected(f"{where}.token: {token!r} is not a panel of this build")
        if position in positions:
            raise Rejected(f"{where}.position: position {position} appears twice")
        positions.add(position)
        if position >= len(order) or order[position] != token:
            raise Rejected(f"{where}: token {token!r} is not at position {position} of the order")
        if token in first_seen and not panel["repeat"]:
            raise Rejected(f"{where}.token: panel {token!r} appears again (first at position "
                           f"{first_seen[token]}) without being marked as a repeat")
        first_seen.setdefault(token, position)
        extra_images = set(panel["images"]) - context.images[token]
        if extra_images:
            raise Rejected(f"{where}.images: image token {sorted(extra_images)[0]!r} does not "
                           f"belong to panel {token!r}")
        levels, flags = context.levels(token), context.flags(token)
        for aspect, score in panel["ratings"].items():
            if aspect not in levels:
                raise Rejected(f"{where}.ratings: unknown aspect {_short(aspect)} "
                               f"(study aspects: {', '.join(levels)})")
            if score is None:
                continue
            if not isinstance(score, int) or isinstance(score, bool):
                raise Rejected(f"{where}.ratings.{aspect}: score {score!r} is not a whole number")
            if not 0 <= score < levels[aspect]:
                raise Rejected(f"{where}.ratings.{aspect}: score {score} is out of range "
                               f"0-{levels[aspect] - 1}")
        for flag in panel["flags"]:
            if flag not in flags:
                raise Rejected(f"{where}.flags: unknown flag {_short(flag)} "
                               f"(study flags: {', '.join(flags) or 'none'})")
        given = sum(panel["ratings"].get(a) is not None for a in levels)
        n_ratings += given
        n_panels += given > 0
        n_missing += len(levels) - given
    if n_ratings == 0:
        raise Rejected("no panel has a rating")
    unseen = len(order) - len(positions)
    parts = []
    if unseen:
        parts.append(f"{unseen} of {len(order)} panels not reached")
    if n_missing:
        parts.append(f"{n_missing} rating(s) left blank")
    return n_panels, n_ratings, ", ".join(parts)


def _resolve_duplicates(parsed: list[_Parsed], flagged: str) -> list[_Parsed]:
    """Set status and reason of each parsed file; return the files whose ratings are used."""
    by_rater: dict[str, list[_Parsed]] = {}
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


def _preference(kept: _Parsed, other: _Parsed) -> str:
    if bool(kept.chain) != bool(other.chain):
        return "its hash chain verifies"
    if kept.n_ratings != other.n_ratings:
        return f"it has more ratings: {kept.n_ratings} vs {other.n_ratings}"
    if kept.updated != other.updated:
        return "it was updated later"
    same = ("identical ratings" if _answers(kept) == _answers(other)
            else "as many ratings (not the same ones)")
    return f"{same}, updated at the same time; first by file name"


def _answers(item: _Parsed) -> list:
    return sorted((p["position"], p["token"], sorted(p["ratings"].items(), key=str))
                  for p in item.data["panels"])


@dataclass
class Answers:
    """The answers of the response files used, for each block's task to unblind."""

    used: list[_Parsed]
    context: _Context
    flagged: str

    def table(self, block: int) -> pd.DataFrame:
        """Block ``block``'s answers as its task's tidy table."""
        from glidemed.tasks import get_task

        return get_task(self.context.tasks[block]).unblind(self, block)

    def panels(self, block: int, order: Callable[[dict], tuple] | None = None):
        """(rater, excluded, response panel, key entry, prompt) of every panel seen in
        ``block``, raters in order, panels by ``order`` (default: their position);
        ``excluded``: the file's chain failed and ``--flagged exclude``."""
        context = self.context
        for item in sorted(self.used, key=lambda p: p.rater):
            excluded = bool(item.chain) and self.flagged == "exclude"
            mine = [p for p in item.data["panels"] if context.block(p["token"]) == block]
            for panel in sorted(mine, key=order or (lambda p: p["position"])):
                entry = context.panels[panel["token"]]
                yield item.rater, excluded, panel, entry, context.prompts[entry["prompt_id"]]


def tidy_ratings(answers: Answers, block: int) -> pd.DataFrame:
    """One row per (panel seen, aspect) of a block of one-condition panels (ratings,
    Turing), joined with the key and prompts: :mod:`glidemed.analysis.tidy`."""
    context = answers.context
    aspects, flag_keys = list(context.block_levels[block]), context.block_flags[block]
    prompt_rank = {pid: i for i, pid in enumerate(context.prompts)}
    condition_rank = {c: i for i, c in enumerate(context.key.get("conditions", []))}

    def study_order(panel: dict) -> tuple:
        entry = context.panels[panel["token"]]
        return (prompt_rank[entry["prompt_id"]], condition_rank.get(entry["condition"], 1 << 30),
                entry["condition"], panel["position"])

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
            columns["condition"].append(entry["condition"])
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


def _profiles(used: list[_Parsed], study: Study) -> pd.DataFrame:
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


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def schema_where(error: jsonschema.ValidationError) -> str:
    """Where in a JSON value a schema error is, as ``a.b[2]`` (``(top level)`` at the top)."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def _short_message(error: jsonschema.ValidationError) -> str:
    """The schema error without echoing a huge or hostile value in full."""
    if error.validator == "type":
        return f"expected {error.validator_value}, got {_short(error.instance)}"
    if error.validator == "required":
        return _short(error.message, 160)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unexpected field(s) {', '.join(map(_short, extra))}"
    if error.validator in ("minimum", "maximum", "pattern", "const", "format", "minLength",
                           "maxLength", "maxItems", "enum"):
        return f"{_short(error.instance)} fails {error.validator} {_short(error.validator_value)}"
    return _short(error.message, 160)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."
