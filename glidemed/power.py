"""Power analysis by simulation: how many raters and prompts does a study need?

For each (raters, prompts) cell, ``n_sims`` studies are simulated with
:mod:`glidemed.simulate` and analysed; the power is the share of studies whose test of
"group A differs from group B" on one aspect has p < alpha.

The difference is set between two style groups (or styles), A and B, e.g. histopathology
and radiology. Every style of A gets one common latent effect (the mean of its effects,
as set in the simulation parameters or by default); every style of B gets that value
minus ``delta``. With ``scale='score'`` (the
default) ``difference`` is in points of the rating scale: ``delta`` is chosen so that
the expected score of a rating in A minus that in B, averaged over raters, prompts,
detail levels and conditions, equals ``difference``. With ``scale='logit'``
``difference`` is ``delta`` itself, a shift of the latent cumulative logit (a log
cumulative odds ratio). Other styles stay at their defaults.

Methods:

- ``mixed``: the cumulative link mixed model
  ``score ~ style_group + detail + condition + (1|rater) + (1|prompt_id)`` on the ratings
  of A and B (Wald test of the A-vs-B effect); a fit that fails or does not converge
  counts in ``n_failed`` and not in the power.
- ``mann-whitney``: Mann-Whitney U (two-sided) on per-prompt medians over raters and
  conditions, as in the paper (a sample with all medians equal gives p = 1).
"""

from __future__ import annotations

import dataclasses
import json
import math
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit

from glidemed.analysis.tidy import usable
from glidemed.errors import AnalysisError, GlidemedError
from glidemed.fileio import os_error_reason
from glidemed.simulate import (
    Model,
    Session,
    SimParams,
    build_model,
    ratings_from_sessions,
    simulate_sessions,
    style_effect,
)
from glidemed.study import Study

METHODS = ("mixed", "mann-whitney")
SCALES = ("score", "logit")
POWER_COLUMNS = ["raters", "prompts", "n_sims", "power", "mcse", "n_failed"]
MIXED_FORMULA = "score ~ style_group + detail + condition + (1|rater) + (1|prompt_id)"


@dataclass(frozen=True)
class Comparison:
    """Arm A and arm B (style keys or style groups), the aspect and the latent values set."""

    first: str
    second: str
    aspect: str
    first_styles: tuple[str, ...]
    second_styles: tuple[str, ...]
    first_value: float  # latent style effect of every style in A
    delta: float  # A minus B on the latent scale

    def params(self, base: SimParams) -> SimParams:
        """``base`` with the two arms' style effects set for this aspect."""
        effects = {f"{self.aspect}/style:{s}": self.first_value for s in self.first_styles}
        effects.update({f"{self.aspect}/style:{s}": self.first_value - self.delta
                        for s in self.second_styles})
        return base.with_effects(effects)


def default_groups(study: Study) -> tuple[str, str]:
    """Histopathology vs radiology when the study has both, else its first two style groups."""
    groups = list(dict.fromkeys(s.style_group for s in study.styles))
    names = set(groups) | {s.key for s in study.styles}
    if {"histopathology", "radiology"} <= names:
        return "histopathology", "radiology"
    if len(groups) < 2:
        raise AnalysisError(f"study {study.id!r}: power needs two style groups to compare, "
                            f"it has {len(groups)}")
    return groups[0], groups[1]


def _arm(study: Study, name: str) -> tuple[str, ...]:
    styles = tuple(s.key for s in study.styles if s.key == name) or tuple(
        s.key for s in study.styles if s.style_group == name)
    if not styles:
        known = sorted({s.key for s in study.styles} | {s.style_group for s in study.styles})
        raise AnalysisError(f"--groups: {name!r} is no style or style group of study "
                            f"{study.id!r} (known: {', '.join(known)})")
    return styles


