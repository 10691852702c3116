"""Study files: load a TOML study, validate it (every problem at once), expand prompts.

A study file declares rating aspects, flags, styles, topics and conditions. Each
table below is a dataclass; its fields are the only keys allowed in that table, so a
typo is reported instead of ignored. See docs/study-files.md for the format.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from glidemed.errors import StudyError
from glidemed.toml_lines import key_lines, line_of

DETAIL_LEVELS = ("short", "detailed")
DEFAULT_LEVELS = [
    "completely wrong",
    "hints of correct",
    "clear signs of correct",
    "mainly correct",
    "perfectly correct",
]
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ORCID_URL = "https://orcid.org/"
ORCID_PATTERN = re.compile(r"^(?:https://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
SPDX_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")
# Upper bounds of the numeric keys, checked at load (a study far beyond them is a typo, and
# would run out of memory or time later). The paper used 4 images per prompt at 256 px.
MAX_SEED = 2**63 - 1  # the largest TOML integer
THEMES = ("auto", "light", "dark")
SCALINGS = ("smooth", "pixelated")
MAX_UPSCALE = 16
MAX_VARIANTS = 26  # templates per style
MAX_IMAGES_PER_PROMPT = 64
MAX_IMAGES_PER_PANEL = MAX_IMAGES_PER_PROMPT
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 4096  # pixels, when survey.image_size is not 0
MAX_REPEAT_PANELS = 1000  # and at most the number of panels: a repeat is of a distinct panel
SURVEYS_DIR = Path("surveys")
STUDY_FILENAME = "study.toml"


@dataclass(frozen=True)
class Aspect:
    """One rating scale, e.g. 'style' scored 0-4 with an anchored label per level."""

    key: str
    label: str
    question: str = ""
    levels: list[str] = field(default_factory=lambda: list(DEFAULT_LEVELS))

    @property
    def values(self) -> list[int]:
        return list(range(len(self.levels)))


@dataclass(frozen=True)
class Flag:
    """A yes/no mark a rater can set on a panel, e.g. 'nonsensical prompt'."""

    key: str
    label: str


@dataclass(frozen=True)
class Style:
    key: str
    label: str
    template: str = field(default="", metadata={"or": "templates = [...], one per prompt variant"})
    group: str = ""
    templates: list[str] = field(default_factory=list)  # prompt variants v1, v2, ...
    negative: str = ""  # what to avoid, for generators that take a negative prompt

    @property
    def variants(self) -> list[str]:
        """The templates, one per prompt variant (v1 first)."""
        return list(self.templates) if self.templates else [self.template]

    @property
    def style_group(self) -> str:
        """The group used in analysis; an ungrouped style forms its own group."""
        return self.group or self.key


@dataclass(frozen=True)
class Topic:
    key: str
    short: str
    detailed: str
    block: str = ""  # topics of one block are listed together: all short, then all detailed


@dataclass(frozen=True)
class Condition:
    """A way of making images: a generator and its parameters."""

    name: str
    generator: str
    params: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class ProfileField:
    """A rater profile question on the survey's start screen."""

    key: str
    label: str
    choices: list[str] = field(default_factory=list)  # empty: free text
    required: bool = False


@dataclass(frozen=True)
class ExampleImage:
    """An example image shown on the start screen for one level of one aspect."""

    aspect: str
    level: int
    file: str
    caption: str = ""


@dataclass(frozen=True)
class SurveyBlock:
    """One task of the survey, shown in the given order: ``[[survey.blocks]]``, or the
    one block that ``[survey] task = "..."`` stands for."""

    task: str
    instructions: str = ""  # shown on a screen of its own before the block's first panel
    settings: Any = None  # the task's settings (see glidemed.tasks), from its table

