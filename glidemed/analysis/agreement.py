"""How well each automated score agrees with the experts (``glidemed analyze`` with scores).

Each usable first rating gets, per metric, the mean score of the images the rater saw in
that panel (the rater plan of the survey build: :func:`glidemed.survey.randomize.rater_plan`,
unblinded with the key); a ratings table without panel tokens averages all images of the
prompt and condition. Then, per metric and aspect, per style and over all styles:

- Kendall's tau-b and Spearman's rho between that score and the rating, with percentile
  intervals from the crossed (rater x prompt) bootstrap of :mod:`glidemed.analysis.bootstrap`
  (the same draws; each resample's correlations computed at once from the copy counts);
- a cumulative logit mixed model ``score ~ automated + style + (1|rater) + (1|prompt_id)``
  (:func:`glidemed.analysis.mixed.fit_clmm`) with the automated score standardised (per SD):
  the log cumulative odds ratio of a higher rating per SD of the score;
- a recommendation per style and aspect: the metric with the highest tau-b (in its
  direction: a lower retrieval rank is better) and whether its interval excludes zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse, stats

from glidemed.analysis.bootstrap import _percentile_rows, crossed_draws
from glidemed.analysis.tidy import usable_first_ratings
from glidemed.errors import AnalysisError, ScoringError
from glidemed.study import Study

ALL = "all"
AGREEMENT_COLUMNS = ["metric", "family", "model", "direction", "aspect", "style", "n_ratings",
                     "n_raters", "n_prompts", "kendall_tau_b", "tau_ci_low", "tau_ci_high",
                     "spearman", "spearman_ci_low", "spearman_ci_high", "n_boot", "n_valid", "seed"]
MODEL_COLUMNS = ["metric", "aspect", "formula", "model", "n", "estimate", "se", "ci_low",
                 "ci_high", "p", "odds_ratio", "score_sd", "converged", "notes"]
RECOMMEND_COLUMNS = ["style", "aspect", "best_metric", "oriented_tau_b", "ci_low", "ci_high",
                     "excludes_zero", "runner_up"]
COVARIATE = "automated"  # the standardised score's column in the models
MIN_RATERS_MIXED = 3


def metric_direction(metric: str) -> int:
    from glidemed.scores.clipscores import DIRECTIONS

    return DIRECTIONS.get(metric.split(":", 1)[0], 1)


# --- weighted rank correlations of resampled tables ------------------------------------------

def _per_value(values: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B x distinct values: the copies of each value in each resample, code of each row)."""
    codes = np.unique(values, return_inverse=True)[1].ravel()
    onehot = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                               shape=(codes.max() + 1, len(codes)))
    return np.asarray((onehot @ W.T).T), codes


