"""glidemed's own texts on the survey page (buttons, messages, hints), one table per
language in site_templates/survey/lang/<code>.json; the study's own texts are the study's."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

DEFAULT_LANGUAGE = "en"


def _folder():
    return resources.files("glidemed.site_templates") / "survey" / "lang"


@cache
def languages() -> tuple[str, ...]:
    """The codes of the shipped tables, e.g. ('de', 'en')."""
    return tuple(sorted(p.name[:-5] for p in _folder().iterdir() if p.name.endswith(".json")))


@cache
def page_texts(language: str) -> dict[str, str]:
    """The table of ``language`` (every key of the English one)."""
    return json.loads((_folder() / f"{language}.json").read_text(encoding="utf-8"))
