"""The study's words for what the tables key: styles, groups, conditions, aspects, flags.

Figures, the report's tables and its key results show labels (``X-ray``, not ``xray``);
the CSV files keep the keys. A key the study does not know (a ratings table's own level)
is shown as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from glidemed.study import Study

DETAIL_LABELS = {"short": "Short", "detailed": "Detailed"}
FACTOR_LABELS = {"style": "Style", "style_group": "Style group", "condition": "Condition",
                 "detail": "Prompt detail", "variant": "Prompt variant", "aspect": "Aspect", "topic": "Topic", "rater": "Rater"}
TERM = re.compile(r"^(?P<factor>[A-Za-z_][A-Za-z0-9_]*)\[T\.(?P<level>.*)\]$")
THRESHOLD = re.compile(r"^(?P<low>-?\d+)\|(?P<high>-?\d+)$")


@dataclass(frozen=True)
class Labels:
    """Labels by factor and key, e.g. ``labels.of("style", "xray") == "X-ray"``."""

    by_factor: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, study: Study | None) -> Labels:
        if study is None:
            return cls({"detail": dict(DETAIL_LABELS)})
        styles = {s.key: s.label for s in study.styles}
        groups = {}
        for s in study.styles:
            groups.setdefault(s.style_group, s.label if not s.group else _words(s.group))
        return cls({
            "style": styles,
            "style_group": groups,
            "condition": {c.name: c.label or c.name for c in study.conditions},
            "aspect": {a.key: a.label for a in study.aspects},
            "flag": {f.key: f.label for f in study.flags},
            "profile": {f.key: f.label for f in study.survey.profile},
            "detail": dict(DETAIL_LABELS),
        })

    def of_key(self, factor: str, key) -> str:
        """The label of ``key`` of ``factor``; the key itself when it has none."""
        text = "" if key is None or (isinstance(key, float) and pd.isna(key)) else str(key)
        return self.by_factor.get(factor, {}).get(text, text)

    def any_key(self, key: str) -> str:
        """The label of ``key`` in the first factor that knows it (conditions, groups, detail
        levels, styles), else ``key``."""
        for factor in ("condition", "style_group", "detail", "style"):
            if key in self.by_factor.get(factor, {}):
                return self.by_factor[factor][key]
        return key

    def factor(self, factor: str) -> str:
        return FACTOR_LABELS.get(factor, _words(factor))

    def term(self, term: str, references: dict[str, str] | None = None) -> str:
        """A model term in words: ``style[T.xray]`` -> ``Style: X-ray vs Microscopy`` (the
        reference level from ``references``), ``0|1`` -> ``Threshold 0|1``."""
        if "]:" in term:  # an interaction: style[T.x]:variant[T.v2]
            first, second = term.split("]:", 1)
            return f"{self.term(first + ']', references)} × {self.term(second, references)}"
        match = TERM.match(term)
        if match:
            factor, level = match["factor"], match["level"]
            reference = (references or {}).get(factor)
            against = f" vs {self.of_key(factor, reference)}" if reference is not None else ""
            return f"{self.factor(factor)}: {self.of_key(factor, level)}{against}"
        if THRESHOLD.match(term):
            return f"Threshold {term}"
        if term.startswith("sd(") or term in FACTOR_LABELS:
            return term.replace("prompt_id", "prompt")
        return term


def _words(key: str) -> str:
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]
