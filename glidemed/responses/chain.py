"""The tamper-evidence hash chain of a response file (algorithm 'sha256-chain/2').

    h0 = sha256(build_hash + "\\n" + canonical(rater))
    hi = sha256(h(i-1) + "\\n" + canonical(event i))

where ``rater`` is the file's rater block ``{"id": ..., "profile": {...}}``, so that a
change of the rater id or of any profile answer breaks the chain, and canonical() is
JSON with sorted keys, no spaces and non-ASCII kept as is (what the survey page's
JavaScript writes; a lone UTF-16 surrogate is written as its \\u escape, as JavaScript's
JSON.stringify does). The head is the last hash. Replaying the events must give the
final answers in 'panels', and every answer recorded must belong to a panel of the file.

Files of the older algorithm 'sha256-chain/1' (h0 = sha256(build_hash)) still verify,
but their chain does not cover the rater block.

This catches edits made after the fact, by hand or by a script that does not recompute
the chain; it does not stop a rater who reads the page's source and forges a
consistent chain.
"""

from __future__ import annotations

import hashlib
import json
import re

ALGORITHM = "sha256-chain/2"
LEGACY_ALGORITHM = "sha256-chain/1"  # start not bound to the rater block
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_start(build_hash: str, rater: dict | None) -> str:
    """h0: bound to the build and, unless ``rater`` is None (legacy), the rater block."""
    if rater is None:
        return _sha256(build_hash)
    return _sha256(f"{build_hash}\n{canonical(rater)}")


def chain_head(build_hash: str, events: list[dict], *, rater: dict | None) -> str:
    """The head over ``events``; ``rater`` is the response's rater block (None: legacy)."""
    head = chain_start(build_hash, rater)
    for event in events:
        head = _sha256(f"{head}\n{canonical(event)}")
    return head


def seal(response: dict) -> dict:
    """Set ``response['chain']`` from its build hash, rater block and events; return it."""
    response["chain"] = {"algorithm": ALGORITHM,
                         "head": chain_head(response["build_hash"], response["events"],
                                            rater=response["rater"])}
    return response


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


def chain_problems(response: dict, pseudonymized: bool = False) -> list[str]:
    """Why a schema-valid response's chain or answers do not verify; empty when they do.

    ``pseudonymized``: the rater id was replaced after the fact, so the head (bound to the
    real id) cannot be checked; the rest still is."""
    problems = []
    chain = response["chain"]
    algorithm = chain.get("algorithm")
    if algorithm not in (ALGORITHM, LEGACY_ALGORITHM):
        return [f"unknown chain algorithm {algorithm!r}"]
    events = response["events"]
    if [e["seq"] for e in events] != list(range(len(events))):
        problems.append("event sequence numbers are not 0, 1, 2, ...")
    rater = response["rater"] if algorithm == ALGORITHM else None
    if not pseudonymized and chain_head(response["build_hash"], events, rater=rater) != chain["head"]:
        covered = "the rater id, profile and events" if rater is not None else "the events"
        problems.append(f"hash chain does not match {covered} (edited after the fact?)")
    problems.extend(answer_problems(response))
    return problems


def answer_problems(response: dict) -> list[str]:
    """Where the ratings block and the replayed events disagree, naming the panel."""
    problems = []
    state = replay(response["events"])
    order = response.get("order", [])
    shown = set()
    for panel in response["panels"]:
        position = panel["position"]
        shown.add(position)
        final = state.get(position, {"ratings": {}, "flags": {}, "comment": ""})
        where = f"panel {panel['token']} at position {position}"
        for kind in ("ratings", "flags"):
            keep = (lambda v: v is not None) if kind == "ratings" else bool
            given = {k: v for k, v in panel[kind].items() if keep(v)}
            recorded = {k: v for k, v in final[kind].items() if keep(v)}
            if given != recorded:
                key = sorted(k for k in {*given, *recorded} if given.get(k) != recorded.get(k))[0]
                problems.append(f"{where}: {kind}.{key} is {given.get(key)!r} in the file but "
                                f"{recorded.get(key)!r} in its recorded answers")
                break
        else:
            if panel["comment"] != final["comment"]:
                problems.append(f"{where}: comment differs from its recorded answers")
    orphans = sorted(p for p, s in state.items() if p not in shown and (
        any(v is not None for v in s["ratings"].values()) or any(s["flags"].values())
        or s["comment"]))
    if orphans:
        first = orphans[0]
        token = order[first] if isinstance(first, int) and 0 <= first < len(order) else None
        what = f"panel {token} at position {first}" if token else f"position {first}"
        more = f" (and {len(orphans) - 1} more position(s))" if len(orphans) > 1 else ""
        problems.append(f"answers are recorded for {what}, which is missing from the file's "
                        f"panels{more}")
    return problems
