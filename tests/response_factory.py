"""Hand-made keys and response files per the contracts, for ingest and report tests."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from glidemed.study import Study
from glidemed.responses.chain import ALGORITHM, chain_head
from glidemed.survey.key import SurveyKey


def _token(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12]


def make_key(study: Study, build: str = "build-1", repeat_panels: int = 0) -> dict:
    """A key with one panel per prompt x condition, two image tokens each, both shown."""
    panels = {}
    for prompt in study.prompts():
        for condition in study.conditions:
            token = _token(build, prompt.id, condition.name)
            panels[token] = {
                "prompt_id": prompt.id, "condition": condition.name, "control": False,
                "images": {_token(build, token, i): f"{condition.name}/{prompt.id}/{i}.png"
                           for i in range(2)}}
    return {"schema": "glidemed-key/1", "study_id": study.id,
            "build_hash": hashlib.sha256(build.encode()).hexdigest(),
            "created": "2026-01-01T00:00:00Z", "study_sha256": "0" * 64,
            "conditions": [c.name for c in study.conditions], "images_per_panel": 2,
            "repeat_panels": repeat_panels, "panels": panels, "left_out": []}


def make_response(study: Study, key, rater: str, seed: int = 0, n_seen: int | None = None,
                  comment: str = "", profile: dict | None = None,
                  updated: str = "2026-01-02T10:00:00Z") -> dict:
    """A valid response: random scores for the first ``n_seen`` panels of the order, images
    and repeats the page gives ``rater`` (the key's ``repeat_panels``); the hash chain is
    computed as the page does."""
    rng = random.Random(seed)
    key = SurveyKey.of(key, study.images_per_panel, study.survey.repeat_panels)
    plan = key.plan(rater)
    order = [p["token"] for p in plan]
    n_seen = len(order) if n_seen is None else n_seen
    panels, events = [], []
    for position, token in enumerate(order[:n_seen]):
        ratings = {a.key: rng.randrange(len(a.levels)) for a in study.aspects}
        flags = {f.key: rng.random() < 0.1 for f in study.flags}
        for aspect, score in ratings.items():
            events.append({"seq": len(events), "position": position, "field": f"rating:{aspect}",
                           "value": score, "at": "2026-01-02T09:00:00Z"})
        for flag, value in flags.items():
            if value:
                events.append({"seq": len(events), "position": position, "field": f"flag:{flag}",
                               "value": True, "at": "2026-01-02T09:00:00Z"})
        if comment:
            events.append({"seq": len(events), "position": position, "field": "comment",
                           "value": comment, "at": "2026-01-02T09:00:00Z"})
        panels.append({"token": token, "position": position, "repeat": plan[position]["repeat"],
                       "images": plan[position]["images"], "ratings": ratings,
                       "flags": flags, "comment": comment, "seconds": round(rng.uniform(2, 30), 1)})
    response = {
        "schema": "glidemed-response/1", "study_id": study.id, "build_hash": key.build_hash,
        "rater": {"id": rater, "profile": {"specialty": "pathology", "years": "5"}
                  if profile is None else profile},
        "browser": "test", "started": "2026-01-02T09:00:00Z", "updated": updated,
        "completed": updated if n_seen == len(order) else None,
        "complete": n_seen == len(order), "order": order, "panels": panels, "events": events,
        "chain": {"algorithm": ALGORITHM, "head": ""}}
    return rechain(response)


def rechain(response: dict) -> dict:
    """Recompute the chain head (what a forger with the page's source would do)."""
    response["chain"]["head"] = chain_head(response["build_hash"], response["events"],
                                           rater=response["rater"])
    return response


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
