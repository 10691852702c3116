"""Simulation parameters: the paper's fitted defaults, :class:`SimParams` and their checks.

See the :mod:`glidemed.simulate` docstring for the model these parameters describe.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glidemed import outside_json
from glidemed.errors import AnalysisError
from glidemed.study import DETAIL_LEVELS, Study

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class AspectDefaults:
    """Fitted parameters of one aspect (rounded from tests/reference/simulate_defaults.json)."""

    cutpoints: tuple[float, ...]
    styles: dict[str, float]  # relative to microscopy
    detailed: float  # effect of a detailed vs a short description
    rater_sd: float
    prompt_sd: float


PAPER_DEFAULTS: dict[str, AspectDefaults] = {
    "style": AspectDefaults(
        cutpoints=(-3.82, -1.63, -0.01, 2.32),
        styles={"microscopy": 0.0, "histopathology": 0.70, "xray": -2.41, "mri": -6.21,
                "ct": -6.01, "photo": -1.23, "poster": 1.13, "illustration": 1.51},
        detailed=0.04, rater_sd=0.37, prompt_sd=1.18),
    "content": AspectDefaults(
        cutpoints=(-3.75, -0.81, 1.53, 3.76),
        styles={"microscopy": 0.0, "histopathology": -0.85, "xray": -3.28, "mri": -6.23,
                "ct": -4.77, "photo": -0.67, "poster": -1.08, "illustration": -0.23},
        detailed=0.58, rater_sd=0.69, prompt_sd=1.34),
}
PAPER_PROMPT_CORRELATION = 0.71  # between the style and content prompt effects
RADIOLOGY_STYLES = ("xray", "mri", "ct")
FACTORS = ("style", "condition", "detail")
_EFFECT_RE = re.compile(r"^(?:(?P<aspect>[a-z0-9_-]+)/)?(?P<factor>[a-z]+):(?P<level>[a-z0-9_-]+)$")


@dataclass(frozen=True)
class SimParams:
    """What can be changed about the simulated raters (see the :mod:`glidemed.simulate` docstring).

    ``effects`` maps ``[aspect/]factor:level`` to a latent effect that replaces the default:
    ``style:xray`` (a style key or a style group, e.g. ``style:radiology``),
    ``condition:soft``, ``detail:detailed``; prefix an aspect to set it for one aspect only
    (``content/style:xray``). ``None`` for an SD or the cut-points means the paper's value.
    """

    effects: dict[str, float] = field(default_factory=dict)
    cutpoints: tuple[float, ...] | None = None  # for every aspect with len+1 levels
    rater_sd: float | None = None
    prompt_sd: float | None = None
    prompt_correlation: float = PAPER_PROMPT_CORRELATION
    rater_correlation: float = 0.0  # not estimable from three raters; assumed independent
    missing: float = 0.002  # chance that a rating is left blank (paper: 2 of 1,632)
    dropout: float = 0.0  # chance that a rater stops partway (at 10-90% of the order)
    flag_rate: float = 0.02  # chance that a rater sets a flag on a panel (scores are kept)
    comment_rate: float = 0.01  # chance of a free-text comment on a panel
    revise: float = 0.02  # chance that an answer is first given wrong and corrected later
    seconds: float = 20.0  # median seconds per panel (log-normal, sigma 0.5)

    def with_effects(self, effects: dict[str, float]) -> SimParams:
        return dataclasses.replace(self, effects={**self.effects, **effects})


_PROBABILITIES = ("missing", "dropout", "flag_rate", "comment_rate", "revise")


def parse_effect(text: str) -> tuple[str, float]:
    """``'style:xray=-1.5'`` -> ``('style:xray', -1.5)``; AnalysisError when malformed."""
    name, sep, value = text.partition("=")
    name = name.strip().lower()
    match = _EFFECT_RE.match(name)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not match or match["factor"] not in FACTORS or not math.isfinite(number):
        raise AnalysisError(f"--effect {text!r}: expected [aspect/]FACTOR:LEVEL=NUMBER with "
                            f"FACTOR one of {', '.join(FACTORS)}, e.g. style:xray=-1.5")
    return name, number


def load_params(path: str | Path) -> SimParams:
    """Read parameters from a TOML or JSON file with :class:`SimParams` fields as keys."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        table = (outside_json.loads(text) if path.suffix.lower() == ".json"
                 else tomllib.loads(text))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AnalysisError(f"{path}: cannot read simulation parameters: {exc}") from None
    if not isinstance(table, dict):
        raise AnalysisError(f"{path}: expected a table of simulation parameters")
    names = {f.name for f in dataclasses.fields(SimParams)}
    problems = [f"{k}: unknown parameter (allowed: {', '.join(sorted(names))})"
                for k in table if k not in names]
    kwargs = {}
    for key, value in table.items():
        if key not in names:
            continue
        if key == "effects":
            if not isinstance(value, dict):
                problems.append("effects: expected a table of 'factor:level' = number")
                continue
            effects = {}
            for name, number in value.items():
                try:
                    effects.update([parse_effect(f"{name}={number}")])
                except AnalysisError as exc:
                    problems.append(f"effects: {exc.message}")
            kwargs[key] = effects
        elif key == "cutpoints":
            if not isinstance(value, list) or not all(_is_number(v) for v in value):
                problems.append("cutpoints: expected a list of numbers")
            else:
                kwargs[key] = tuple(float(v) for v in value)
        elif key in ("rater_sd", "prompt_sd") and value is None:
            kwargs[key] = None
        elif not _is_number(value):
            problems.append(f"{key}: expected a number, got {value!r}")
        else:
            kwargs[key] = float(value)
    if problems:
        raise AnalysisError(f"{path}: {len(problems)} problem(s): {'; '.join(problems)}")
    return SimParams(**kwargs)


