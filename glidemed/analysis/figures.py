"""Figures of an analysis, drawn with matplotlib (Agg), ready for a journal.

Each figure is drawn at a journal's width (single column 89 mm, double 183 mm) with text
of at least 8 pt, the study's labels and colour-blind-safe colours (Okabe-Ito for
conditions, ColorBrewer RdBu for scores, viridis for p-values), and written as PNG (for
the report), SVG and PDF (text stays text: editable and searchable) with the numbers it
shows in a CSV beside it. The bytes are reproducible (no dates, fixed SVG ids).

Ratings figures: ``style_medians`` (the study's comparison: per style and condition, the
median of the per-prompt medians with its bootstrap CI), ``distribution`` (share of each
score per style, the paper's Suppl. Fig. 3A-B), ``pairwise_p`` (Holm-adjusted pairwise
Mann-Whitney tests between styles as significance marks, Suppl. Fig. 3C-D) and
``rater_agreement`` (quadratic-weighted Cohen's kappa of each pair of raters).

Text from raters (ids) is drawn as plain text: mathtext parsing is off.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from glidemed.analysis.descriptives import first_ratings, score_levels  # noqa: E402
from glidemed.analysis.labels import Labels  # noqa: E402
from glidemed.analysis.reliability import rating_matrix, weighted_kappa  # noqa: E402
from glidemed.analysis.tidy import usable  # noqa: E402

FORMATS = ("png", "svg", "pdf")
MM = 1 / 25.4  # inches
SINGLE, DOUBLE = 89 * MM, 183 * MM  # journal column widths
PNG_DPI = 150
MIN_POINTS = 8  # the smallest text, in points at the print size
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
SCORE_COLOURS = ["#b2182b", "#ef8a62", "#f7f7f7", "#67a9cf", "#2166ac"]  # RdBu, 5 classes
_RC = {"text.parse_math": False, "svg.hashsalt": "glidemed", "svg.fonttype": "none",
       "pdf.fonttype": 42, "figure.dpi": 100, "font.size": MIN_POINTS, "axes.titlesize": 9,
       "axes.labelsize": MIN_POINTS, "xtick.labelsize": MIN_POINTS,
       "ytick.labelsize": MIN_POINTS, "legend.fontsize": MIN_POINTS,
       "legend.title_fontsize": MIN_POINTS, "figure.titlesize": 9}
STARS = "* p < .05, ** p < .01, *** p < .001"


@dataclass
class FigureFiles:
    """A drawn figure: its files by format, its caption and the numbers it shows."""

    files: dict[str, bytes]
    caption: str
    data: pd.DataFrame


def render(fig: plt.Figure, caption: str, data: pd.DataFrame) -> FigureFiles:
    """``fig`` as :class:`FigureFiles` (the figure is closed)."""
    try:
        return FigureFiles(figure_bytes(fig), caption, data.reset_index(drop=True))
    finally:
        plt.close(fig)


def figure_bytes(fig: plt.Figure, dpi: float | None = PNG_DPI) -> dict[str, bytes]:
    """``fig`` as PNG, SVG and PDF bytes, reproducible (no date, a fixed SVG id salt), so
    that ``verify`` can compare them."""
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None},
                "png": None}
    written = {}
    with plt.rc_context(_RC):
        for fmt in FORMATS:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata[fmt])
            written[fmt] = buffer.getvalue()
    return written


def write_figure(folder: Path, name: str, figure: FigureFiles) -> None:
    """``<name>.png``, ``.svg``, ``.pdf`` and the numbers as ``<name>.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for fmt, data in figure.files.items():
        (folder / f"{name}.{fmt}").write_bytes(data)
    (folder / f"{name}.csv").write_text(figure.data.to_csv(index=False), encoding="utf-8")


def save_figure(fig: plt.Figure, stem: Path, dpi: float | None = PNG_DPI) -> dict[str, bytes]:
    """Write ``fig`` as ``stem.png``, ``.svg`` and ``.pdf``; returns the bytes by format."""
    written = figure_bytes(fig, dpi)
    for fmt, data in written.items():
        stem.with_name(f"{stem.name}.{fmt}").write_bytes(data)
    return written


def new_figure(columns: int, height: float, width: float = DOUBLE, rows: int = 1, **options):
    """A figure of ``width`` inches (a journal column) with a grid of axes, in glidemed's style."""
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(rows, max(columns, 1), figsize=(width, height), squeeze=False,
                                 layout="constrained", **options)
    return fig, axes


