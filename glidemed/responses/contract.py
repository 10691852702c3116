"""The response-file contract: what a returned file must be, checked the same way everywhere.

A response file (``glidemed-response/1``, glidemed/schemas/response.schema.json) is decoded
as outside JSON, validated against the schema, matched with its build (study id, build
hash), its answers checked against the key (tokens, positions, each block's scales and
flags), and its hash chain and the rater's plan verified (:mod:`glidemed.responses.chain`,
:mod:`glidemed.responses.integrity`). The server, ``analyze``, ``archive`` and ``simulate``
all use these checks.
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
from typing import Any, Callable

import fastjsonschema
import jsonschema

from glidemed import outside_json
from glidemed.errors import AnalysisError
from glidemed.fileio import sha256_bytes
from glidemed.responses.chain import chain_problems
from glidemed.responses.integrity import integrity_problems
from glidemed.study import Study
from glidemed.survey.key import SurveyKey

SIMULATED_BROWSER = "glidemed simulate"  # how simulated files name their browser
RESPONSE_SCHEMA = "glidemed-response/1"
# A real response (2,176 panels with every answer event) is a few MB; anything far larger
# is not a response, and is rejected without being read.
MAX_RESPONSE_BYTES = 20 * 1024 * 1024


class Rejected(Exception):
    """A response file cannot be used; the message is its ledger reason."""


@dataclass
class CheckedResponse:
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


@dataclass
class ResponseChecker:
    """What a response is checked against: the study and the build's key. Each block of
    the survey has its own scales (``block_levels``: aspect -> number of levels) and flags."""

    study: Study
    key: SurveyKey
    block_levels: list[dict[str, int]]
    block_flags: list[list[str]]
    prompts: dict[str, Any]
    pseudonymized: bool = False
    key_name: str = "key"

    def block(self, token: str) -> int:
        return self.key.block_of(token)

    def levels(self, token: str) -> dict[str, int]:
        return self.block_levels[self.block(token)]

    def flags(self, token: str) -> list[str]:
        return self.block_flags[self.block(token)]

    @classmethod
    def from_key(cls, study: Study, key: SurveyKey | dict, key_name: str = "key",
                 pseudonymized: bool = False) -> "ResponseChecker":
        from glidemed.survey.key import key_problems
        from glidemed.tasks import block_views

        if not isinstance(key, SurveyKey):
            problems = key_problems(key)
            if problems:
                raise AnalysisError(f"{key_name}: not a glidemed key ({problems[0]})")
            key = SurveyKey.of(key, study.images_per_panel, study.survey.repeat_panels)
        if key.study_id not in ("", study.id):
            raise AnalysisError(f"{key_name}: belongs to study {key.study_id!r}, not {study.id!r}")
        prompts = {p.id: p for p in study.prompts()}
        unknown = sorted({p.prompt_id for p in key.panels.values()} - set(prompts))
        if unknown:
            raise AnalysisError(f"{key_name}: prompt id(s) not in study {study.id!r}: "
                                f"{', '.join(unknown[:5])} (was the study file changed after the build?)")
        views = block_views(study)
        if key.tasks != [v.task for v in views]:
            raise AnalysisError(f"{key_name}: its survey has the task(s) {', '.join(key.tasks)}, "
                                f"the study file {', '.join(v.task for v in views)} (was the study "
                                "file changed after the build?)")
        return cls(study, key, [{a.key: len(a.levels) for a in v.aspects} for v in views],
                   [[f.key for f in v.flags] for v in views], prompts, pseudonymized, key_name)


def parse_response(path: Path, context: ResponseChecker, max_bytes: int = MAX_RESPONSE_BYTES,
                   name: str | None = None) -> CheckedResponse:
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


def response_context(study: Study, key: SurveyKey | dict, key_name: str = "key") -> ResponseChecker:
    """What :func:`check_response` checks a response against (built once per key)."""
    return ResponseChecker.from_key(study, key, key_name)


def check_response(raw: bytes, context: ResponseChecker, name: str, data: Any = None) -> CheckedResponse:
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
        data, context.key, context.study.survey.profile, [context.levels(t) for t in order],
        [context.flags(t) for t in order], check_plan=not context.pseudonymized)
    return CheckedResponse(name, sha256_bytes(raw), data, n_panels, n_ratings, partial, chain)


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


def _check_build(data: dict, context: ResponseChecker) -> None:
    if data["study_id"] != context.study.id:
        raise Rejected(f"response to study {_short(data['study_id'])}, not {context.study.id!r}")
    if data["build_hash"] != context.key.build_hash:
        raise Rejected(f"from another survey build (build hash {data['build_hash'][:12]}..., "
                       f"this key's is {context.key.build_hash[:12]}...); "
                       + _previous_key_hint(context.key_name, data["build_hash"]))


def _previous_key_hint(key_name: str, build_hash: str) -> str:
    """Where the key of an earlier build is: the build keeps it in key/previous/."""
    folder = Path(key_name).parent / "previous" if key_name != "key" else Path("key/previous")
    kept = folder / f"key-{build_hash[:16]}.json"
    if kept.is_file():
        return f"its key is {kept}: analyse these files with --key {kept}"
    return (f"the key of an earlier build is kept in {folder}/ (key-<build hash>.json); "
            "analyse the files of that build with --key")


def _check_answers(data: dict, context: ResponseChecker) -> tuple[int, int, str]:
    """Check tokens, positions, aspects, flags and scores against the key and the study.
    Returns (panels rated, ratings given, why it is partial or '')."""
    order = data["order"]
    unknown = [t for t in order if t not in context.key.panels]
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
        if token not in context.key.panels:
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
        extra_images = set(panel["images"]) - set(context.key.panels[token].images)
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
