"""Simulated raters: a cumulative-logit model of expert ratings, for tests, demos and power.

The model, per rating of panel (prompt p, condition c) by rater r on aspect a::

    eta = style[a, style of p] + detail[a, detail of p] + condition[a, c] + u[r, a] + v[p, a]
    P(score <= k) = logistic(theta[a, k] - eta)

with random rater severity ``u ~ N(0, rater_sd^2)`` and random prompt difficulty
``v ~ N(0, prompt_sd^2)`` (correlated across aspects). Larger ``eta`` means higher
scores; all effects are on this latent logit scale (R ``ordinal`` sign convention).

Defaults are a fit of this model (R ``ordinal::clmm``) to the published ratings of
Kather et al. (2022), nonsensical counted as 0; see ``tests/reference/simulate_defaults.R``.
Styles of other studies take the paper's value by key; otherwise a style in the group
``radiology`` takes the paper's radiology mean ("low") and any other style the mean of the
paper's other styles ("medium"). Aspects other than ``style`` take the paper's ``content``
values. Conditions have no effect unless set.

Two outputs: :func:`simulate_ratings` (the tidy table, fast, for power analysis) and
:func:`simulate_responses` (response files for a real survey build, which pass ingest).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from glidemed import __version__
from glidemed.errors import AnalysisError
from glidemed.fileio import write_text_atomic
from glidemed.study import DETAIL_LEVELS, Prompt, Study

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
_COMMENTS = ("image quality varies", "hard to judge", "one image is much better")


@dataclass(frozen=True)
class SimParams:
    """What can be changed about the simulated raters (see the module docstring).

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
        table = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
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


# --------------------------------------------------------------------------- the model

@dataclass
class Model:
    """The simulation model resolved for one study design: arrays ready for sampling."""

    prompts: list[Prompt]
    conditions: list[str]
    aspects: list[str]
    levels: list[int]  # number of score levels per aspect
    flags: list[str]
    panel_prompt: np.ndarray  # prompt index of each panel (prompt-major, condition-minor)
    panel_condition: np.ndarray  # condition index of each panel
    fixed: np.ndarray  # (panels, aspects) fixed part of eta
    cutpoints: list[np.ndarray]  # per aspect
    rater_sd: np.ndarray  # (aspects,)
    prompt_sd: np.ndarray
    params: SimParams

    @property
    def n_panels(self) -> int:
        return len(self.panel_prompt)


def default_effect(aspect: str, style: str, group: str) -> float:
    """The default latent style effect of ``style`` (in ``group``) on ``aspect``."""
    table = PAPER_DEFAULTS.get(aspect, PAPER_DEFAULTS["content"]).styles
    if style in table:
        return table[style]
    radiology = [table[s] for s in RADIOLOGY_STYLES]
    others = [v for s, v in table.items() if s not in RADIOLOGY_STYLES]
    return float(np.mean(radiology if group == "radiology" else others))


def _lookup(effects: dict[str, float], aspect: str, names: list[str]) -> float | None:
    """The most specific effect set for any of ``names`` ('factor:level', most specific first)."""
    for prefix in (f"{aspect}/", ""):
        for name in names:
            if prefix + name in effects:
                return effects[prefix + name]
    return None


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


def _cutpoints(aspect: str, n_levels: int) -> np.ndarray:
    """The paper's cut-points; for another number of levels, evenly spread over their range."""
    cuts = np.array(PAPER_DEFAULTS.get(aspect, PAPER_DEFAULTS["content"]).cutpoints)
    if n_levels == len(cuts) + 1:
        return cuts
    return np.linspace(cuts[0], cuts[-1], n_levels - 1)