def colours(n: int) -> list[str]:
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(n)]


def stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "ns"


def _levels(df: pd.DataFrame, column: str) -> list[str]:
    return [str(v) for v in pd.unique(df[column].dropna())]


def _empty(message: str) -> plt.Figure:
    fig, axes = new_figure(1, 0.8, SINGLE)
    axes[0][0].axis("off")
    axes[0][0].text(0.5, 0.5, message, ha="center", va="center")
    return fig


# --- the study's comparison ---------------------------------------------------------------

def medians_figure(medians: pd.DataFrame, cis: pd.DataFrame | None = None,
                   tests: pd.DataFrame | None = None, labels: Labels | None = None
                   ) -> tuple[plt.Figure, pd.DataFrame]:
    """Per style and condition, the median of the per-prompt medians with its bootstrap 95%
    CI (``cis``: style, condition, aspect, ci_low, ci_high; without it, the IQR), one panel
    per aspect; the tests at the per-prompt median unit (``tests``) are marked in each panel.
    Returns the figure and the numbers it shows."""
    labels = labels or Labels()
    aspects, styles = _levels(medians, "aspect"), _levels(medians, "style")
    conditions = _levels(medians, "condition")
    if not aspects:
        return _empty("no usable ratings"), pd.DataFrame()
    with_ci = cis is not None and len(cis) > 0
    fig, axes = new_figure(len(aspects), 2.9, sharey=True)
    width = 0.7 / max(len(conditions), 1)
    rows = []
    for ax, aspect in zip(axes[0], aspects):
        for k, (condition, colour) in enumerate(zip(conditions, colours(len(conditions)))):
            part = medians[(medians["aspect"] == aspect) & (medians["condition"] == condition)]
            if part.empty:  # no usable rating of this condition and aspect: nothing to draw
                continue
            stats = part.groupby("style")["score"].quantile([0.25, 0.5, 0.75]).unstack()
            stats = stats.reindex(index=styles, columns=[0.25, 0.5, 0.75])
            low, high = stats[0.25], stats[0.75]
            if with_ci:
                ci = cis[(cis["aspect"] == aspect) & (cis["condition"] == condition)]
                ci = ci.set_index("style").reindex(styles)
                low, high = ci["ci_low"], ci["ci_high"]
            x = np.arange(len(styles)) + (k - (len(conditions) - 1) / 2) * width
            ax.errorbar(x, stats[0.5], yerr=[(stats[0.5] - low).clip(lower=0),
                                             (high - stats[0.5]).clip(lower=0)],
                        fmt="o", color=colour, capsize=2.5, markersize=4, linewidth=1,
                        label=labels.of_key("condition", condition))
            rows += [{"aspect": aspect, "condition": condition, "style": s,
                      "median": stats.at[s, 0.5], "q1": stats.at[s, 0.25], "q3": stats.at[s, 0.75],
                      "ci_low": low[s] if with_ci else np.nan,
                      "ci_high": high[s] if with_ci else np.nan} for s in styles]
        ax.set_xticks(range(len(styles)), [labels.of_key("style", s) for s in styles],
                      rotation=45, ha="right")
        ax.set_ylim(-0.4, max(4, float(medians["score"].max() or 4)) + 0.4)
        marks = _test_marks(tests, aspect, labels, len(conditions) > 1)
        # the marks under the panel's title, wrapped to the panel's width
        wrap = max(24, int(DOUBLE / max(len(aspects), 1) * 72 / (_RC["axes.titlesize"] * 0.62)))
        ax.set_title("\n".join([labels.of_key("aspect", aspect),
                                *(textwrap.fill(m, wrap) for m in marks)]))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("median score per prompt")
    bar = "bootstrap 95% CI" if with_ci else "interquartile range"
    handles = [Line2D([], [], color=c, marker="o", linestyle="", label=labels.of_key("condition", n))
               for n, c in zip(conditions, colours(len(conditions)))]
    handles.append(Line2D([], [], color="#444444", marker="|", linestyle="-", markersize=8,
                          label=f"bars: {bar}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               frameon=False)
    return fig, pd.DataFrame(rows)


def _test_marks(tests: pd.DataFrame | None, aspect: str, labels: Labels, by_condition: bool
                ) -> list[str]:
    """The tests of ``aspect`` at the per-prompt median unit, as significance marks."""
    if tests is None or tests.empty:
        return []
    part = tests[(tests["unit"] == "prompt_median") & (tests["aspect"] == aspect)
                 & (tests["status"] == "ok")]
    marks = []
    for row in part.itertuples():
        if row.test == "mannwhitney_group":
            group = row.comparison.removesuffix(" vs rest")
            where = f" ({labels.of_key('condition', row.condition)})" if by_condition else ""
            marks.append(f"{labels.of_key('style_group', group)} vs rest{where}: {stars(row.p)}")
        elif row.test == "wilcoxon_condition":
            marks.append(f"Conditions: {stars(row.p)}")
    return marks


# --- the other ratings figures -----------------------------------------------------------

def distribution_figure(ratings: pd.DataFrame, labels: Labels | None = None
                        ) -> tuple[plt.Figure, pd.DataFrame]:
    """Stacked horizontal bars: share of each score per style, one panel per aspect."""
    labels = labels or Labels()
    data = usable(first_ratings(ratings))
    aspects, styles = _levels(ratings, "aspect"), _levels(ratings, "style")
    if not aspects:
        return _empty("no usable ratings"), pd.DataFrame()
    top = max(4, int(data["score"].max()) if len(data) else 4)
    fig, axes = new_figure(len(aspects), 0.22 * len(styles) + 1.3, sharey=True)
    rows = []
    for ax, aspect in zip(axes[0], aspects):
        part = data[data["aspect"] == aspect]
        counts = (pd.crosstab(part["style"], part["score"].astype(int))
                  .reindex(index=styles, columns=range(top + 1), fill_value=0))
        shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
        left = np.zeros(len(styles))
        for level in range(top + 1):
            colour = SCORE_COLOURS[level] if level < len(SCORE_COLOURS) else None
            ax.barh(range(len(styles)), shares[level], left=left, color=colour,
                    edgecolor="#444444", linewidth=0.3, label=str(level))
            left += shares[level].to_numpy()
            rows += [{"aspect": aspect, "style": s, "score": level, "count": int(counts.at[s, level]),
                      "share": float(shares.at[s, level])} for s in styles]
        ax.set_yticks(range(len(styles)), [labels.of_key("style", s) for s in styles])
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of ratings")
        ax.set_title(f"{labels.of_key('aspect', aspect)} (n = {len(part)} ratings)")
    axes[0][0].invert_yaxis()  # the first style on top (the axes share y: invert once)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, title="score", loc="outside lower center", ncols=len(names),
               frameon=False)
    return fig, pd.DataFrame(rows)


def pairwise_figure(pairwise: pd.DataFrame, labels: Labels | None = None,
                    unit: str = "prompt_median", column: str = "p_mw_holm"
                    ) -> tuple[plt.Figure, pd.DataFrame]:
    """Heatmaps of pairwise tests between styles (Holm-adjusted Mann-Whitney), the cells
    marked with significance stars, one per aspect x condition."""
    labels = labels or Labels()
    data = pairwise[pairwise["unit"] == unit] if "unit" in pairwise else pairwise
    panels = list(data.groupby(["aspect", "condition"], sort=False)) if len(data) else []
    if not panels:
        return _empty("no pairwise comparisons to show"), pd.DataFrame()
    styles = list(dict.fromkeys([*data["a"], *data["b"]]))
    aspects = list(dict.fromkeys(a for (a, _), _ in panels))
    conditions = list(dict.fromkeys(c for (_, c), _ in panels))
    names = [labels.of_key("style", s) for s in styles]
    side = min(DOUBLE / max(len(aspects), 1), 3.6)
    fig, axes = new_figure(len(aspects), side * len(conditions) + 0.4, rows=len(conditions))
    image = None
    for (aspect, condition), part in panels:
        ax = axes[conditions.index(condition)][aspects.index(aspect)]
        matrix = pd.DataFrame(np.nan, index=styles, columns=styles)
        for row in part.itertuples():
            value = getattr(row, column)
            matrix.loc[row.a, row.b] = matrix.loc[row.b, row.a] = value
        shown = -np.log10(matrix.clip(lower=1e-10).to_numpy(float))
        image = ax.imshow(shown, cmap="viridis", vmin=0, vmax=4)
        if len(styles) <= 12:
            for i in range(len(styles)):
                for j in range(len(styles)):
                    p = matrix.iat[i, j]
                    if np.isfinite(p):
                        ax.text(j, i, stars(p), ha="center", va="center",
                                color="white" if shown[i, j] < 2 else "black")
        ax.set_xticks(range(len(styles)), names, rotation=60, ha="right")
        ax.set_yticks(range(len(styles)), names if aspect == aspects[0] else [])
        title = labels.of_key("aspect", aspect)
        ax.set_title(title if len(conditions) == 1 else f"{title}, {labels.of_key('condition', condition)}")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="-log10 p (Holm)")
    shown_rows = data[["aspect", "condition", "a", "b", column]].rename(columns={column: "p"})
    return fig, shown_rows.assign(p_column=column)


