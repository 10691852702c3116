"""What the build dictates about a response file, beyond its hash chain.

Each rater's order, image draw, grid positions and repeats follow from the build hash
and the rater id (:meth:`glidemed.survey.key.SurveyKey.plan`); the profile answers
from the study's profile fields; the events from the study's aspects and flags. A
schema-valid file that differs from any of these is *flagged*, with the first
difference named: a file edited after the fact, or copied under another rater id.
"""

from __future__ import annotations

from typing import Any

from glidemed.survey.key import SurveyKey


def plan_problems(response: dict, plan: list[dict]) -> list[str]:
    """Where the file's order, image tokens, grid positions or repeat marks differ from the
    rater's ``plan`` (:meth:`SurveyKey.plan`); one line naming the first difference."""
    differences: list[str] = []
    order, planned = response["order"], [p["token"] for p in plan]
    if order != planned:
        at = next((i for i, (a, b) in enumerate(zip(order, planned)) if a != b), None)
        if at is not None:
            differences.append(f"order[{at}] is panel {order[at]}, the plan has {planned[at]}")
        else:
            differences.append(f"the order has {len(order)} panels, the plan {len(planned)}")
    for panel in sorted(response["panels"], key=lambda p: p["position"]):
        position = panel["position"]
        if not 0 <= position < len(plan):
            continue  # a position outside the order is already a problem of the order
        expected = plan[position]
        where = f"panel {panel['token']} at position {position}"
        if panel["repeat"] != expected["repeat"]:
            mark = "a repeat" if panel["repeat"] else "not a repeat"
            differences.append(f"{where} is marked {mark}, the plan says otherwise")
        if panel["images"] != expected["images"]:
            slot = next((i for i, (a, b) in enumerate(zip(panel["images"], expected["images"]))
                         if a != b), min(len(panel["images"]), len(expected["images"])))
            got = panel["images"][slot] if slot < len(panel["images"]) else "nothing"
            want = expected["images"][slot] if slot < len(expected["images"]) else "nothing"
            differences.append(f"{where}: grid position {slot + 1} shows {got}, the plan {want}")
    if not differences:
        return []
    more = f" ({len(differences)} differences in all)" if len(differences) > 1 else ""
    return [f"differs from the order and images the build gives rater id "
            f"{_short(response['rater']['id'])}: {differences[0]}{more}"]


def profile_problems(profile: dict, fields: list[Any]) -> list[str]:
    """Profile answers the survey page cannot have written: fields it does not ask, fields
    missing, or an answer that is not one of a field's choices."""
    asked = {f.key: f for f in fields}
    problems = [f"profile field {_short(k)} is not asked by this survey" for k in profile
                if k not in asked]
    problems += [f"profile field {k!r} is missing" for k in asked if k not in profile]
    for key, value in profile.items():
        field = asked.get(key)
        if field is not None and field.choices and value is not None and value not in field.choices:
            problems.append(f"profile field {key!r}: {_short(value)} is not one of its choices")
    return problems[:1] + ([f"({len(problems) - 1} more profile problem(s))"]
                           if len(problems) > 1 else [])


def event_problems(events: list[dict], n_order: int, levels: list[dict[str, int]],
                   flags: list[list[str]]) -> list[str]:
    """Events the page cannot have written: a position outside the order, an unknown aspect
    or flag, or a value of the wrong kind; one line naming the first. ``levels`` and
    ``flags``: the scales and flags of each position of the order (its block's)."""
    bad = []
    for event in events:
        position = event["position"]
        problem = (f"position {position} is outside the order ({n_order} panels)"
                   if position >= n_order else
                   _event_problem(event, levels[position], flags[position]))
        if problem:
            bad.append(f"event {event['seq']}: {problem}")
    if not bad:
        return []
    return [bad[0] + (f" ({len(bad)} such events)" if len(bad) > 1 else "")]


def _event_problem(event: dict, levels: dict[str, int], flags: list[str]) -> str:
    field, value = event["field"], event["value"]
    if field == "comment":
        return "" if isinstance(value, str) else f"comment {_short(value)} is not text"
    kind, key = field.split(":", 1)
    if kind == "rating":
        if key not in levels:
            return f"unknown aspect {key!r}"
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value < levels[key]):
            return f"rating {_short(value)} of {key!r} is not a score 0-{levels[key] - 1}"
        return ""
    if key not in flags:
        return f"unknown flag {key!r}"
    return "" if isinstance(value, bool) else f"flag value {_short(value)} is not true or false"


def integrity_problems(response: dict, key: SurveyKey, profile_fields: list[Any],
                       levels: list[dict[str, int]],
                       flags: list[list[str]], check_plan: bool = True) -> list[str]:
    """Every way a schema-valid response departs from what the build dictates
    (``check_plan`` False: not the order and images, as for a pseudonymised copy).
    ``levels`` and ``flags``: each position's, as :func:`event_problems` takes them."""
    return ((plan_problems(response, key.plan(response["rater"]["id"])) if check_plan else [])
            + profile_problems(response["rater"]["profile"], profile_fields)
            + event_problems(response["events"], len(response["order"]), levels, flags))


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