def design_prompts(study: Study, n_prompts: int | None = None) -> list[Prompt]:
    """The study's prompts, or ``n_prompts`` of them balanced over styles and details.

    Fewer than the study has: taken round-robin over styles, a topic's short and detailed
    prompt together. More: the design is repeated, the copies get ids ``<id>~2``, ``~3``...
    (another prompt on the same topic in the same style, as a paraphrase would be).
    """
    prompts = study.prompts()
    if n_prompts is None:
        return prompts
    if n_prompts < 1:
        raise AnalysisError(f"number of prompts: expected at least 1, got {n_prompts}")
    by_style: dict[str, list[Prompt]] = {}
    topic_rank = {t.key: i for i, t in enumerate(study.topics)}
    for p in sorted(prompts, key=lambda p: (topic_rank[p.topic], DETAIL_LEVELS.index(p.detail))):
        by_style.setdefault(p.style, []).append(p)
    cycle = [p for group in zip(*by_style.values()) for p in group]
    out = []
    for i in range(n_prompts):
        copy, base = divmod(i, len(cycle))
        p = cycle[base]
        out.append(p if copy == 0 else dataclasses.replace(p, id=f"{p.id}~{copy + 1}"))
    return out


def build_model(study: Study, params: SimParams | None = None, n_prompts: int | None = None,
                conditions: list[str] | None = None, aspects: list[str] | None = None,
                prompts: list[Prompt] | None = None) -> Model:
    """Resolve ``params`` against the study design; AnalysisError listing every problem."""
    from glidemed.survey.panels import survey_conditions

    params = params or SimParams()
    problems = check_params(study, params)
    all_aspects = [a.key for a in study.aspects]
    aspects = list(aspects or all_aspects)
    problems += [f"aspect {a!r}: not in study {study.id!r}" for a in aspects if a not in all_aspects]
    conditions = list(conditions or survey_conditions(study))
    known = {c.name for c in study.conditions}
    problems += [f"condition {c!r}: not in study {study.id!r}" for c in conditions if c not in known]
    if problems:
        raise AnalysisError(f"simulation parameters: {'; '.join(problems)}")
    prompts = prompts if prompts is not None else design_prompts(study, n_prompts)
    n_levels = {a.key: len(a.levels) for a in study.aspects}
    panel_prompt = np.repeat(np.arange(len(prompts)), len(conditions))
    panel_condition = np.tile(np.arange(len(conditions)), len(prompts))
    fixed = np.zeros((len(panel_prompt), len(aspects)))
    for j, aspect in enumerate(aspects):
        base = PAPER_DEFAULTS.get(aspect, PAPER_DEFAULTS["content"])
        per_prompt = np.array([
            _style_effect(params.effects, aspect, p) + _detail_effect(params.effects, aspect,
                                                                      p.detail, base)
            for p in prompts])
        per_condition = np.array([_lookup(params.effects, aspect, [f"condition:{c}"]) or 0.0
                                  for c in conditions])
        fixed[:, j] = per_prompt[panel_prompt] + per_condition[panel_condition]
    cutpoints = [np.asarray(params.cutpoints, float) if params.cutpoints is not None
                 else _cutpoints(a, n_levels[a]) for a in aspects]
    defaults = [PAPER_DEFAULTS.get(a, PAPER_DEFAULTS["content"]) for a in aspects]
    rater_sd = np.array([params.rater_sd if params.rater_sd is not None else d.rater_sd
                         for d in defaults])
    prompt_sd = np.array([params.prompt_sd if params.prompt_sd is not None else d.prompt_sd
                          for d in defaults])
    return Model(prompts, conditions, aspects, [n_levels[a] for a in aspects],
                 [f.key for f in study.flags], panel_prompt, panel_condition, fixed, cutpoints,
                 rater_sd, prompt_sd, params)


def style_effect(study: Study, params: SimParams, aspect: str, style: str) -> float:
    """The latent effect of ``style`` on ``aspect``: set in ``params``, else the default."""
    entry = study.style(style)
    value = _lookup(params.effects, aspect, [f"style:{style}", f"style:{entry.style_group}"])
    return default_effect(aspect, style, entry.style_group) if value is None else value