def agreement_figure(ratings: pd.DataFrame, labels: Labels | None = None
                     ) -> tuple[plt.Figure, pd.DataFrame]:
    """Quadratic-weighted Cohen's kappa between each pair of raters, one panel per aspect
    (the items both raters rated; the same measure as reliability.csv)."""
    labels = labels or Labels()
    aspects = _levels(ratings, "aspect")
    levels = score_levels(ratings)
    matrices = {a: rating_matrix(ratings, a) for a in aspects}
    raters = sorted({r for m in matrices.values() for r in m.index})
    if len(raters) < 2:
        return _empty("agreement needs at least two raters"), pd.DataFrame()
    side = min(DOUBLE / max(len(aspects), 1), 0.35 * len(raters) + 1.8)
    fig, axes = new_figure(len(aspects), side + 0.3)
    image, rows = None, []
    for ax, aspect in zip(axes[0], aspects):
        wide = matrices[aspect].reindex(raters).to_numpy(float)
        kappa = np.full((len(raters), len(raters)), np.nan)
        for i in range(len(raters)):
            for j in range(i, len(raters)):
                both = ~np.isnan(wide[i]) & ~np.isnan(wide[j])
                if both.sum() >= 2:
                    kappa[i, j] = kappa[j, i] = weighted_kappa(wide[i, both], wide[j, both], levels)
                    if i != j:
                        rows.append({"aspect": aspect, "rater_a": raters[i], "rater_b": raters[j],
                                     "kappa": kappa[i, j], "n_items": int(both.sum())})
        image = ax.imshow(kappa, cmap="RdBu", vmin=-1, vmax=1)
        if len(raters) <= 12:
            for i in range(len(raters)):
                for j in range(len(raters)):
                    if np.isfinite(kappa[i, j]):
                        ax.text(j, i, f"{kappa[i, j]:.2f}", ha="center", va="center")
            ticks = [r if len(r) <= 20 else r[:19] + "…" for r in raters]
            ax.set_xticks(range(len(raters)), ticks, rotation=60, ha="right")
            ax.set_yticks(range(len(raters)), ticks)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{len(raters)} raters")
        ax.set_title(labels.of_key("aspect", aspect))
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="quadratic-weighted kappa")
    return fig, pd.DataFrame(rows)


