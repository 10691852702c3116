"""Response files of simulated raters for a built survey (``glidemed simulate``)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from glidemed import __version__
from glidemed.errors import AnalysisError
from glidemed.fileio import os_error_reason, write_text_atomic
from glidemed.simulate.model import Model, Session, build_model, simulate_sessions
from glidemed.simulate.params import SimParams
from glidemed.study import Study

# --------------------------------------------------------------------------- response files

def simulate_responses(study: Study, key: dict, n_raters: int, out_dir: str | Path,
                       seed: int = 0, params: SimParams | None = None) -> list[Path]:
    """Write one response file per simulated rater for the survey build described by ``key``.

    Files follow glidemed/schemas/response.schema.json. Each rater's order, images and
    repeats are the ones the survey page gives that rater id
    (:meth:`glidemed.survey.key.SurveyKey.plan`); the answers come from the model
    (seeded). Events are the answers in the order given (a few given wrong first and
    corrected after the next panel), the chain head is computed over them, and a rater
    who drops out leaves a partial file (``complete`` false). Returns the paths written.
    """
    from glidemed.responses.chain import seal
    from glidemed.survey.key import SurveyKey
    from glidemed.tasks import block_study, get_task

    if len(study.survey.blocks) > 1:
        raise AnalysisError(f"{study.path}: simulating raters of a survey of several blocks is not "
                            "supported; simulate each block as a study of its own")
    study = block_study(study)  # e.g. a turing survey: one image per panel, one confidence scale
    key = SurveyKey.of(key, study.images_per_panel, study.survey.repeat_panels)
    if key.study_id != study.id:
        raise AnalysisError(f"key: belongs to study {key.study_id!r}, not {study.id!r}")
    by_id = {p.id: p for p in study.prompts()}
    tokens = key.page_tokens
    entries = [key.panels[t] for t in tokens]
    unknown = sorted({e.prompt_id for e in entries} - set(by_id))
    if unknown:
        raise AnalysisError(f"key: prompt id(s) not in study {study.id!r}: {', '.join(unknown[:5])}"
                            " (rebuild the survey: glidemed build)")
    if not tokens:
        raise AnalysisError("key: the survey has no panels")
    # The key decides the design (controls, panels left out); panels of one prompt share
    # its prompt effect.
    prompts = list(dict.fromkeys(by_id[e.prompt_id] for e in entries))
    model = build_model(study, params, conditions=list(key.conditions), prompts=prompts)
    p_index = {p.id: i for i, p in enumerate(prompts)}
    c_index = {c: i for i, c in enumerate(model.conditions)}
    rows = np.array([p_index[e.prompt_id] * len(model.conditions)
                     + c_index[e.condition or next(iter(e.image_conditions.values()))]
                     for e in entries])  # a pairwise panel: its answers are drawn by its task
    model = dataclasses.replace(model, panel_prompt=model.panel_prompt[rows],
                                panel_condition=model.panel_condition[rows],
                                fixed=model.fixed[rows])
    index = {t: i for i, t in enumerate(tokens)}
    plans: dict[str, list[dict]] = {}

    def page_order(rater: str, _rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        plans[rater] = [{**p, "panel": index[p["token"]]} for p in key.plan(rater)]
        return (np.array([p["panel"] for p in plans[rater]], dtype=int),
                np.array([p["repeat"] for p in plans[rater]], dtype=bool))

    out_dir = Path(out_dir)
    refuse_real_responses(out_dir)
    sessions = simulate_sessions(model, n_raters, seed, order_fn=page_order)
    block = study.survey.blocks[0]
    get_task(block.task).simulate_choices(study, block, key, sessions, plans, model.params, seed)
    start = _parse_created(key.created)
    paths = []
    for r, session in enumerate(sessions):
        response = _response(study, key.build_hash, model, tokens, session, plans[session.rater],
                             start + timedelta(hours=1 + 3 * r))
        seal(response)
        path = out_dir / f"response-{session.rater}.json"
        try:
            write_text_atomic(path, json.dumps(response, indent=1, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise AnalysisError(f"{path}: cannot write response file: {os_error_reason(exc)}") from None
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


def refuse_real_responses(out_dir: Path) -> None:
    """Simulated files must never sit beside real ones (analyze would count both): refuse a
    folder holding any file that ``glidemed simulate`` did not write."""
    from glidemed.responses import Rejected, decode_response, is_simulated

    if not out_dir.is_dir():
        return
    real = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file() or p.is_symlink()):
        try:
            data = decode_response(path.read_bytes())
        except (OSError, Rejected):
            data = None
        if not (isinstance(data, dict) and is_simulated(data)):
            real.append(path.relative_to(out_dir).as_posix())
    if real:
        raise AnalysisError(f"{out_dir}: holds {len(real)} file(s) not written by glidemed "
                            f"simulate (e.g. {real[0]}): simulated responses must not mix with "
                            "real ones; choose another folder with --out")


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