def _style_effect(effects: dict[str, float], aspect: str, prompt: Prompt) -> float:
    value = _lookup(effects, aspect, [f"style:{prompt.style}", f"style:{prompt.style_group}"])
    return default_effect(aspect, prompt.style, prompt.style_group) if value is None else value


def _detail_effect(effects: dict[str, float], aspect: str, detail: str,
                   base: AspectDefaults) -> float:
    value = _lookup(effects, aspect, [f"detail:{detail}"])
    if value is not None:
        return value
    return base.detailed if detail == "detailed" else 0.0


def _correlated_normal(rng: np.random.Generator, n: int, sd: np.ndarray, rho: float) -> np.ndarray:
    """(n, len(sd)) normal draws with SDs ``sd`` and equal correlation ``rho`` between columns."""
    k = len(sd)
    corr = np.full((k, k), rho) + (1 - rho) * np.eye(k)
    return rng.standard_normal((n, k)) @ np.linalg.cholesky(corr).T * sd


# --------------------------------------------------------------------------- sessions

@dataclass
class Session:
    """What one simulated rater does: the places seen, in order, and the answers there."""

    rater: str
    order: np.ndarray  # panel index at each place (repeats included)
    repeat: np.ndarray  # bool per place
    seen: int  # places reached (the last one may be partly answered)
    scores: np.ndarray  # (seen, aspects) int, -1 where not answered
    flags: np.ndarray  # (seen, flags) bool
    comments: list[str]  # per seen place
    seconds: np.ndarray  # per seen place
    rng: np.random.Generator  # for details that do not change the answers (responses only)