def _tie_pairs(values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Per resample: pairs of the expanded sample tied in ``values`` (copies of a row count)."""
    per_value, _ = _per_value(values, W)
    return ((per_value ** 2).sum(1) - W.sum(1)) / 2


def weighted_kendall_tau_b(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of the samples in which row i appears W[b, i] times (one per row of W).

    O(B n K) for K distinct values of y (a rating has few). With the rows sorted by x, each
    pair is counted once, at its row with the larger x: the copies of rows with a smaller x
    (cumulative sums read at the first row of each run of tied x), split by their y being
    smaller or larger, level by level.
    """
    x, y, W = np.asarray(x, float), np.asarray(y, float), np.atleast_2d(np.asarray(W, float))
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    Wt = np.ascontiguousarray(W.T[order])  # rows x resamples: row gathers are contiguous
    new_run = np.r_[True, xs[1:] != xs[:-1]]
    first = np.flatnonzero(new_run)[np.cumsum(new_run) - 1]

    def smaller_x(weights: np.ndarray) -> np.ndarray:
        inclusive = np.cumsum(weights, axis=0)
        return inclusive[first] - weights[first]

    smaller = smaller_x(Wt)  # copies with a smaller x, any y
    lower_y = np.zeros_like(Wt)  # ... and a smaller y (levels done so far)
    S = np.zeros(len(W))
    for level in np.unique(ys):
        here = ys == level
        same = smaller_x(Wt * here[:, None])
        # rows at this level: concordant = smaller y; discordant = larger y
        S += np.einsum("ib,ib->b", Wt[here], 2 * lower_y[here] + same[here] - smaller[here])
        lower_y += same
    N = W.sum(1)
    n0 = N * (N - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return S / np.sqrt((n0 - _tie_pairs(x, W)) * (n0 - _tie_pairs(y, W)))


def _weighted_ranks(values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Mid-ranks (ties averaged) of every row in each expanded sample: B x n."""
    per_value, codes = _per_value(values, W)
    before = np.cumsum(per_value, axis=1) - per_value
    return (before + (per_value + 1) / 2)[:, codes]


def weighted_spearman(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Spearman's rho of the expanded samples (one per row of W)."""
    x, y, W = np.asarray(x, float), np.asarray(y, float), np.atleast_2d(np.asarray(W, float))
    rx, ry = _weighted_ranks(x, W), _weighted_ranks(y, W)
    N = W.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = (W * rx).sum(1, keepdims=True) / N, (W * ry).sum(1, keepdims=True) / N
        dx, dy = rx - mx, ry - my
        return (W * dx * dy).sum(1) / np.sqrt((W * dx * dx).sum(1) * (W * dy * dy).sum(1))


# --- which images each rating saw -------------------------------------------------------------

def seen_images(study: Study, ratings: pd.DataFrame, key) -> pd.DataFrame:
    """(rater, panel, file) of every image shown with each first rating's panel, file as under
    images/. ``key``: the build's SurveyKey (or its dict). Without a key (or for panels not
    in it): no rows for those ratings."""
    from glidemed.survey.key import SurveyKey

    if key is None:
        return pd.DataFrame(columns=["rater", "panel", "file"])
    key = SurveyKey.of(key, study.images_per_panel, study.survey.repeat_panels)
    rows = []
    for rater in pd.unique(ratings["rater"].dropna()):
        for entry in key.plan(str(rater)):
            if entry["repeat"]:
                continue
            token = entry["token"]
            files = key.panels[token].images
            rows.extend((rater, token, files[image]) for image in entry["images"])
    return pd.DataFrame(rows, columns=["rater", "panel", "file"])


def rating_scores(study: Study, ratings: pd.DataFrame, scores: pd.DataFrame, images: list[dict],
                  key: dict | None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Usable first ratings with one column per per-image metric: the mean over the images the
    rater saw (see module docstring). Returns (table, metric names, notes)."""
    data = usable_first_ratings(ratings).copy()
    data["score"] = data["score"].astype(float)
    metrics = [str(m) for m in pd.unique(scores["metric"])]
    wide = scores.pivot_table(index=["condition", "prompt_id", "index"], columns="metric",
                              values="value", aggfunc="first")
    wide.columns = [str(c) for c in wide.columns]
    by_file = {im["file"]: (im["condition"], im["prompt_id"], int(im["index"])) for im in images}
    notes = []
    seen = seen_images(study, data, key)
    seen = seen[seen["file"].isin(by_file)]
    keys = pd.MultiIndex.from_tuples([by_file[f] for f in seen["file"]],
                                     names=["condition", "prompt_id", "index"])
    per_image = wide.reindex(keys).reset_index(drop=True)
    per_view = pd.concat([seen[["rater", "panel"]].reset_index(drop=True), per_image], axis=1)
    per_view = per_view.groupby(["rater", "panel"], sort=False)[metrics].mean().reset_index()
    merged = data.merge(per_view, on=["rater", "panel"], how="left")
    # ratings with no known images (no key, or a panel not in it): all images of the prompt
    fallback = wide.groupby(level=["condition", "prompt_id"])[metrics].mean()
    missing = merged[metrics].isna().all(axis=1)
    if missing.any():
        index = pd.MultiIndex.from_frame(merged.loc[missing, ["condition", "prompt_id"]].astype(str))
        merged.loc[missing, metrics] = fallback.reindex(index).to_numpy()
        if key is not None:
            notes.append(f"{int(missing.sum())} rating(s) of panels whose images are unknown "
                         "matched to the mean score of all images of their prompt and condition")
    unscored = merged[metrics].isna().all(axis=1)
    if unscored.any():
        notes.append(f"{int(unscored.sum())} rating(s) of images without scores left out of "
                     "the agreement")
        merged = merged[~unscored]
    if merged.empty:
        raise AnalysisError("agreement: no rated image has automated scores (are the scores of "
                            "this survey's conditions?)")
    return merged.reset_index(drop=True), metrics, notes


# --- the tables ------------------------------------------------------------------------------

def correlation_table(table: pd.DataFrame, metrics: list[str], n_boot: int, seed: int,
                      level: float = 0.95) -> pd.DataFrame:
    """AGREEMENT_COLUMNS: per metric, aspect and style (and ALL), tau-b and rho with crossed
    bootstrap intervals (the draws of bootstrap.crossed_draws on each aspect's ratings)."""
    rows = []
    for aspect in pd.unique(table["aspect"].dropna()):
        part = table[table["aspect"] == aspect].reset_index(drop=True)
        W = None
        if n_boot > 0:
            draws = crossed_draws(part, n_boot, seed)
            r = pd.Categorical(part["rater"], categories=draws.raters).codes
            p = pd.Categorical(part["prompt_id"], categories=draws.prompts).codes
            W = draws.rater_counts[:, r].astype(float) * draws.prompt_counts[:, p]
        styles = [str(s) for s in pd.unique(part["style"].dropna())]
        for metric in metrics:
            for style in [*styles, ALL] if len(styles) > 1 else [ALL]:
                mask = part[metric].notna().to_numpy()
                if style != ALL:
                    mask = mask & (part["style"].astype(str) == style).to_numpy()
                x, y = part.loc[mask, metric].to_numpy(float), part.loc[mask, "score"].to_numpy(float)
                tau = _scipy_or_nan(stats.kendalltau, x, y)
                rho = _scipy_or_nan(stats.spearmanr, x, y)
                if W is not None and mask.sum() > 1:
                    Wm = W[:, mask]
                    boot = np.column_stack([weighted_kendall_tau_b(x, y, Wm),
                                            weighted_spearman(x, y, Wm)])
                    cis = _percentile_rows(["tau", "rho"], np.array([tau, rho]), boot, n_boot,
                                           seed, level)
                    (t_lo, r_lo), (t_hi, r_hi) = cis["ci_low"], cis["ci_high"]
                    n_valid = int(cis["n_valid"].min())
                else:
                    t_lo = t_hi = r_lo = r_hi = np.nan
                    n_valid = 0
                sub = part[mask]
                family, _, model = metric.partition(":")
                rows.append({"metric": metric, "family": family, "model": model,
                             "direction": metric_direction(metric), "aspect": aspect,
                             "style": style, "n_ratings": int(mask.sum()),
                             "n_raters": int(sub["rater"].nunique()),
                             "n_prompts": int(sub["prompt_id"].nunique()), "kendall_tau_b": tau,
                             "tau_ci_low": t_lo, "tau_ci_high": t_hi, "spearman": rho,
                             "spearman_ci_low": r_lo, "spearman_ci_high": r_hi, "n_boot": n_boot,
                             "n_valid": n_valid, "seed": seed})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _scipy_or_nan(function, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(function(x, y)[0])


def model_table(table: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """MODEL_COLUMNS: the effect of the standardised score in an ordinal model per metric and
    aspect (mixed with crossed random intercepts from MIN_RATERS_MIXED raters on)."""
    from glidemed.analysis.models import fit_model

    rows, notes = [], []
    mixed = table["rater"].nunique() >= MIN_RATERS_MIXED and table["prompt_id"].nunique() > 1
    formula = f"score ~ {COVARIATE} + style" + (" + (1|rater) + (1|prompt_id)" if mixed else "")
    for metric in metrics:
        values = table[metric].astype(float)
        sd = float(values.std(ddof=1))
        if not np.isfinite(sd) or sd == 0:
            notes.append(f"model of {metric}: the score does not vary; no model fitted")
            continue
        data = table.assign(**{COVARIATE: ((values - values.mean()) / sd).astype("float64")})
        for aspect in pd.unique(table["aspect"].dropna()):
            try:
                fit = fit_model(data[data[COVARIATE].notna()], formula, str(aspect))
            except AnalysisError as exc:
                notes.append(f"model of {metric}, aspect {aspect!r}: {exc.message}")
                continue
            effect = fit.table[fit.table["term"] == COVARIATE]
            if effect.empty:
                notes.append(f"model of {metric}, aspect {aspect!r}: no estimate of the score")
                continue
            e = effect.iloc[0]
            rows.append({"metric": metric, "aspect": aspect, "formula": fit.formula,
                         "model": fit.model, "n": fit.n, "estimate": e["estimate"], "se": e["se"],
                         "ci_low": e["ci_low"], "ci_high": e["ci_high"], "p": e["p"],
                         "odds_ratio": e["odds_ratio"], "score_sd": sd, "converged": fit.converged,
                         "notes": "; ".join(fit.notes)})
    return pd.DataFrame(rows, columns=MODEL_COLUMNS), notes


def recommendation_table(agreement: pd.DataFrame) -> pd.DataFrame:
    """RECOMMEND_COLUMNS: per style and aspect the metric with the highest tau-b in its own
    direction, and whether the interval of that oriented tau-b excludes zero."""
    rows = []
    for (style, aspect), part in agreement.groupby(["style", "aspect"], sort=False):
        oriented = part.assign(
            o_tau=part["kendall_tau_b"] * part["direction"],
            o_low=np.where(part["direction"] > 0, part["tau_ci_low"], -part["tau_ci_high"]),
            o_high=np.where(part["direction"] > 0, part["tau_ci_high"], -part["tau_ci_low"]))
        oriented = oriented[oriented["o_tau"].notna()].sort_values("o_tau", ascending=False)
        if oriented.empty:
            continue
        best = oriented.iloc[0]
        rows.append({"style": style, "aspect": aspect, "best_metric": best["metric"],
                     "oriented_tau_b": best["o_tau"], "ci_low": best["o_low"],
                     "ci_high": best["o_high"],
                     "excludes_zero": bool(np.isfinite(best["o_low"]) and best["o_low"] > 0),
                     "runner_up": oriented.iloc[1]["metric"] if len(oriented) > 1 else ""})
    return pd.DataFrame(rows, columns=RECOMMEND_COLUMNS)


# --- figure ------------------------------------------------------------------------------------

MAX_FIGURE_ROWS = 8


def agreement_figure(table: pd.DataFrame, metrics: list[str], labels):
    """Score against rating, one panel per style (columns) and metric x aspect (rows): every
    rating as a jittered point and the mean score per rating level. (figure, its numbers)"""
    from glidemed.analysis.figures import DOUBLE, MIN_POINTS, colours, new_figure

    styles = [str(s) for s in pd.unique(table["style"].dropna())]
    pairs = [(m, a) for m in metrics for a in pd.unique(table["aspect"].dropna())][:MAX_FIGURE_ROWS]
    rng = np.random.default_rng(0)
    point, mean = colours(2)
    fig, axes = new_figure(len(styles), 1.5 * len(pairs) + 0.8, width=DOUBLE, rows=len(pairs))
    shown = []
    for i, (metric, aspect) in enumerate(pairs):
        for j, style in enumerate(styles):
            ax = axes[i][j]
            part = table[(table["aspect"] == aspect) & (table["style"].astype(str) == style)]
            part = part[part[metric].notna()]
            ax.scatter(part["score"] + rng.uniform(-0.15, 0.15, len(part)), part[metric],
                       s=3, alpha=0.4, color=point)
            means = part.groupby("score")[metric].mean()
            ax.plot(means.index, means.to_numpy(), color=mean, marker="o", ms=3)
            shown += [{"metric": metric, "aspect": aspect, "style": style, "score": level,
                       "mean": value, "n": int((part["score"] == level).sum())}
                      for level, value in means.items()]
            if i == 0:
                ax.set_title(labels.of_key("style", style), fontsize=MIN_POINTS)
            if j == 0:
                ax.set_ylabel(f"{metric}\n({labels.of_key('aspect', aspect)})")
            if i == len(pairs) - 1:
                ax.set_xlabel("expert rating")
    return fig, pd.DataFrame(shown)


# --- the analysis step ------------------------------------------------------------------------

@dataclass
class AgreementResult:
    agreement: pd.DataFrame
    models: pd.DataFrame
    recommendation: pd.DataFrame
    set_scores: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    scores_file: str = ""
    scores_meta: dict = field(default_factory=dict)
    figure: object = None  # FigureFiles


def agreement_analysis(study: Study, ratings: pd.DataFrame, scores_path: Path,
                       images_dir: Path, key: dict | None, n_boot: int, seed: int) -> AgreementResult:
    """Read and check the scores (study, image hashes), then every agreement table."""
    from glidemed.scores.inputs import read_scores, read_set_scores

    if not (Path(images_dir) / "manifest").is_dir():
        raise ScoringError(f"{scores_path}: cannot check that the scored images are the rated "
                           f"ones: no image manifest in {images_dir}")
    scores = read_scores(study, scores_path, images_dir)
    table, metrics, notes = rating_scores(study, ratings, scores.scores, scores.meta["images"], key)
    agreement = correlation_table(table, metrics, n_boot, seed)
    models, model_notes = model_table(table, metrics)
    set_path = Path(scores_path).with_name("set_scores.csv")
    sets = read_set_scores(study, set_path)
    from glidemed.analysis.figures import _RC, plt, render
    from glidemed.analysis.labels import Labels

    with plt.rc_context(_RC):
        fig, shown = agreement_figure(table, metrics, Labels.of(study))
        figure = render(fig, "Automated score (mean over the images seen) against the expert "
                        "rating, per style; points: ratings, line: mean score per rating level.",
                        shown)
    return AgreementResult(agreement, models, recommendation_table(agreement), sets,
                           notes + model_notes, str(scores_path), scores.meta, figure)


def agreement_section(study: Study, ratings: pd.DataFrame, scores: str | Path | None,
                      key, use_key: bool, n_boot: int, seed: int, notes: list[str]):
    """The report section of the agreement, or None without scores.

    ``scores`` given: its problems are errors. Not given: build/<study>/scores/scores.csv is
    used when present, and a problem with it (e.g. scores of older images) becomes a note in
    ``notes`` instead of stopping the analysis. ``key``: a dict, a path or None (the build's
    key when ``use_key``); the images each rater saw come from it.
    """
    from glidemed.analysis.report import ReportSection
    from glidemed.paths import images_dir, key_dir, scores_dir

    explicit = scores is not None
    path = Path(scores) if explicit else scores_dir(study) / "scores.csv"
    if not path.is_file():
        if explicit:
            raise ScoringError(f"{path}: scores file not found (run glidemed score first)")
        return None
    key_data = None
    if use_key:
        if key is not None and not isinstance(key, (str, Path)):
            key_data = key  # a SurveyKey or its dict
        else:
            from glidemed.survey.key import load_key

            key_path = Path(key) if key is not None else key_dir(study) / "key.json"
            key_data = load_key(key_path) if key_path.is_file() else None
    try:
        result = agreement_analysis(study, ratings, path, images_dir(study), key_data, n_boot, seed)
    except (ScoringError, AnalysisError) as exc:
        if explicit:
            raise
        notes.append(f"automated scores not analysed: {exc.message}")
        return None
    return _section(result, n_boot, seed, ReportSection)


def _section(result: AgreementResult, n_boot: int, seed: int, section_class):
    models = ", ".join(f"{m.get('name')} ({m.get('family')}, {m.get('library', '')})".replace(", )", ")")
                       for m in result.scores_meta.get("models", []))
    paragraphs = [
        f"Automated scores from {result.scores_file} (models: {models or 'none'}), computed on the "
        "same images as the ratings (their SHA-256 match the image manifest). Each rating is "
        "paired with the mean score of the images the rater saw in that panel.",
        f"Agreement: Kendall's tau-b and Spearman's rho between score and rating per metric, "
        f"aspect and style, with 95% percentile intervals from a crossed bootstrap resampling "
        f"raters and prompts ({n_boot} resamples, seed {seed}). Retrieval is a rank (lower is "
        "better): its correlations are expected to be negative; the recommendation orients "
        "every metric so that higher means better agreement.",
        f"Ordinal model per metric and aspect: {COVARIATE} is the score standardised to mean 0 "
        "and SD 1 (score_sd gives the SD), so the estimate is the log cumulative odds ratio of "
        "a higher rating per SD of the score.",
        "Recommendation: per style and aspect the metric that agrees best; only a metric whose "
        "interval excludes zero can stand in for experts there, and only as far as its tau-b.",
        *result.notes,
    ]
    tables = {"agreement_recommendation": result.recommendation, "agreement": result.agreement,
              "agreement_models": result.models}
    if len(result.set_scores):
        tables["set_scores"] = result.set_scores
    figures = {"agreement": result.figure}
    summary = {"scores_file": result.scores_file,
               "models": result.scores_meta.get("models", []),
               "agreement": result.agreement.to_dict(orient="records"),
               "models_fitted": result.models.to_dict(orient="records"),
               "recommendation": result.recommendation.to_dict(orient="records"),
               "set_scores": result.set_scores.to_dict(orient="records"),
               "notes": result.notes}
    return section_class(name="agreement", title="Automated scores and expert ratings",
                         paragraphs=paragraphs, tables=tables, figures=figures,
                         summary=summary)
