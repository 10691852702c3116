"""The rater model: the design resolved into a :class:`Model`, rater sessions, the tidy table.

See the :mod:`glidemed.simulate` docstring for the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from glidemed.errors import AnalysisError
from glidemed.simulate.params import (
    AspectDefaults,
    SimParams,
    aspect_defaults,
    check_params,
    default_effect,
)
from glidemed.study import DETAIL_LEVELS, Prompt, Study

_COMMENTS = ("image quality varies", "hard to judge", "one image is much better")


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


def _lookup(effects: dict[str, float], aspect: str, names: list[str]) -> float | None:
    """The most specific effect set for any of ``names`` ('factor:level', most specific first)."""
    for prefix in (f"{aspect}/", ""):
        for name in names:
            if prefix + name in effects:
                return effects[prefix + name]
    return None


def _cutpoints(aspect: str, n_levels: int) -> np.ndarray:
    """The paper's cut-points; for another number of levels, evenly spread over their range."""
    cuts = np.array(aspect_defaults(aspect).cutpoints)
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
        base = aspect_defaults(aspect)
        per_prompt = np.array([
            _style_effect(params.effects, aspect, p.style, p.style_group)
            + _detail_effect(params.effects, aspect, p.detail, base)
            for p in prompts])
        per_condition = np.array([_lookup(params.effects, aspect, [f"condition:{c}"]) or 0.0
                                  for c in conditions])
        fixed[:, j] = per_prompt[panel_prompt] + per_condition[panel_condition]
    cutpoints = [np.asarray(params.cutpoints, float) if params.cutpoints is not None
                 else _cutpoints(a, n_levels[a]) for a in aspects]
    defaults = [aspect_defaults(a) for a in aspects]
    rater_sd = np.array([params.rater_sd if params.rater_sd is not None else d.rater_sd
                         for d in defaults])
    prompt_sd = np.array([params.prompt_sd if params.prompt_sd is not None else d.prompt_sd
                          for d in defaults])
    return Model(prompts, conditions, aspects, [n_levels[a] for a in aspects],
                 [f.key for f in study.flags], panel_prompt, panel_condition, fixed, cutpoints,
                 rater_sd, prompt_sd, params)


def style_effect(study: Study, params: SimParams, aspect: str, style: str) -> float:
    """The latent effect of ``style`` on ``aspect``: set in ``params``, else the default."""
    return _style_effect(params.effects, aspect, style, study.style(style).style_group)


def _style_effect(effects: dict[str, float], aspect: str, style: str, group: str) -> float:
    value = _lookup(effects, aspect, [f"style:{style}", f"style:{group}"])
    return default_effect(aspect, style, group) if value is None else value


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
    """The tidy table of ``sessions``: one row per place reached x aspect, repeats included;
    a blank answer is a <NA> score with exclusion 'missing'."""
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