OrderFn = Callable[[str, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def simulate_sessions(model: Model, n_raters: int, seed: int, repeats: int = 0,
                      order_fn: OrderFn | None = None) -> list[Session]:
    """Draw the random effects and every rater's session; deterministic given ``seed``.

    ``order_fn(rater id, rng)`` gives a rater's (panel index per place, repeat per place);
    by default a random order with ``repeats`` panels shown again later.
    """
    if n_raters < 1:
        raise AnalysisError(f"--raters: expected at least 1, got {n_raters}")
    params = model.params
    root = np.random.SeedSequence(seed)
    effects_seq, *rater_seqs = root.spawn(1 + n_raters)
    rng = np.random.default_rng(effects_seq)
    prompt_eff = _correlated_normal(rng, len(model.prompts), model.prompt_sd, params.prompt_correlation)
    rater_eff = _correlated_normal(rng, n_raters, model.rater_sd, params.rater_correlation)
    mean = model.fixed + prompt_eff[model.panel_prompt]  # (panels, aspects)
    width = max(2, len(str(n_raters)))
    sessions = []
    for r, seq in enumerate(rater_seqs):
        plan_rng, score_rng, extra_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        rater = f"sim-{r + 1:0{width}d}"
        order, repeat = (order_fn(rater, plan_rng) if order_fn
                         else _order(plan_rng, model.n_panels, repeats))
        n_places = len(order)
        seen = n_places
        if plan_rng.random() < params.dropout and n_places > 1:
            seen = int(plan_rng.integers(max(1, n_places // 10), max(2, n_places * 9 // 10)))
        latent = mean[order] + rater_eff[r] + score_rng.logistic(size=(n_places, len(model.aspects)))
        scores = np.empty(latent.shape, dtype=int)
        for j, cuts in enumerate(model.cutpoints):
            scores[:, j] = (latent[:, j, None] > cuts).sum(axis=1)
        blank = score_rng.random(scores.shape) < params.missing
        flags = score_rng.random((n_places, len(model.flags))) < params.flag_rate
        has_comment = score_rng.random(n_places) < params.comment_rate
        comment_pick = score_rng.integers(0, len(_COMMENTS), n_places)
        seconds = np.round(score_rng.lognormal(math.log(params.seconds), 0.5, n_places), 1)
        if seen < n_places:  # the last place reached is answered only partly
            blank[seen - 1, plan_rng.integers(0, len(model.aspects)):] = True
        scores[blank] = -1
        comments = [_COMMENTS[comment_pick[i]] if has_comment[i] else "" for i in range(seen)]
        sessions.append(Session(rater, order, repeat, seen, scores[:seen],
                                flags[:seen], comments, seconds[:seen], extra_rng))
    return sessions


def _order(rng: np.random.Generator, n_panels: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """A random order of the panels with ``repeats`` of them shown again at a later place."""
    order = list(rng.permutation(n_panels))
    repeat = [False] * n_panels
    for panel in rng.choice(n_panels, size=min(repeats, n_panels), replace=False):
        original = order.index(panel)  # repeats are inserted later, so this is the original
        at = int(rng.integers(original + 1, len(order) + 1))
        order.insert(at, panel)
        repeat.insert(at, True)
    return np.asarray(order, dtype=int), np.asarray(repeat, dtype=bool)


# --------------------------------------------------------------------------- tidy table

def simulate_ratings(study: Study, n_raters: int, n_prompts: int | None = None,
                     params: SimParams | None = None, seed: int = 0, *,
                     conditions: list[str] | None = None,
                     aspects: list[str] | None = None) -> pd.DataFrame:
    """Simulated ratings as the tidy table (:mod:`glidemed.analysis.tidy`).

    ``n_prompts`` is the total number of prompts (default: the study's; see
    :func:`design_prompts`); every rater rates every prompt x condition (default: the
    survey's conditions) on every aspect (default: the study's), with the study's
    ``survey.repeat_panels`` repeats. Panel ids are ``<prompt id>|<condition>``.
    """
    model = build_model(study, params, n_prompts, conditions, aspects)
    sessions = simulate_sessions(model, n_raters, seed, study.survey.repeat_panels)
    return ratings_from_sessions(model, sessions)


def ratings_from_sessions(model: Model, sessions: list[Session]) -> pd.DataFrame:
    from glidemed.analysis.tidy import TIDY_COLUMNS, normalise

    n_aspects = len(model.aspects)
    rater = np.concatenate([np.full(s.seen * n_aspects, s.rater, dtype=object) for s in sessions])
    panel = np.concatenate([np.repeat(s.order[:s.seen], n_aspects) for s in sessions])
    scores = np.concatenate([s.scores.ravel() for s in sessions])
    prompt = model.panel_prompt[panel]
    cond = np.asarray(model.conditions, dtype=object)[model.panel_condition[panel]]
    attr = {name: np.asarray([getattr(p, name) for p in model.prompts], dtype=object)[prompt]
            for name in ("id", "style", "style_group", "topic", "detail")}
    missing = scores < 0
    columns = {
        "rater": rater,
        "panel": attr["id"] + "|" + cond,
        "prompt_id": attr["id"], "style": attr["style"], "style_group": attr["style_group"],
        "topic": attr["topic"], "detail": attr["detail"], "condition": cond,
        "aspect": np.tile(np.asarray(model.aspects, dtype=object), len(scores) // n_aspects),
        "score": pd.array(np.where(missing, 0, scores), dtype="Int64"),
        "exclusion": np.where(missing, "missing", ""),
        "seconds": np.concatenate([np.repeat(s.seconds, n_aspects) for s in sessions]),
        "repeat": np.concatenate([np.repeat(s.repeat[:s.seen], n_aspects) for s in sessions]),
        "comment": np.concatenate([np.repeat(np.asarray(s.comments, dtype=object), n_aspects)
                                   for s in sessions]),
    }
    columns["score"][missing] = pd.NA
    for f, name in enumerate(model.flags):
        columns[name] = np.concatenate([np.repeat(s.flags[:, f], n_aspects) for s in sessions])
    return normalise(pd.DataFrame(columns, columns=TIDY_COLUMNS + model.flags), model.flags)


# --------------------------------------------------------------------------- response files

def simulate_responses(study: Study, key: dict, n_raters: int, out_dir: str | Path,
                       seed: int = 0, params: SimParams | None = None) -> list[Path]:
    """Write one response file per simulated rater for the survey build described by ``key``.

    Files follow glidemed/schemas/response.schema.json. Each rater's order, images and
    repeats are the ones the survey page gives that rater id
    (:func:`glidemed.survey.randomize.rater_plan`); the answers come from the model
    (seeded). Events are the answers in the order given (a few given wrong first and
    corrected after the next panel), the chain head is computed over them, and a rater
    who drops out leaves a partial file (``complete`` false). Returns the paths written.
    """
    from glidemed.survey.chain import ALGORITHM, chain_head
    from glidemed.survey.randomize import rater_plan

    if key.get("study_id") != study.id:
        raise AnalysisError(f"key: belongs to study {key.get('study_id')!r}, not {study.id!r}")
    by_id = {p.id: p for p in study.prompts()}
    tokens = sorted(key["panels"])  # the page's panel order
    entries = [key["panels"][t] for t in tokens]
    unknown = sorted({e["prompt_id"] for e in entries} - set(by_id))
    if unknown:
        raise AnalysisError(f"key: prompt id(s) not in study {study.id!r}: {', '.join(unknown[:5])}"
                            " (rebuild the survey: glidemed build)")
    if not tokens:
        raise AnalysisError("key: the survey has no panels")
    # The key decides the design (controls, panels left out); panels of one prompt share
    # its prompt effect.
    prompts = list(dict.fromkeys(by_id[e["prompt_id"]] for e in entries))
    model = build_model(study, params, conditions=list(key["conditions"]), prompts=prompts)
    p_index = {p.id: i for i, p in enumerate(prompts)}
    c_index = {c: i for i, c in enumerate(model.conditions)}
    rows = np.array([p_index[e["prompt_id"]] * len(model.conditions) + c_index[e["condition"]]
                     for e in entries])
    model = dataclasses.replace(model, panel_prompt=model.panel_prompt[rows],
                                panel_condition=model.panel_condition[rows],
                                fixed=model.fixed[rows])
    panel_images = [sorted(e["images"]) for e in entries]
    plans: dict[str, list[dict]] = {}

    def page_order(rater: str, _rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        plans[rater] = rater_plan(key["build_hash"], rater, panel_images,
                                  study.images_per_panel, study.survey.repeat_panels)
        return (np.array([p["panel"] for p in plans[rater]], dtype=int),
                np.array([p["repeat"] for p in plans[rater]], dtype=bool))

    sessions = simulate_sessions(model, n_raters, seed, order_fn=page_order)
    start = _parse_created(key.get("created", ""))
    out_dir = Path(out_dir)
    paths = []
    for r, session in enumerate(sessions):
        response = _response(study, key["build_hash"], model, tokens, session, plans[session.rater],
                             start + timedelta(hours=1 + 3 * r))
        response["chain"] = {"algorithm": ALGORITHM,
                             "head": chain_head(key["build_hash"], response["events"])}
        path = out_dir / f"response-{session.rater}.json"
        try:
            write_text_atomic(path, json.dumps(response, indent=1, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise AnalysisError(f"{path}: cannot write response file: {exc.strerror or exc}") from None
        paths.append(path)
    return paths


def simulate_study(study: Study, n_raters: int, out_dir: str | Path | None = None,
                   key_path: str | Path | None = None, seed: int = 0,
                   params: SimParams | None = None) -> list[Path]:
    """The ``glidemed simulate`` stage: response files for the study's built survey.

    ``key_path`` defaults to build/<study>/key/key.json, ``out_dir`` to
    build/<study>/responses/.
    """
    from glidemed.paths import key_dir, responses_dir
    from glidemed.survey.key import KEY_FILENAME, load_key

    key_path = Path(key_path) if key_path else key_dir(study) / KEY_FILENAME
    if not key_path.is_file():
        raise AnalysisError(f"{key_path}: no survey key; run glidemed build {study.id} first "
                            "(or give the key with --key)")
    key = load_key(key_path)
    return simulate_responses(study, key, n_raters, out_dir or responses_dir(study), seed, params)


def other_simulated_files(out_dir: str | Path, written: list[Path]) -> list[Path]:
    """Simulated response files in ``out_dir`` left from an earlier run (not in ``written``)."""
    keep = {Path(p).name for p in written}
    return sorted(p for p in Path(out_dir).glob("response-sim-*.json") if p.name not in keep)


def _parse_created(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime(2026, 1, 1)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    """The JavaScript toISOString() form: UTC with milliseconds."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _profile(study: Study, rng: np.random.Generator) -> dict:
    answers = {}
    for item in study.survey.profile:
        if item.choices:
            answers[item.key] = item.choices[int(rng.integers(len(item.choices)))]
        elif "year" in item.key:  # a number asked as free text, e.g. years of experience
            answers[item.key] = str(int(rng.integers(1, 31)))
        else:
            answers[item.key] = f"simulated {item.label.lower()}"
    return answers


def _response(study: Study, build_hash: str, model: Model, tokens: list[str], session: Session,
              plan: list[dict], start: datetime) -> dict:
    """A response file (without its chain) for ``session``, as the survey page writes it."""
    rng = session.rng
    profile = _profile(study, rng)
    events: list[dict] = []
    pending: list[tuple[int, str, object]] = []  # corrections made after the next panel
    clock = start + timedelta(seconds=float(rng.uniform(0, 600)))
    first = clock
    panels = []

    def answer(position: int, name: str, value: object) -> None:
        events.append({"seq": len(events), "position": position, "field": name,
                       "value": value, "at": _iso(clock)})

    for place in range(session.seen):
        todo = [(f"rating:{a}", int(s)) for a, s in zip(model.aspects, session.scores[place]) if s >= 0]
        todo += [(f"flag:{f}", True) for f, on in zip(model.flags, session.flags[place]) if on]
        if session.comments[place]:
            todo.append(("comment", session.comments[place]))
        step = session.seconds[place] / (len(todo) + 1)
        corrections = []
        for name, value in todo:
            clock += timedelta(seconds=step)
            if name.startswith("rating:") and rng.random() < model.params.revise:
                n_levels = model.levels[model.aspects.index(name.split(":", 1)[1])]
                wrong = value + (1 if value == 0 else -1 if value == n_levels - 1
                                 else int(rng.choice([-1, 1])))
                answer(place, name, wrong)
                corrections.append((place, name, value))
            else:
                answer(place, name, value)
        for position, name, value in pending:  # went back to the previous panel
            clock += timedelta(seconds=3)
            answer(position, name, value)
        pending = corrections
        clock += timedelta(seconds=step)
        scores = session.scores[place]
        panels.append({"token": tokens[session.order[place]], "position": place,
                       "repeat": bool(session.repeat[place]), "images": plan[place]["images"],
                       "ratings": {a: (int(v) if v >= 0 else None) for a, v in zip(model.aspects, scores)},
                       "flags": {f: bool(on) for f, on in zip(model.flags, session.flags[place])},
                       "comment": session.comments[place],
                       "seconds": float(session.seconds[place])})
    for position, name, value in pending:
        clock += timedelta(seconds=3)
        answer(position, name, value)
    complete = session.seen == len(session.order) and bool(np.all(session.scores >= 0))
    return {
        "schema": "glidemed-response/1",
        "study_id": study.id,
        "build_hash": build_hash,
        "rater": {"id": session.rater, "profile": profile},
        "browser": f"glidemed simulate {__version__}",
        "started": _iso(first),
        "updated": _iso(clock),
        "completed": _iso(clock) if complete else None,
        "complete": complete,
        "order": [tokens[i] for i in session.order],
        "panels": panels,
        "events": events,
    }