def make_comparison(study: Study, groups: tuple[str, str], difference: float, scale: str = "score",
                    aspect: str | None = None, params: SimParams | None = None) -> Comparison:
    """Resolve the arms and find the latent shift that gives ``difference`` (see module doc)."""
    if scale not in SCALES:
        raise AnalysisError(f"--scale: expected one of {', '.join(SCALES)}, got {scale!r}")
    if not math.isfinite(difference):
        raise AnalysisError(f"--difference: expected a number, got {difference}")
    aspect = aspect or study.aspects[0].key
    first, second = _arm(study, groups[0]), _arm(study, groups[1])
    if set(first) & set(second):
        raise AnalysisError(f"--groups: {groups[0]!r} and {groups[1]!r} share style(s) "
                            f"{', '.join(sorted(set(first) & set(second)))}")
    params = params or SimParams()
    model = build_model(study, params, aspects=[aspect])
    first_value = float(np.mean([style_effect(study, params, aspect, s) for s in first]))
    comparison = Comparison(groups[0], groups[1], aspect, first, second, first_value, difference)
    if scale == "logit":
        return comparison
    top = len(model.cutpoints[0])
    if abs(difference) >= top:
        raise AnalysisError(f"--difference {difference}: a {top + 1}-level scale allows "
                            f"differences below {top} points")

    def gap(delta: float) -> float:
        return _score_gap(study, dataclasses.replace(comparison, delta=delta), params) - difference

    low, high = -40.0, 40.0
    if gap(low) * gap(high) > 0:
        raise AnalysisError(f"--difference {difference}: not reachable on the score scale "
                            f"with these parameters")
    delta = optimize.brentq(gap, low, high, xtol=1e-8)
    return dataclasses.replace(comparison, delta=float(delta))


def _score_gap(study: Study, comparison: Comparison, base: SimParams) -> float:
    """Expected score of arm A minus arm B (Gauss-Hermite over rater + prompt effects)."""
    model = build_model(study, comparison.params(base), aspects=[comparison.aspect])
    sd = math.hypot(model.rater_sd[0], model.prompt_sd[0])
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    cuts = model.cutpoints[0]
    styles = np.array([p.style for p in model.prompts])[model.panel_prompt]

    def expected(arm: tuple[str, ...]) -> float:
        eta = model.fixed[np.isin(styles, arm), 0]
        latent = eta[:, None, None] + sd * nodes[None, :, None]
        above = expit(latent - cuts[None, None, :]).sum(axis=2)  # E[Y] = sum_k P(Y > k)
        return float((above @ weights).mean())

    return expected(comparison.first_styles) - expected(comparison.second_styles)


# --------------------------------------------------------------------------- one study

def study_p_value(df: pd.DataFrame, comparison: Comparison, method: str) -> float:
    """p-value of A vs B in one simulated study; raises on a failed or non-converged fit."""
    arm = pd.Series(pd.NA, index=df.index, dtype="string")
    arm[df["style"].isin(comparison.first_styles)] = comparison.first
    arm[df["style"].isin(comparison.second_styles)] = comparison.second
    data = df[arm.notna() & (df["aspect"] == comparison.aspect) & ~df["repeat"]].assign(style_group=arm)
    if method == "mann-whitney":
        scored = usable(data)
        medians = scored.groupby("prompt_id")["score"].median()
        arms = scored.groupby("prompt_id")["style_group"].first()
        return _mann_whitney(medians.to_numpy(float), ((arms == comparison.first).to_numpy(),
                                                       (arms == comparison.second).to_numpy()))
    from glidemed.analysis.models import fit_model

    result = fit_model(data, MIXED_FORMULA, comparison.aspect)
    if not result.converged:
        raise AnalysisError("mixed model did not converge")
    rows = result.table[(result.table["kind"] == "effect")
                        & result.table["term"].str.startswith("style_group[")]
    if len(rows) != 1 or not math.isfinite(rows["p"].iloc[0]):
        raise AnalysisError("mixed model gave no p-value for the group effect")
    return float(rows["p"].iloc[0])


@dataclass(frozen=True)
class _Task:
    study: Study
    params: SimParams
    comparison: Comparison
    method: str
    alpha: float
    raters: int
    prompts: int
    seeds: tuple[int, ...]


