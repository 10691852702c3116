"""The tamper-evidence hash chain of a response file (algorithm 'sha256-chain/1').

    h0 = sha256(build_hash)
    hi = sha256(h(i-1) + "\\n" + canonical(event i))

where canonical() is JSON with sorted keys, no spaces and non-ASCII kept as is (what
the survey page's JavaScript writes). The head is the last hash. Replaying the events
must give the final answers in 'panels'. This catches edits made after the fact, by
hand or by a script that does not recompute the chain; it does not stop a rater who
reads the page's source and forges a consistent chain.
"""

from __future__ import annotations

import hashlib
import json

ALGORITHM = "sha256-chain/1"


def canonical(event: dict) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_head(build_hash: str, events: list[dict]) -> str:
    head = hashlib.sha256(build_hash.encode("utf-8")).hexdigest()
    for event in events:
        head = hashlib.sha256(f"{head}\n{canonical(event)}".encode("utf-8")).hexdigest()
    return head


def replay(events: list[dict]) -> dict[int, dict]:
    """Final answers per position: {'ratings': {...}, 'flags': {...}, 'comment': str}."""
    state: dict[int, dict] = {}
    for event in events:
        panel = state.setdefault(event["position"], {"ratings": {}, "flags": {}, "comment": ""})
        field = event["field"]
        if field == "comment":
            panel["comment"] = event["value"]
        else:
            kind, key = field.split(":", 1)
            panel["ratings" if kind == "rating" else "flags"][key] = event["value"]
    return state


def chain_problems(response: dict) -> list[str]:
    """Why a schema-valid response's chain does not verify; empty when it does."""
    problems = []
    chain = response["chain"]
    if chain.get("algorithm") != ALGORITHM:
        return [f"unknown chain algorithm {chain.get('algorithm')!r}"]
    events = response["events"]
    if [e["seq"] for e in events] != list(range(len(events))):
        problems.append("event sequence numbers are not 0, 1, 2, ...")
    if chain_head(response["build_hash"], events) != chain["head"]:
        problems.append("hash chain does not match the events (edited after the fact?)")
    state = replay(events)
    for panel in response["panels"]:
        final = state.get(panel["position"], {"ratings": {}, "flags": {}, "comment": ""})
        ratings = {k: v for k, v in panel["ratings"].items() if v is not None}
        flags = {k: v for k, v in panel["flags"].items() if v}
        if (ratings != {k: v for k, v in final["ratings"].items() if v is not None}
                or flags != {k: v for k, v in final["flags"].items() if v}
                or panel["comment"] != final["comment"]):
            problems.append(f"panel at position {panel['position']} differs from its recorded answers")
    return problems
