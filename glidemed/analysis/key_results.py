"""The answer first: a ratings study's key results in words and numbers.

Each finding is a sentence and the numbers in it, taken from the tables the analysis
wrote (tests, models, bootstrap medians), so the report's first screen, ``methods.md``
and ``summary.json`` (under ``key_results``) say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from glidemed.analysis.labels import Labels


@dataclass
class Finding:
    text: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"text": self.text, **self.numbers}


def number(value: float, digits: int = 2) -> str:
    """A score or effect for reading: whole and half points exactly, else ``digits`` decimals."""
    if not np.isfinite(value):
        return "n/a"
    if float(value * 2).is_integer():
        return f"{value:g}"
    return f"{value:.{digits}f}"


def p_value(p: float) -> str:
    """``p < 0.001`` or ``p = 0.034`` (three decimals, two significant below 0.01)."""
    if not np.isfinite(p):
        return "p not computed"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p >= 0.01 else f"p = {p:.2g}"


def ratings_findings(tests: pd.DataFrame, medians: pd.DataFrame,
                     models: list, labels: Labels, references: dict[str, str]) -> list[Finding]:
    """The study's answers: per aspect, the style group against the rest (or, without
    groups, the Kruskal-Wallis test across styles), then the primary model's condition,
    detail and prompt-variant effects as odds ratios."""
    findings = []
    main = tests[(tests["unit"] == "prompt_median") & (tests["status"] == "ok")] if len(tests) else tests
    several = medians["condition"].nunique() > 1
    for aspect in pd.unique(medians["aspect"].dropna()):
        part = main[main["aspect"] == aspect] if len(main) else main
        groups = part[part["test"] == "mannwhitney_group"] if len(part) else part
        for row in groups.itertuples():
            findings.append(_group_finding(row, medians, labels, several))
        if not len(groups):
            for row in part[part["test"] == "kruskal"].itertuples() if len(part) else []:
                findings.append(_styles_finding(row, medians, labels, several))
    for role, model in models:
        if role != "primary":
            continue
        for row in model.table[model.table["kind"] == "effect"].itertuples():
            factors = {part.split("[", 1)[0] for part in row.term.split("]:")}
            if factors & {"condition", "detail", "variant"}:
                findings.append(_effect_finding(row, model, labels, references))
    return findings


def _group_medians(medians: pd.DataFrame, aspect: str, condition: str, group: str) -> tuple[float, float]:
    part = medians[(medians["aspect"] == aspect) & (medians["condition"] == condition)]
    inside = part["style_group"].astype(str) == group
    return float(part.loc[inside, "score"].median()), float(part.loc[~inside, "score"].median())


def _where(labels: Labels, row, several: bool) -> str:
    return f", {labels.of_key('condition', row.condition)}" if several else ""


def _group_finding(row, medians: pd.DataFrame, labels: Labels, several: bool) -> Finding:
    group = row.comparison.removesuffix(" vs rest")
    inside, rest = _group_medians(medians, row.aspect, row.condition, group)
    direction = "lower than" if row.effect_size < 0 else "higher than" if row.effect_size > 0 else "as"
    text = (f"{labels.of_key('style_group', group)} styles scored {direction} the rest on "
            f"{labels.of_key('aspect', row.aspect).lower()}{_where(labels, row, several)}: median "
            f"{number(inside)} vs {number(rest)}, {p_value(row.p)}, Cliff's δ = "
            f"{row.effect_size:.2f} (Mann-Whitney U on per-prompt medians).")
    return Finding(text, {"kind": "group_vs_rest", "aspect": row.aspect, "condition": row.condition,
                          "group": group, "median_group": inside, "median_rest": rest,
                          "p": row.p, "cliffs_delta": row.effect_size})


def _styles_finding(row, medians: pd.DataFrame, labels: Labels, several: bool) -> Finding:
    part = medians[(medians["aspect"] == row.aspect) & (medians["condition"] == row.condition)]
    by_style = part.groupby("style", sort=False)["score"].median()
    top, bottom = by_style.idxmax(), by_style.idxmin()
    spread = (f"highest median {labels.of_key('style', top)} ({number(by_style[top])}), lowest "
              f"{labels.of_key('style', bottom)} ({number(by_style[bottom])})"
              if by_style[top] > by_style[bottom] else f"every style's median {number(by_style[top])}")
    text = (f"Styles compared on {labels.of_key('aspect', row.aspect).lower()}"
            f"{_where(labels, row, several)}: Kruskal-Wallis {p_value(row.p)}, ε² = "
            f"{row.effect_size:.2f}; {spread}.")
    return Finding(text, {"kind": "styles", "aspect": row.aspect, "condition": row.condition,
                          "p": row.p, "epsilon_squared": row.effect_size, "highest": str(top),
                          "lowest": str(bottom)})


def _effect_finding(row, model, labels: Labels, references: dict[str, str]) -> Finding:
    text = (f"{labels.term(row.term, references)}, {labels.of_key('aspect', model.aspect).lower()}: "
            f"odds ratio {row.odds_ratio:.2f} (95% CI {row.or_ci_low:.2f} to {row.or_ci_high:.2f}), "
            f"{p_value(row.p)} ({model.model} cumulative logit model).")
    return Finding(text, {"kind": "model_effect", "aspect": model.aspect, "term": row.term,
                          "odds_ratio": row.odds_ratio, "or_ci_low": row.or_ci_low,
                          "or_ci_high": row.or_ci_high, "p": row.p, "model": model.model})


def medians_table(medians: pd.DataFrame, cis: pd.DataFrame, labels: Labels) -> pd.DataFrame:
    """Styles by (aspect, condition): the median of the per-prompt medians with its
    bootstrap 95% CI, as text (``2 (1-3)``); the IQR in brackets when there is no CI."""
    columns, rows = {}, {}
    conditions = list(pd.unique(medians["condition"].dropna()))
    for aspect in pd.unique(medians["aspect"].dropna()):
        for condition in conditions:
            part = medians[(medians["aspect"] == aspect) & (medians["condition"] == condition)]
            if part.empty:
                continue
            name = f"{labels.of_key('aspect', aspect)} score"
            if len(conditions) > 1:
                name += f", {labels.of_key('condition', condition)}"
            ci = cis[(cis["aspect"] == aspect) & (cis["condition"] == condition)
                     & (cis["kind"] == "median")].set_index("term") if len(cis) else None
            cells = {}
            for style, scores in part.groupby("style", sort=False)["score"]:
                median = float(scores.median())
                if ci is not None and style in ci.index and np.isfinite(ci.at[style, "ci_low"]):
                    low, high = ci.at[style, "ci_low"], ci.at[style, "ci_high"]
                    cells[style] = f"{number(median)} ({number(low)}–{number(high)})"
                else:
                    cells[style] = f"{number(median)} [{number(scores.quantile(0.25))}–" \
                                   f"{number(scores.quantile(0.75))}]"
                rows.setdefault(style, None)
            columns[name] = cells
    table = pd.DataFrame({name: [cells.get(s, "") for s in rows] for name, cells in columns.items()})
    table.insert(0, "Style", [labels.of_key("style", s) for s in rows])
    return table