def _run_task(task: _Task) -> tuple[int, int, int, int, int]:
    """Simulate and test ``len(task.seeds)`` studies; (raters, prompts, rejected, failed, n)."""
    model = build_model(task.study, task.params, task.prompts, aspects=[task.comparison.aspect])
    styles = np.array([p.style for p in model.prompts])
    arms = (np.isin(styles, task.comparison.first_styles), np.isin(styles, task.comparison.second_styles))
    rejected = failed = 0
    for seed in task.seeds:
        sessions = simulate_sessions(model, task.raters, seed, task.study.survey.repeat_panels)
        try:
            if task.method == "mann-whitney":  # fast path, same result as study_p_value
                p = _mann_whitney(prompt_medians(model, sessions), arms)
            else:
                p = study_p_value(ratings_from_sessions(model, sessions), task.comparison, task.method)
        except (GlidemedError, ValueError, ArithmeticError, np.linalg.LinAlgError):
            failed += 1
            continue
        rejected += p < task.alpha
    return task.raters, task.prompts, rejected, failed, len(task.seeds)


def prompt_medians(model: Model, sessions: list[Session]) -> np.ndarray:
    """Median score of each prompt over raters and conditions (first aspect, repeats left
    out); NaN for a prompt without a rating."""
    n_conditions = len(model.conditions)
    matrix = np.full((len(model.prompts), len(sessions) * n_conditions), np.nan)
    for r, session in enumerate(sessions):
        keep = ~session.repeat[:session.seen] & (session.scores[:, 0] >= 0)
        panels = session.order[:session.seen][keep]
        matrix[model.panel_prompt[panels], r * n_conditions + model.panel_condition[panels]] = \
            session.scores[keep, 0]
    rated = ~np.isnan(matrix).all(axis=1)
    medians = np.full(len(matrix), np.nan)
    medians[rated] = np.nanmedian(matrix[rated], axis=1)
    return medians


def _mann_whitney(medians: np.ndarray, arms: tuple[np.ndarray, np.ndarray]) -> float:
    a, b = (medians[arm & ~np.isnan(medians)] for arm in arms)
    if len(a) == 0 or len(b) == 0:
        raise AnalysisError("an arm has no rated prompt")
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


# --------------------------------------------------------------------------- the analysis

def power_analysis(study: Study, rater_counts: list[int], prompt_counts: list[int],
                   difference: float = 1.0, n_sims: int = 200, method: str = "mixed",
                   alpha: float = 0.05, seed: int = 0, *, groups: tuple[str, str] | None = None,
                   scale: str = "score", aspect: str | None = None,
                   params: SimParams | None = None, jobs: int = 1,
                   progress: bool = False) -> pd.DataFrame:
    """Estimated power per (raters, prompts): columns :data:`POWER_COLUMNS`.

    ``prompt_counts`` are total prompts per study (balanced over styles, see
    :func:`glidemed.simulate.design_prompts`). ``power`` is the share of converged
    analyses with p < alpha, ``mcse`` its Monte Carlo standard error
    sqrt(power (1 - power) / (n_sims - n_failed)). Results do not depend on ``jobs``.
    """
    from tqdm import tqdm

    if method not in METHODS:
        raise AnalysisError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise AnalysisError(f"--alpha: expected a number between 0 and 1, got {alpha}")
    if n_sims < 1 or jobs < 1:
        raise AnalysisError("--sims and --jobs: expected at least 1")
    bad = [n for n in list(rater_counts) + list(prompt_counts) if n < 1]
    if bad or not rater_counts or not prompt_counts:
        raise AnalysisError("--raters and --prompts: expected counts of at least 1")
    if method == "mixed" and min(rater_counts) < 2:
        raise AnalysisError("--raters: the mixed model needs at least 2 raters")
    params = params or SimParams()
    comparison = make_comparison(study, groups or default_groups(study), difference, scale,
                                 aspect, params)
    sim_params = comparison.params(params)
    cells = [(r, p) for r in rater_counts for p in prompt_counts]
    # One seed per simulated study, fixed by (seed, cell, index): independent of jobs.
    tasks = []
    chunk = max(1, min(25, math.ceil(n_sims / (4 * jobs))))
    for c, (raters, prompts) in enumerate(cells):
        seeds = [int(s.generate_state(1)[0])
                 for s in np.random.SeedSequence([seed, c]).spawn(n_sims)]
        for i in range(0, n_sims, chunk):
            tasks.append(_Task(study, sim_params, comparison, method, alpha, raters, prompts,
                               tuple(seeds[i:i + chunk])))
    totals = {cell: [0, 0, 0] for cell in cells}
    bar = tqdm(total=n_sims * len(cells), disable=not progress, unit="study",
               desc=f"power ({method})")
    with bar:
        if jobs == 1:
            for task in tasks:
                _add(totals, _run_task(task), bar)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for future in as_completed([pool.submit(_run_task, t) for t in tasks]):
                    _add(totals, future.result(), bar)
    rows = []
    for (raters, prompts), (rejected, failed, n) in totals.items():
        ok = n - failed
        power = rejected / ok if ok else math.nan
        rows.append({"raters": raters, "prompts": prompts, "n_sims": n,
                     "power": power, "mcse": math.sqrt(power * (1 - power) / ok) if ok else math.nan,
                     "n_failed": failed})
    out = pd.DataFrame(rows, columns=POWER_COLUMNS)
    out.attrs.update(study=study.id, method=method, alpha=alpha, seed=seed, difference=difference,
                     scale=scale, aspect=comparison.aspect, groups=[comparison.first, comparison.second],
                     delta_logit=comparison.delta)
    return out


