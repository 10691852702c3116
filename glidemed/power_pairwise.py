"""Sizing a pairwise study: power to tell two conditions' Bradley–Terry abilities apart.

For each (raters, prompts) cell, ``n_sim`` studies are simulated with
:func:`glidemed.simulate.pairwise.simulate_answers` (one aspect) and analysed as the
pairwise analysis does: :func:`glidemed.analysis.bradley_terry.bradley_terry` on the
decisive answers (ties left out), then the two-sided Wald z test of
``ability[a] - ability[b] = 0`` for ``compare = (a, b)``. The fit takes ``b`` as its
reference condition, so the difference and its standard error are ``a``'s row. A study
whose abilities are not estimable (a condition that won or lost everything, or never met
the others) counts as a non-rejection and in ``n_failed``.

Seeds: cell (raters, prompts) draws from ``SeedSequence([seed, raters, prompts])``, one
spawned child per simulated study, so a cell's result does not depend on the other cells.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from glidemed.analysis.bradley_terry import bradley_terry
from glidemed.errors import AnalysisError
from glidemed.fileio import os_error_reason, write_text_atomic
from glidemed.simulate.pairwise import check_model, simulate_answers

POWER_COLUMNS = ["raters", "prompts", "power", "mcse", "n_sim", "n_failed"]


def pairwise_power(conditions: list[str], abilities: dict[str, float], rater_counts: list[int],
                   prompt_counts: list[int], *, n_sim: int = 200, alpha: float = 0.05, seed: int = 0,
                   pairs_per_prompt: int = 0, n_levels: int = 3, tie_share: float = 0.1,
                   position_bias: float = 0.0, rater_sd: float = 0.3, prompt_sd: float = 0.3,
                   compare: tuple[str, str] | None = None) -> pd.DataFrame:
    """Power per (raters, prompts) with :data:`POWER_COLUMNS`; the settings are in ``attrs``.

    ``compare`` defaults to the first two conditions; ``power`` is the share of all
    ``n_sim`` studies that reject, ``mcse`` its Monte Carlo standard error."""
    conditions = list(conditions)
    try:
        check_model(conditions, abilities, n_levels, tie_share, rater_sd, prompt_sd, pairs_per_prompt)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    a, b = compare or conditions[:2]
    if a not in conditions or b not in conditions or a == b:
        raise AnalysisError(f"pairwise power: compare expects two different conditions among "
                            f"{', '.join(conditions)}, got {a!r} and {b!r}")
    if not rater_counts or not prompt_counts or min(rater_counts) < 1 or min(prompt_counts) < 1:
        raise AnalysisError(f"pairwise power: expected rater and prompt counts of at least 1, "
                            f"got raters {list(rater_counts)}, prompts {list(prompt_counts)}")
    if n_sim < 1 or not 0 < alpha < 1:
        raise AnalysisError(f"pairwise power: expected n_sim >= 1 and alpha in (0, 1), "
                            f"got {n_sim} and {alpha}")
    reference_first = [b] + [c for c in conditions if c != b]
    critical = stats.norm.ppf(1 - alpha / 2)
    model = dict(pairs_per_prompt=pairs_per_prompt, n_levels=n_levels, tie_share=tie_share,
                 position_bias=position_bias, rater_sd=rater_sd, prompt_sd=prompt_sd)
    rows = []
    for raters in rater_counts:
        for prompts in prompt_counts:
            rejected = failed = 0
            for child in np.random.SeedSequence([seed, raters, prompts]).spawn(n_sim):
                answers = simulate_answers(np.random.default_rng(child), conditions, abilities,
                                           raters, prompts, **model)
                z = _wald_z(answers, reference_first, a)
                failed += z is None
                rejected += z is not None and abs(z) > critical
            power = rejected / n_sim
            rows.append({"raters": raters, "prompts": prompts, "power": power,
                         "mcse": math.sqrt(power * (1 - power) / n_sim), "n_sim": n_sim,
                         "n_failed": failed})
    table = pd.DataFrame(rows, columns=POWER_COLUMNS)
    table.attrs.update(conditions=conditions, abilities={c: float(abilities.get(c, 0.0)) for c in conditions},
                       compare=[a, b], difference=float(abilities.get(a, 0.0)) - float(abilities.get(b, 0.0)),
                       alpha=alpha, seed=seed, n_sim=n_sim, test="Bradley-Terry Wald z on decisive answers",
                       **model)
    return table


def _wald_z(answers: pd.DataFrame, reference_first: list[str], a: str) -> float | None:
    """z of ability[a] - ability[reference] from the decisive answers; None if not estimable."""
    decisive = answers[answers["winner"] != ""]
    losers = decisive["right"].where(decisive["winner"] == decisive["left"], decisive["left"])
    try:
        fit = bradley_terry(decisive["winner"], losers, reference_first)
    except AnalysisError:
        return None
    row = fit.set_index("condition").loc[a]
    return float(row["ability"] / row["se"]) if row["se"] > 0 and math.isfinite(row["se"]) else None


def write_pairwise_power(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write power_pairwise.csv, power_pairwise.json (settings) and power_pairwise.png/.svg."""
    import matplotlib.pyplot as plt

    from glidemed.analysis.figures import FORMATS, save_figure

    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / "power_pairwise.csv", out_dir / "power_pairwise.json"
    settings = dict(table.attrs)
    try:
        write_text_atomic(csv_path, table.to_csv(index=False))  # creates out_dir
        write_text_atomic(json_path, json.dumps(settings, indent=1) + "\n")
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        try:
            from glidemed.power import draw_power_curves

            draw_power_curves(ax, table, settings.get("alpha", 0.05))
            a, b = settings.get("compare", ["A", "B"])
            ax.set_title(f"Pairwise: {a} vs {b}, ability difference {settings.get('difference', 0):.3g} "
                         f"logits, tie share {settings.get('tie_share')}", fontsize=9)
            ax.legend(fontsize=8)
            save_figure(fig, out_dir / "power_pairwise")
        finally:
            plt.close(fig)
    except OSError as exc:
        raise AnalysisError(f"{out_dir}: cannot write the power analysis: {os_error_reason(exc)}") from None
    return [csv_path, json_path, *(out_dir / f"power_pairwise.{fmt}" for fmt in FORMATS)]