@dataclass(frozen=True)
class SurveySettings:
    """Options of `glidemed build`; the study decides, the defaults are blind and small."""

    image_format: str = "webp"  # jpeg, png or webp; identical for every condition
    image_quality: int = 75  # the highest quality; lowered (for every image alike) to fit max_file_mb
    max_file_mb: float = 20  # the single file's budget (what mail servers accept); 0: no budget
    image_size: int = 0  # pixels; 0 keeps the generated size
    conditions: list[str] = field(default_factory=list)  # empty: all conditions
    repeat_panels: int = 0  # panels shown again later to measure intra-rater consistency
    controls: list[str] = field(default_factory=list)  # conditions holding real reference images
    post_url: str = ""  # also POST the response file here; the download stays available
    contact: str = ""  # who raters write to, e.g. "Dr A. Smith, a.smith@example.org"
    theme: str = "auto"  # light, dark, or auto (the browser's preference); raters can switch
    scaling: str = "smooth"  # how images are enlarged: smooth or pixelated
    max_upscale: float = 2.0  # images are never shown larger than this many times their size
    require_answers: bool = False  # Next waits for every scale; else it asks once
    seconds_per_panel: int = 20  # the time estimate shown before the start
    break_every: int = 100  # suggest a short break every so many panels; 0: never
    language: str = "en"  # of glidemed's own texts on the page (buttons, messages): en, de
    profile: list[ProfileField] = field(default_factory=list)
    examples: list[ExampleImage] = field(default_factory=list)
    task: str = "ratings"  # the one-block form: a task of glidemed.tasks, its settings in [survey.<task>]
    blocks: list[SurveyBlock] = field(default_factory=list)  # built from the file, see _survey_blocks


@dataclass(frozen=True)
class Author:
    """An author of the archived study (its citation, RO-Crate and Zenodo metadata)."""

    family_names: str
    given_names: str = ""
    orcid: str = ""  # https://orcid.org/0000-0002-1825-0097 or the bare 16 digits
    affiliation: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.given_names} {self.family_names}".strip()

    @property
    def orcid_url(self) -> str:
        return f"{ORCID_URL}{orcid_digits(self.orcid)}" if self.orcid else ""


@dataclass(frozen=True)
class ArchiveMetadata:
    """The optional ``[archive]`` table: how the deposited archive is described and cited."""

    title: str = ""  # default: the study's title
    description: str = ""
    license: str = "CC-BY-4.0"  # an SPDX identifier
    keywords: list[str] = field(default_factory=list)
    version: str = ""
    doi: str = ""  # of the deposit, once known (e.g. Zenodo's reserved DOI)
    authors: list[Author] = field(default_factory=list)


@dataclass(frozen=True)
class Study:
    id: str
    title: str
    instructions: str
    styles: list[Style]
    topics: list[Topic]
    conditions: list[Condition]
    consent: str = ""
    seed: int = 0
    images_per_prompt: int = 8
    images_per_panel: int = 4
    aspects: list[Aspect] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    survey: SurveySettings = field(default_factory=SurveySettings)
    archive: ArchiveMetadata = field(default_factory=ArchiveMetadata)
    path: Path = field(default=Path(STUDY_FILENAME), compare=False)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def style(self, key: str) -> Style:
        return next(s for s in self.styles if s.key == key)

    def condition(self, name: str) -> Condition:
        return next(c for c in self.conditions if c.name == name)

    def prompts(self) -> list["Prompt"]:
        return expand_prompts(self)


@dataclass(frozen=True)
class Prompt:
    """One expanded prompt: a style applied to a topic at one detail level."""

    id: str
    style: str
    style_group: str
    topic: str
    detail: str
    text: str
    variant: str = "v1"  # which of the style's templates
    negative: str = ""  # the style's negative prompt
    seed_id: str = ""  # seeds come from this id: every variant of a prompt gets the same noise


# Fields that are not read from the file.
_INTERNAL_FIELDS = {"path", "blocks"}  # blocks: read by _survey_blocks
# Default aspects and flags: the paper's two scales and its one flag.
DEFAULT_ASPECTS = [
    Aspect("style", "Style", "Rate the best style in the images"),
    Aspect("content", "Content", "Rate the best content in the images"),
]
DEFAULT_FLAGS = [Flag("nonsensical", "Nonsensical prompt")]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            dict: "a table"}.get(tp, str(tp))


# TOML values accepted for each scalar annotation (a bool is not a number here).
_SCALAR_CHECKS = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    dict: lambda v: isinstance(v, dict),
}