def ratings_figures(ratings: pd.DataFrame, medians: pd.DataFrame, pairwise: pd.DataFrame,
                    cis: pd.DataFrame | None, tests: pd.DataFrame | None,
                    labels: Labels) -> dict[str, FigureFiles]:
    """Every figure of a ratings analysis, the study's comparison first."""
    bars = ("its bootstrap 95% CI (raters and prompts resampled)" if cis is not None and len(cis)
            else "its interquartile range")
    made = {
        "style_medians": (lambda: medians_figure(medians, cis, tests, labels),
                          "Median of the per-prompt medians per style and condition, with "
                          f"{bars}; marks: tests at the per-prompt median unit ({STARS}; "
                          "ns: not significant)."),
        "distribution": (lambda: distribution_figure(ratings, labels),
                         "Share of each score per style (first ratings), one panel per aspect."),
        "pairwise_p": (lambda: pairwise_figure(pairwise, labels),
                       "Pairwise Mann-Whitney tests between styles at the per-prompt median unit, "
                       f"Holm-adjusted: {STARS}; ns: not significant. Colour: -log10 p."),
        "rater_agreement": (lambda: agreement_figure(ratings, labels),
                            "Quadratic-weighted Cohen's kappa between each pair of raters."),
    }
    out = {}
    with plt.rc_context(_RC):
        for name, (make, caption) in made.items():
            fig, data = make()
            out[name] = render(fig, caption, data)
    return out
