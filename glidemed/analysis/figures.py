"""Figures of an analysis, drawn with matplotlib (Agg) and written as PNG and SVG.

- ``distribution``: share of each score per style, one panel per aspect (the paper's
  Suppl. Fig. 3A-B);
- ``pairwise_p``: heatmaps of Holm-adjusted pairwise Mann-Whitney p-values between styles at
  the per-prompt median unit (Suppl. Fig. 3C-D);
- ``style_medians``: per-style median of the per-prompt medians with IQR, and a bootstrap
  CI of the median when given;
- ``rater_agreement``: quadratic-weighted Cohen's kappa of every pair of raters.

Text from raters (ids) is drawn as plain text: mathtext parsing is off.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from glidemed.analysis.descriptives import first_ratings, score_levels  # noqa: E402
from glidemed.analysis.reliability import rating_matrix, weighted_kappa  # noqa: E402
from glidemed.analysis.tidy import usable  # noqa: E402

FORMATS = ("png", "svg")
SCORE_COLOURS = ["#b2182b", "#ef8a62", "#f7f7f7", "#67a9cf", "#2166ac"]
_RC = {"text.parse_math": False, "svg.hashsalt": "glidemed", "figure.dpi": 100,
       "font.size": 9, "axes.titlesize": 10}


def _levels(df: pd.DataFrame, column: str) -> list[str]:
    return [str(v) for v in pd.unique(df[column].dropna())]


def distribution_figure(ratings: pd.DataFrame) -> plt.Figure:
    """Stacked horizontal bars: share of each score per style, one panel per aspect."""
    data = usable(first_ratings(ratings))
    aspects, styles = _levels(ratings, "aspect"), _levels(ratings, "style")
    top = max(4, int(data["score"].max()) if len(data) else 4)
    fig, axes = plt.subplots(1, len(aspects), figsize=(4.2 * len(aspects), 0.35 * len(styles) + 1.4),
                             squeeze=False, sharey=True, layout="constrained")
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
        ax.set_yticks(range(len(styles)), styles)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of ratings")
        ax.set_title(f"{aspect}: n = {len(part)} ratings")
    axes[0][-1].legend(title="score", bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
    return fig


def pairwise_figure(pairwise: pd.DataFrame, unit: str = "prompt_median",
                    column: str = "p_mw_holm") -> plt.Figure:
    """Heatmaps of pairwise p-values between styles, one per aspect x condition."""
    data = pairwise[pairwise["unit"] == unit] if "unit" in pairwise else pairwise
    panels = list(data.groupby(["aspect", "condition"], sort=False)) if len(data) else []
    if not panels:
        return _empty_figure("no pairwise comparisons to show")
    styles = list(dict.fromkeys([*data["a"], *data["b"]]))
    aspects = list(dict.fromkeys(a for (a, _), _ in panels))
    conditions = list(dict.fromkeys(c for (_, c), _ in panels))
    size = 0.45 * len(styles) + 1.2
    fig, axes = plt.subplots(len(conditions), len(aspects), squeeze=False, layout="constrained",
                             figsize=(size * len(aspects) + 2.5, size * len(conditions) + 1.2))
    image = None
    for (aspect, condition), part in panels:
        ax = axes[conditions.index(condition)][aspects.index(aspect)]
        matrix = pd.DataFrame(np.nan, index=styles, columns=styles)
        for row in part.itertuples():
            value = getattr(row, column)
            matrix.loc[row.a, row.b] = matrix.loc[row.b, row.a] = value
        shown = -np.log10(matrix.clip(lower=1e-10).to_numpy(float))
        image = ax.imshow(shown, cmap="viridis", vmin=0, vmax=4)
        for i in range(len(styles)):
            for j in range(len(styles)):
                p = matrix.iat[i, j]
                if np.isfinite(p):
                    ax.text(j, i, _p_text(p), ha="center",
                            va="center", fontsize=6, color="white" if shown[i, j] < 2 else "black")
        ax.set_xticks(range(len(styles)), styles, rotation=60, ha="right")
        ax.set_yticks(range(len(styles)), styles if aspect == aspects[0] else [])
        ax.set_title(f"{aspect}, {condition}")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="-log10 p (Holm)")
    return fig


def _p_text(p: float) -> str:
    if p < 0.001:
        return "<.001"
    return (f"{p:.3f}" if p < 0.01 else f"{p:.2f}").lstrip("0")


def medians_figure(medians: pd.DataFrame, cis: pd.DataFrame | None = None) -> plt.Figure:
    """Median with IQR of the per-prompt medians per style and condition, one panel per aspect.

    ``cis``: optional bootstrap CIs with columns style, condition, aspect, ci_low, ci_high.
    """
    aspects, styles = _levels(medians, "aspect"), _levels(medians, "style")
    conditions = _levels(medians, "condition")
    if not aspects:
        return _empty_figure("no usable ratings")
    fig, axes = plt.subplots(1, len(aspects), figsize=(0.5 * len(styles) * len(conditions) + 3,
                                                      3.2), squeeze=False, sharey=True,
                             layout="constrained")
    width = 0.8 / max(len(conditions), 1)
    for ax, aspect in zip(axes[0], aspects):
        for k, condition in enumerate(conditions):
            part = medians[(medians["aspect"] == aspect) & (medians["condition"] == condition)]
            if part.empty:  # no usable rating of this condition and aspect: nothing to draw
                continue
            stats = part.groupby("style")["score"].quantile([0.25, 0.5, 0.75]).unstack()
            stats = stats.reindex(index=styles, columns=[0.25, 0.5, 0.75])
            x = np.arange(len(styles)) + (k - (len(conditions) - 1) / 2) * width
            ax.errorbar(x, stats[0.5], yerr=[stats[0.5] - stats[0.25], stats[0.75] - stats[0.5]],
                        fmt="o", capsize=3, label=f"{condition} (IQR)")
            if cis is not None and len(cis):
                ci = cis[(cis["aspect"] == aspect) & (cis["condition"] == condition)]
                ci = ci.set_index("style").reindex(styles)
                ax.vlines(x + width * 0.25, ci["ci_low"], ci["ci_high"], colors="black",
                          linewidth=2, label=f"{condition} (bootstrap 95% CI)" if k == 0 else None)
        ax.set_xticks(range(len(styles)), styles, rotation=45, ha="right")
        ax.set_ylim(-0.3, max(4, float(medians["score"].max() or 4)) + 0.3)
        ax.set_ylabel("median score per prompt")
        ax.set_title(aspect)
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=7, frameon=False)
    return fig


def agreement_figure(ratings: pd.DataFrame) -> plt.Figure:
    """Quadratic-weighted Cohen's kappa between each pair of raters, one panel per aspect
    (the items both raters rated; the same measure as reliability.csv)."""
    aspects = _levels(ratings, "aspect")
    levels = score_levels(ratings)
    matrices = {a: rating_matrix(ratings, a) for a in aspects}
    raters = sorted({r for m in matrices.values() for r in m.index})
    if len(raters) < 2:
        return _empty_figure("agreement needs at least two raters")
    size = min(0.35 * len(raters) + 2.5, 14)
    fig, axes = plt.subplots(1, len(aspects), figsize=(size * len(aspects) + 1, size), squeeze=False,
                             layout="constrained")
    image = None
    for ax, aspect in zip(axes[0], aspects):
        wide = matrices[aspect].reindex(raters).to_numpy(float)
        kappa = np.full((len(raters), len(raters)), np.nan)
        for i in range(len(raters)):
            for j in range(i, len(raters)):
                both = ~np.isnan(wide[i]) & ~np.isnan(wide[j])
                if both.sum() >= 2:
                    kappa[i, j] = kappa[j, i] = weighted_kappa(wide[i, both], wide[j, both], levels)
        image = ax.imshow(kappa, cmap="RdBu", vmin=-1, vmax=1)
        if len(raters) <= 20:
            for i in range(len(raters)):
                for j in range(len(raters)):
                    if np.isfinite(kappa[i, j]):
                        ax.text(j, i, f"{kappa[i, j]:.2f}", ha="center", va="center", fontsize=6)
            ticks = [r if len(r) <= 20 else r[:19] + "…" for r in raters]
            ax.set_xticks(range(len(raters)), ticks, rotation=60, ha="right")
            ax.set_yticks(range(len(raters)), ticks)
        else:
            ax.set_xlabel(f"{len(raters)} raters")
        ax.set_title(f"{aspect}: weighted kappa")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="quadratic-weighted kappa")
    return fig


def _empty_figure(message: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4, 1.2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return fig


def write_figures(out_dir: Path, ratings: pd.DataFrame, medians: pd.DataFrame,
                  pairwise: pd.DataFrame, cis: pd.DataFrame | None = None) -> dict[str, bytes]:
    """Draw every figure, write ``<name>.png`` and ``<name>.svg`` into ``out_dir``.

    Plain writes: the analysis writes into a temporary folder that it syncs and renames
    into place as a whole. Returns the PNG bytes by figure name, for embedding in the report.
    """
    makers = {
        "distribution": lambda: distribution_figure(ratings),
        "pairwise_p": lambda: pairwise_figure(pairwise),
        "style_medians": lambda: medians_figure(medians, cis),
        "rater_agreement": lambda: agreement_figure(ratings),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {}
    with plt.rc_context(_RC):
        for name, make in makers.items():
            fig = make()
            try:
                pngs[name] = save_figure(fig, out_dir / name)["png"]
            finally:
                plt.close(fig)
    return pngs


def save_figure(fig: plt.Figure, stem: Path, dpi: float | None = None) -> dict[str, bytes]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` (:func:`figure_bytes`); returns the
    bytes by format."""
    written = figure_bytes(fig, dpi)
    for fmt, data in written.items():
        stem.with_name(f"{stem.name}.{fmt}").write_bytes(data)
    return written


def figure_bytes(fig: plt.Figure, dpi: float | None = None) -> dict[str, bytes]:
    """``fig`` as PNG and SVG bytes, reproducible (no date, a fixed SVG id salt), so that
    ``verify`` can compare them."""
    written = {}
    with plt.rc_context(_RC):
        for fmt in FORMATS:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=dpi,
                        metadata={"Date": None} if fmt == "svg" else None)
            written[fmt] = buffer.getvalue()
    return written