def _convert(value: Any, tp: Any, where: str, errors: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; record a problem instead of raising."""
    origin = get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{where}: expected {_type_name(tp)}, got {value!r}")
            return []
        (item_tp,) = get_args(tp)
        items = [_convert(v, item_tp, f"{where}[{i}]", errors) for i, v in enumerate(value)]
        return [item for item in items if item is not None]  # bad items are already reported
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a table, got {value!r}")
            return None
        return _build(tp, value, where, errors)
    if not _SCALAR_CHECKS[tp](value):
        errors.append(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return None
    if tp is float and not math.isfinite(value):  # TOML has nan and inf
        errors.append(f"{where}: expected a finite number, got {value!r}")
        return None
    return float(value) if tp is float else value


@functools.cache
def _file_fields(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """The resolved annotations of ``cls`` and its fields that a study file may set."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _INTERNAL_FIELDS}
    return get_type_hints(cls), fields


def _build(cls: type, table: dict, where: str, errors: list[str]) -> Any:
    """Build dataclass ``cls`` from a TOML table, recording unknown, missing and mistyped keys."""
    hints, fields = _file_fields(cls)
    for key in table:
        if key not in fields:
            errors.append(f"{where}.{key}: unknown key{did_you_mean(key, fields)} "
                          f"(allowed: {', '.join(fields)})")
    kwargs = {}
    complete = True
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name in table:
            value = _convert(table[name], hints[name], f"{where}.{name}", errors)
            if value is not None:
                kwargs[name] = value
            elif required:
                complete = False
        elif required:
            errors.append(f"{where}.{name}: missing; expected {_type_name(hints[name])}")
            complete = False
        elif "or" in f.metadata and f.metadata["or"].split()[0] not in table:
            # required unless its alternative is given (a style's template or templates)
            errors.append(f"{where}.{name}: missing; expected {_type_name(hints[name])} "
                          f"(or {f.metadata['or']})")
            complete = False
    # Build what can be built, so that later checks still report their problems too.
    return cls(**kwargs) if complete else None


TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")


def did_you_mean(given: str, known, braces: bool = False) -> str:
    """"; did you mean X?" for the closest of ``known`` to a mistyped ``given``, else ""."""
    close = difflib.get_close_matches(str(given), [str(k) for k in known], n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {{{close[0]}}}?" if braces else f"; did you mean {close[0]}?"


def _check_keys(items: list, attr: str, where: str, errors: list[str],
                pattern: bool = True) -> None:
    """Keys unique within ``items`` and (with ``pattern``) of the form ids are made of."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = getattr(item, attr)
        if pattern and not KEY_PATTERN.match(key):
            errors.append(f"{where}[{i}].{attr}: {key!r} must be lower-case letters, digits, "
                          "'-' or '_' (it becomes part of ids and file names)")
        if key in seen:
            errors.append(f"{where}[{i}].{attr}: duplicate {attr} {key!r}")
        seen.add(key)


def check_range(value: int | float, low: int | float, high: int | float, where: str,
                 errors: list[str], note: str = "") -> None:
    """Record a problem unless ``low <= value <= high``; ``note`` says what bounds it."""
    if not low <= value <= high:
        extra = f" ({note})" if note else ""
        errors.append(f"{where}: expected {low}..{high}{extra}, got {value}")


def orcid_digits(orcid: str) -> str:
    """``0000-0002-1825-0097`` from an ORCID iD given bare or as its URL ('' if malformed)."""
    match = ORCID_PATTERN.match(orcid.strip())
    return match.group(1) if match else ""


def _orcid_checksum_ok(digits: str) -> bool:
    """ISO 7064 11,2 check digit of an ORCID iD."""
    total = 0
    for char in digits.replace("-", "")[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def _check_archive(meta: ArchiveMetadata, errors: list[str]) -> None:
    if not SPDX_PATTERN.match(meta.license):
        errors.append(f"archive.license: expected an SPDX identifier such as 'CC-BY-4.0', "
                      f"got {meta.license!r}")
    if meta.doi and not DOI_PATTERN.match(meta.doi):
        errors.append(f"archive.doi: expected a DOI such as '10.5281/zenodo.123', got {meta.doi!r}")
    for i, author in enumerate(meta.authors):
        if not author.family_names.strip():
            errors.append(f"archive.authors[{i}].family_names: must not be empty")
        if author.orcid:
            digits = orcid_digits(author.orcid)
            if not digits:
                errors.append(f"archive.authors[{i}].orcid: expected an ORCID iD such as "
                              f"'https://orcid.org/0000-0002-1825-0097', got {author.orcid!r}")
            elif not _orcid_checksum_ok(digits):
                errors.append(f"archive.authors[{i}].orcid: {author.orcid!r} fails the ORCID "
                              "check digit (a typo?)")


def _check_study(study: Study, errors: list[str]) -> None:
    from glidemed.generate.registry import GENERATORS, check_params

    if not study.styles:
        errors.append("styles: at least one style is required")
    if not study.aspects:
        errors.append("aspects: at least one aspect is required (leave the key out for the "
                      "default style and content scales)")
    if not study.topics:
        errors.append("topics: at least one topic is required")
    if not study.conditions:
        errors.append("conditions: at least one condition is required")
    _check_keys(study.styles, "key", "styles", errors)
    _check_keys(study.topics, "key", "topics", errors)
    _check_keys(study.conditions, "name", "conditions", errors)
    _check_keys(study.aspects, "key", "aspects", errors)
    _check_keys(study.flags, "key", "flags", errors)
    if not KEY_PATTERN.match(study.id):
        errors.append(f"id: {study.id!r} must be lower-case letters, digits, '-' or '_'")
    for i, style in enumerate(study.styles):
        _check_templates(style, f"styles[{i}]", errors)
    for i, aspect in enumerate(study.aspects):
        if len(aspect.levels) < 2:
            errors.append(f"aspects[{i}].levels: expected at least two levels")
    clash = {a.key for a in study.aspects} & {f.key for f in study.flags}
    if clash:
        errors.append(f"flags: keys {sorted(clash)} clash with aspect keys")
    if not study.title.strip():
        errors.append("title: must not be empty")
    check_range(study.seed, 0, MAX_SEED, "seed", errors)
    check_range(study.images_per_prompt, 1, MAX_IMAGES_PER_PROMPT, "images_per_prompt", errors)
    check_range(study.images_per_panel, 1, MAX_IMAGES_PER_PANEL, "images_per_panel", errors)
    for i, cond in enumerate(study.conditions):
        if cond.generator not in GENERATORS:
            errors.append(f"conditions[{i}].generator: unknown generator {cond.generator!r}"
                          f"{did_you_mean(cond.generator, GENERATORS)} "
                          f"(known: {', '.join(sorted(GENERATORS))})")
        else:
            errors.extend(f"conditions[{i}].params.{p}"
                          for p in check_params(cond.generator, cond.params))
    names = {c.name for c in study.conditions}
    settings = study.survey
    for key in ("conditions", "controls"):
        for name in getattr(settings, key):
            if name not in names:
                errors.append(f"survey.{key}: unknown condition {name!r} "
                              f"(known: {', '.join(sorted(names))})")
    if settings.image_format not in ("jpeg", "png", "webp"):
        errors.append(f"survey.image_format: expected jpeg, png or webp, "
                      f"got {settings.image_format!r}")
    check_range(settings.image_quality, 1, 100, "survey.image_quality", errors)
    check_range(settings.max_file_mb, 0, 2000, "survey.max_file_mb", errors, "MB, or 0 for no budget")
    if settings.image_size != 0:
        check_range(settings.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, "survey.image_size",
                     errors, "pixels, or 0 to keep the generated size")
    check_range(settings.repeat_panels, 0, MAX_REPEAT_PANELS, "survey.repeat_panels", errors)
    _check_keys(settings.profile, "key", "survey.profile", errors, pattern=False)
    if settings.post_url and urlsplit(settings.post_url).scheme not in ("http", "https"):
        errors.append(f"survey.post_url: expected an http(s) address, got {settings.post_url!r}")
    for key, allowed in (("theme", THEMES), ("scaling", SCALINGS)):
        if getattr(settings, key) not in allowed:
            errors.append(f"survey.{key}: expected one of {', '.join(allowed)}, got "
                          f"{getattr(settings, key)!r}{did_you_mean(getattr(settings, key), allowed)}")
    check_range(settings.max_upscale, 1, MAX_UPSCALE, "survey.max_upscale", errors)
    from glidemed.survey.texts import languages

    if settings.language not in languages():
        errors.append(f"survey.language: expected one of {', '.join(languages())}, got "
                      f"{settings.language!r}{did_you_mean(settings.language, languages())}")
    check_range(settings.seconds_per_panel, 1, 3600, "survey.seconds_per_panel", errors)
    check_range(settings.break_every, 0, 10000, "survey.break_every", errors, "0: never")
    if len(settings.contact) > 300:
        errors.append(f"survey.contact: at most 300 characters, got {len(settings.contact)}")
    _check_archive(study.archive, errors)
    _check_blocks(study, errors)
    aspects = {a.key: a for a in study.aspects}
    for i, example in enumerate(settings.examples):
        aspect = aspects.get(example.aspect)
        if aspect is None:
            errors.append(f"survey.examples[{i}].aspect: unknown aspect {example.aspect!r}")
        elif example.level not in aspect.values:
            errors.append(f"survey.examples[{i}].level: expected one of {aspect.values}")
        if not (study.folder / example.file).is_file():
            errors.append(f"survey.examples[{i}].file: {example.file} not found "
                          f"next to the study file")


def parse_study(text: str, path: str | Path = STUDY_FILENAME) -> Study:
    """Parse and validate study TOML ``text``; raise StudyError listing every problem."""
    path = Path(path)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(path, [f"not valid TOML: {exc}"]) from None
    errors: list[str] = []
    survey = table.get("survey")
    task_tables = _pop_task_tables(survey) if isinstance(survey, dict) else {}
    task_given = isinstance(survey, dict) and "task" in survey
    study = _build(Study, table, "study", errors)
    if study is not None:
        study = dataclasses.replace(
            study,
            path=path,
            aspects=study.aspects if "aspects" in table else list(DEFAULT_ASPECTS),
            flags=study.flags if "flags" in table else list(DEFAULT_FLAGS),
            survey=dataclasses.replace(study.survey,
                                       blocks=_survey_blocks(study.survey, task_tables, task_given,
                                                             errors)),
        )
        _check_study(study, errors)
    if errors:
        problems = [e.removeprefix("study.") for e in errors]
        raise StudyError(path, problems, _with_lines(text, problems))
    return study


def _pop_task_tables(survey: dict) -> dict:
    """Take ``blocks`` and every task's settings table out of the ``[survey]`` table (they
    are read by :func:`_survey_blocks`, with the settings type each task declares)."""
    from glidemed.tasks import TASKS

    return {name: survey.pop(name) for name in ["blocks", *TASKS] if name in survey}


def _survey_blocks(settings: SurveySettings, tables: dict, task_given: bool,
                   errors: list[str]) -> list[SurveyBlock]:
    """The survey's blocks: ``[[survey.blocks]]`` in order, or the one ``task`` names
    (``task_given``: the file sets ``[survey] task``)."""
    from glidemed.tasks import TASKS

    def block(task: str, instructions: str, own: dict, where: str) -> SurveyBlock | None:
        if task not in TASKS:
            errors.append(f"{where}.task: unknown task {task!r}{did_you_mean(task, TASKS)} "
                          f"(known: {', '.join(TASKS)})")
            return None
        return SurveyBlock(task, instructions, _task_settings(task, own.get(task, {}),
                                                              f"{where}.{task}", errors))

    for name in TASKS:  # settings of other tasks than the one named are still checked
        if name in tables and name != settings.task:
            _task_settings(name, tables[name], f"study.survey.{name}", errors)
    raw = tables.get("blocks")
    if raw is None:
        one = block(settings.task, "", tables, "study.survey")
        return [one] if one else []
    if not isinstance(raw, list) or not raw or not all(isinstance(b, dict) for b in raw):
        errors.append("study.survey.blocks: expected one or more [[survey.blocks]] tables")
        return []
    if task_given or any(name in tables for name in TASKS):
        errors.append("study.survey.blocks: give each block's task and settings in its "
                      "[[survey.blocks]] table, not in [survey] as well")
    blocks = []
    for i, own in enumerate(raw):
        where = f"study.survey.blocks[{i}]"
        unknown = sorted(set(own) - {"task", "instructions", *TASKS})
        for key in unknown:
            errors.append(f"{where}.{key}: unknown key{did_you_mean(key, ['task', 'instructions'])} "
                          f"(allowed: task, instructions and the task's settings table)")
        task, instructions = own.get("task"), own.get("instructions", "")
        if not isinstance(task, str):
            errors.append(f"{where}.task: missing; expected a string (one of {', '.join(TASKS)})")
            continue
        if not isinstance(instructions, str):
            errors.append(f"{where}.instructions: expected a string, got {instructions!r}")
            instructions = ""
        for other in set(own) & set(TASKS) - {task}:
            errors.append(f"{where}.{other}: settings of task {other!r} in a {task!r} block")
        made = block(task, instructions, own, where)
        if made:
            blocks.append(made)
    return blocks


def _task_settings(task: str, table: Any, where: str, errors: list[str]) -> Any:
    from glidemed.tasks import get_task

    cls = get_task(task).settings_class
    if cls is None:
        if table:
            errors.append(f"{where}: task {task!r} has no settings")
        return None
    if not isinstance(table, dict):
        errors.append(f"{where}: expected a table, got {table!r}")
        return cls()
    return _build(cls, table, where, errors) or cls()


def _check_blocks(study: Study, errors: list[str]) -> None:
    from glidemed.tasks import get_task

    several = len(study.survey.blocks) > 1
    for i, block in enumerate(study.survey.blocks):
        where = f"survey.blocks[{i}]" if several else "survey"
        errors.extend(get_task(block.task).problems(study, block, where))


def _with_lines(text: str, problems: list[str]) -> list[str]:
    """Each problem prefixed with the line of the key it names, where the file has one."""
    lines = key_lines(text)
    located = [(line_of(lines, problem.split(":", 1)[0]), problem) for problem in problems]
    located.sort(key=lambda pair: pair[0] if pair[0] is not None else math.inf)
    return [f"line {where}: {problem}" if where is not None else problem
            for where, problem in located]


def resolve_study_path(ref: str | Path, surveys_dir: Path = SURVEYS_DIR) -> Path:
    """A study reference is a study file, its folder, or the id of a study under surveys/."""
    candidate = Path(ref)
    if candidate.is_dir():
        candidate = candidate / STUDY_FILENAME
    if candidate.is_file():
        return candidate
    by_id = surveys_dir / str(ref) / STUDY_FILENAME
    if by_id.is_file():
        return by_id
    known = sorted(p.parent.name for p in surveys_dir.glob(f"*/{STUDY_FILENAME}"))
    close = difflib.get_close_matches(str(ref), known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    listing = f"; studies in {surveys_dir}: {', '.join(known)}" if known else ""
    raise StudyError(ref, [f"no study file found (looked for {candidate} and {by_id})"
                           f"{hint}{listing}"])


def load_study(ref: str | Path, surveys_dir: Path = SURVEYS_DIR) -> Study:
    """Load and validate a study given as a file, a folder or an id under ``surveys_dir``."""
    path = resolve_study_path(ref, surveys_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(path, [f"cannot read: {exc}"]) from None
    return parse_study(text, path)


def _check_templates(style: Style, where: str, errors: list[str]) -> None:
    """``template`` or ``templates`` (not both, not empty, at most MAX_VARIANTS), each with
    the one field {description}."""
    if style.template and style.templates:
        errors.append(f"{where}: give template or templates (the prompt variants), not both")
        return
    if not style.template and not style.templates:
        errors.append(f"{where}.templates: empty; expected at least one template")
        return
    if len(style.templates) > MAX_VARIANTS:
        errors.append(f"{where}.templates: {len(style.templates)} variants; at most {MAX_VARIANTS}")
    named = ([(f"{where}.template", style.template)] if style.template else
             [(f"{where}.templates[{j}]", t) for j, t in enumerate(style.templates)])
    for name, template in named:
        fields = TEMPLATE_FIELD.findall(template)
        for field_name in dict.fromkeys(f for f in fields if f != "description"):
            errors.append(f"{name}: unknown field {{{field_name}}}"
                          f"{did_you_mean(field_name, ['description'], braces=True)} "
                          "(a template has one field, {description})")
        if "{description}" not in template and fields == []:
            errors.append(f"{name}: must contain '{{description}}', got {template!r}")
    if len(set(style.variants)) < len(style.variants):
        errors.append(f"{where}.templates: the same template twice")


def variant_name(index: int) -> str:
    """The name of the ``index``-th template of a style: v1, v2, ..."""
    return f"v{index + 1}"


def has_variants(study: Study) -> bool:
    """Whether any style gives several templates (prompt ids then name their variant)."""
    return any(len(s.variants) > 1 for s in study.styles)


def expand_prompts(study: Study) -> list[Prompt]:
    """All prompts in study order: style, then topic block, then detail, then topic."""
    blocks: dict[str, list[Topic]] = {}
    for topic in study.topics:
        blocks.setdefault(topic.block or f"\0{topic.key}", []).append(topic)
    prompts = []
    named = has_variants(study)
    for style in study.styles:
        for v, template in enumerate(style.variants):
            for topics in blocks.values():
                for detail in DETAIL_LEVELS:
                    for topic in topics:
                        description = getattr(topic, detail)
                        base = f"{style.key}.{topic.key}.{detail}"
                        prompts.append(Prompt(
                            id=f"{base}.{variant_name(v)}" if named else base,
                            style=style.key,
                            style_group=style.style_group,
                            topic=topic.key,
                            detail=detail,
                            text=template.replace("{description}", description),
                            variant=variant_name(v),
                            negative=style.negative,
                            seed_id=base,
                        ))
    return prompts