def make_params(params_file: str | Path | None = None, effects: tuple[str, ...] | list[str] = (),
                **overrides: float | None) -> SimParams:
    """Parameters from an optional file, then ``--effect`` texts, then non-None ``overrides``."""
    params = load_params(params_file) if params_file else SimParams()
    params = params.with_effects(dict(parse_effect(e) for e in effects))
    return dataclasses.replace(params, **{k: v for k, v in overrides.items() if v is not None})


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aspect_defaults(aspect: str) -> AspectDefaults:
    """The paper's values for ``aspect``; an aspect the paper did not rate takes 'content'."""
    return PAPER_DEFAULTS.get(aspect, PAPER_DEFAULTS["content"])


def default_effect(aspect: str, style: str, group: str) -> float:
    """The default latent style effect of ``style`` (in ``group``) on ``aspect``."""
    table = aspect_defaults(aspect).styles
    if style in table:
        return table[style]
    radiology = [table[s] for s in RADIOLOGY_STYLES]
    others = [v for s, v in table.items() if s not in RADIOLOGY_STYLES]
    return float(np.mean(radiology if group == "radiology" else others))


def check_params(study: Study, params: SimParams) -> list[str]:
    """Every problem with ``params`` for ``study`` (unknown levels, bad probabilities...)."""
    problems = []
    aspects = {a.key for a in study.aspects}
    levels = {
        "style": {s.key for s in study.styles} | {s.style_group for s in study.styles},
        "condition": {c.name for c in study.conditions},
        "detail": set(DETAIL_LEVELS),
    }
    for name in params.effects:
        match = _EFFECT_RE.match(name)
        if not match or match["factor"] not in FACTORS:
            problems.append(f"effect {name!r}: expected [aspect/]factor:level")
            continue
        if match["aspect"] and match["aspect"] not in aspects:
            problems.append(f"effect {name!r}: no aspect {match['aspect']!r} "
                            f"(aspects: {', '.join(sorted(aspects))})")
        if match["level"] not in levels[match["factor"]]:
            problems.append(f"effect {name!r}: no {match['factor']} {match['level']!r} in study "
                            f"{study.id!r} (known: {', '.join(sorted(levels[match['factor']]))})")
    for key in _PROBABILITIES:
        if not 0 <= getattr(params, key) <= 1:
            problems.append(f"{key}: expected a probability in [0, 1], got {getattr(params, key)}")
    for key in ("rater_sd", "prompt_sd"):
        value = getattr(params, key)
        if value is not None and not (math.isfinite(value) and value >= 0):
            problems.append(f"{key}: expected a standard deviation >= 0, got {value}")
    for key in ("prompt_correlation", "rater_correlation"):
        if not -1 / max(1, len(aspects) - 1) < getattr(params, key) < 1 and len(aspects) > 1:
            problems.append(f"{key}: {getattr(params, key)} gives no valid correlation matrix "
                            f"for {len(aspects)} aspects")
    if params.seconds <= 0:
        problems.append(f"seconds: expected a positive number, got {params.seconds}")
    if params.cutpoints is not None:
        cuts = np.asarray(params.cutpoints, dtype=float)
        if len(cuts) < 1 or not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) <= 0):
            problems.append(f"cutpoints: expected increasing finite numbers, got {list(cuts)}")
        for aspect in study.aspects:
            if len(aspect.levels) != len(cuts) + 1:
                problems.append(f"cutpoints: {len(cuts)} cut-points do not fit aspect "
                                f"{aspect.key!r} with {len(aspect.levels)} levels")
    return problems