def _add(totals: dict, result: tuple[int, int, int, int, int], bar) -> None:
    raters, prompts, rejected, failed, n = result
    cell = totals[(raters, prompts)]
    cell[0] += rejected
    cell[1] += failed
    cell[2] += n
    bar.update(n)


def write_power(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write power.csv, power.json (settings) and the plot power.png + power.svg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glidemed.fileio import write_text_atomic

    out_dir = Path(out_dir)
    try:
        csv_path, json_path = out_dir / "power.csv", out_dir / "power.json"
        write_text_atomic(csv_path, table.to_csv(index=False))  # creates out_dir
        settings = dict(table.attrs)
        write_text_atomic(json_path, json.dumps(settings, indent=1) + "\n")
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        draw_power_curves(ax, table, settings.get("alpha", 0.05))
        groups = settings.get("groups", ["A", "B"])
        unit = "points" if settings.get("scale") == "score" else "logits"
        ax.set_title(f"{settings.get('study', '')}: {groups[0]} vs {groups[1]}, "
                     f"{settings.get('aspect', '')}, {settings.get('difference')} {unit}, "
                     f"{settings.get('method', '')}", fontsize=9)
        ax.legend(fontsize=8)
        paths = [csv_path, json_path, *save_figure(fig, out_dir, "power")]
        plt.close(fig)
    except OSError as exc:
        raise AnalysisError(f"{out_dir}: cannot write the power analysis: {os_error_reason(exc)}") from None
    return paths


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``stem``.png and .svg into ``out_dir`` (atomically); return the paths."""
    from glidemed.fileio import atomic_path

    paths = []
    for ext in ("png", "svg"):
        with atomic_path(out_dir / f"{stem}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150)
        paths.append(out_dir / f"{stem}.{ext}")
    return paths


def run_power(study: Study, out_dir: str | Path | None = None, **options) -> tuple[pd.DataFrame, list[Path]]:
    """The ``glidemed power`` stage: :func:`power_analysis`, then :func:`write_power`
    into ``out_dir`` (default build/<study>/power/)."""
    from glidemed.paths import study_build_dir

    table = power_analysis(study, **options)
    return table, write_power(table, out_dir or study_build_dir(study) / "power")


def draw_power_curves(ax, table: pd.DataFrame, alpha: float) -> None:
    """Power against raters, one line per prompt count, with ±1.96 MCSE bars, the 0.8
    target and alpha."""
    for prompts, part in table.groupby("prompts"):
        part = part.sort_values("raters")
        ax.errorbar(part["raters"], part["power"], yerr=1.96 * part["mcse"], marker="o",
                    capsize=3, label=f"{prompts} prompts")
    ax.axhline(0.8, color="grey", linestyle="--", linewidth=1)
    ax.axhline(alpha, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(sorted(table["raters"].unique()))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("raters")
    ax.set_ylabel("power (bars: ±1.96 MCSE)")
