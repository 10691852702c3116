"""The data dictionary: each CSV column's heading in words and what it holds.

The CSV files keep their machine names; the report's and LaTeX tables show the headings,
and ``analysis/columns.csv`` lists every column of every table written with both.
"""

from __future__ import annotations

import re

import pandas as pd

# machine name: (heading, meaning)
COLUMNS: dict[str, tuple[str, str]] = {
    # ratings and their keys
    "rater": ("Rater", "the rater's id as typed on the start screen (or pseudonymized)"),
    "panel": ("Panel", "the panel's random token in the survey key"),
    "prompt_id": ("Prompt", "the prompt's id: style.topic.detail"),
    "style": ("Style", "the image style of the prompt (study key)"),
    "style_group": ("Style group", "the style's group (a style without one is its own group)"),
    "topic": ("Topic", "the medical topic of the prompt"),
    "detail": ("Prompt detail", "short or detailed description of the topic"),
    "variant": ("Prompt variant", "which of the style's templates the prompt used: v1, v2, ..."),
    "style_variant": ("Style and variant", "style:variant"),
    "condition": ("Condition", "how the images were made: generator and settings (study name)"),
    "aspect": ("Aspect", "the rating scale, e.g. style or content"),
    "score": ("Score", "the rating on the aspect's scale"),
    "exclusion": ("Excluded because", "why the rating is left out of the analysis; empty: used"),
    "seconds": ("Seconds", "time the rater spent on the panel"),
    "repeat": ("Repeat", "a quality-control repeat of a panel shown before"),
    "comment": ("Comment", "the rater's free-text comment on the panel"),
    "nonsensical": ("Nonsensical", "the rater flagged the prompt as nonsensical"),
    "n_raters": ("Raters", "number of raters whose ratings form the median"),
    # response files
    "file": ("File", "the response file"),
    "sha256": ("SHA-256", "hash of the file's bytes"),
    "status": ("Status", "used, or why not: rejected, flagged, duplicate; for results: ok or not testable"),
    "reason": ("Reason", "why a file or result has its status"),
    "n_panels": ("Panels", "panels answered in the file"),
    "n_ratings": ("Ratings", "ratings in the file"),
    "complete": ("Complete", "the rater reached the end of the survey"),
    "updated": ("Updated", "when the file was last saved by the survey page"),
    "simulated": ("Simulated", "made by glidemed simulate, not by a person"),
    # descriptives
    "by": ("Grouped by", "the factor the row summarises"),
    "level": ("Level", "the factor's level"),
    "n": ("N", "number of observations used"),
    "n_excluded": ("Excluded", "ratings left out (nonsensical, missing)"),
    "median": ("Median", "median score"),
    "q1": ("Q1", "first quartile"),
    "q3": ("Q3", "third quartile"),
    "iqr": ("IQR", "interquartile range, Q3 - Q1"),
    "mean": ("Mean", "mean score (for reference; the scales are ordinal)"),
    # tests
    "unit": ("Unit", "prompt_median: the per-prompt median across raters (the paper's unit); "
             "rating: every rating (descriptive: one rater's ratings are not independent)"),
    "test": ("Test", "kruskal: Kruskal-Wallis; mannwhitney_group: Mann-Whitney U of a style group "
             "against the rest; wilcoxon_detail, wilcoxon_condition, wilcoxon_variant: paired Wilcoxon "
             "signed-rank"),
    "comparison": ("Comparison", "what the test compares"),
    "statistic": ("Statistic", "the test statistic (H, U or W)"),
    "p": ("p", "two-sided p-value"),
    "effect_size": ("Effect size", "the effect size named in effect measure"),
    "effect_measure": ("Effect measure", "epsilon_squared, cliffs_delta (> 0: first higher) or "
                       "rank_biserial"),
    "zero_method": ("Zero differences", "how signed-rank tests treat zero differences (pratt: "
                    "ranked, then left out)"),
    "a": ("Style A", "first style of the pair"),
    "b": ("Style B", "second style of the pair"),
    "n_a": ("N A", "observations of style A"),
    "n_b": ("N B", "observations of style B"),
    "median_a": ("Median A", "median of style A"),
    "median_b": ("Median B", "median of style B"),
    "u": ("U", "Mann-Whitney U of style A"),
    "p_mw": ("p (Mann-Whitney)", "unadjusted two-sided Mann-Whitney p"),
    "p_mw_holm": ("p (Mann-Whitney, Holm)", "Holm-adjusted over the pairs of one unit, aspect "
                  "and condition"),
    "p_mw_bh": ("p (Mann-Whitney, BH)", "Benjamini-Hochberg-adjusted over the same pairs"),
    "p_dunn": ("p (Dunn)", "unadjusted Dunn test p"),
    "p_dunn_holm": ("p (Dunn, Holm)", "Holm-adjusted Dunn p"),
    "p_dunn_bh": ("p (Dunn, BH)", "Benjamini-Hochberg-adjusted Dunn p"),
    "cliffs_delta": ("Cliff's delta", "P(A > B) - P(A < B); > 0: style A scores higher"),
    # models
    "role": ("Role", "primary analysis or sensitivity analysis"),
    "model": ("Model", "fixed: cumulative logit model (R ordinal::clm); mixed: with random "
              "intercepts (ordinal::clmm)"),
    "formula": ("Formula", "the model as fitted, in R's notation"),
    "term": ("Term", "the model term or bootstrap quantity; 'style[T.x]': level x against the "
             "reference level, 'j|k': the threshold between scores j and k"),
    "kind": ("Kind", "effect, cutpoint (threshold), random_sd, median, difference, ability or "
             "position_bias"),
    "estimate": ("Estimate", "the estimate (log cumulative odds ratio for model effects)"),
    "se": ("SE", "standard error"),
    "ci_low": ("95% CI low", "lower end of the 95% confidence interval"),
    "ci_high": ("95% CI high", "upper end of the 95% confidence interval"),
    "odds_ratio": ("Odds ratio", "exp(estimate): above 1 means higher scores than the reference"),
    "or_ci_low": ("OR 95% CI low", "lower end of the odds ratio's 95% CI"),
    "or_ci_high": ("OR 95% CI high", "upper end of the odds ratio's 95% CI"),
    # bootstrap
    "n_boot": ("Resamples", "bootstrap resamples drawn"),
    "n_valid": ("Valid resamples", "resamples in which the quantity could be computed"),
    "seed": ("Seed", "random seed of the bootstrap"),
    # reliability
    "measure": ("Measure", "krippendorff_alpha_ordinal, cohen_kappa_quadratic, icc2_1, icc3_1 or "
                "intra_rater"),
    "raters": ("Raters", "the raters the measure covers ('all' or a pair)"),
    "n_items": ("Items", "items (prompts, panels) rated"),
    # visual Turing test
    "analysis": ("Analysis", "rrrc: readers and images random; frrc: readers fixed; rrfc: images "
                 "fixed (Obuchowski-Rockette-Hillis)"),
    "auc": ("AUC", "area under the ROC curve: the chance a generated image is rated more "
            "'generated' than a real one; 0.5: readers cannot tell"),
    "df": ("df", "Hillis' degrees of freedom"),
    "statistic_vs_half": ("t vs 0.5", "the test statistic of AUC = 0.5"),
    "p_vs_half": ("p vs 0.5", "two-sided p of AUC = 0.5"),
    "readers": ("Readers", "readers in the analysis"),
    "generated_images": ("Generated images", "generated images in the analysis"),
    "real_images": ("Real images", "real images in the analysis"),
    "left_out_readers": ("Left-out readers", "readers left out, with the reason"),
    "reader": ("Reader", "the reader (rater) id"),
    "unsure": ("Unsure", "ratings at the scale's midpoint"),
    "accuracy": ("Accuracy", "share of images called right (midpoint left out)"),
    "accuracy_low": ("Accuracy 95% CI low", "Wilson score interval"),
    "accuracy_high": ("Accuracy 95% CI high", "Wilson score interval"),
    "sensitivity": ("Sensitivity", "generated images called generated"),
    "sensitivity_low": ("Sensitivity 95% CI low", "Wilson score interval"),
    "sensitivity_high": ("Sensitivity 95% CI high", "Wilson score interval"),
    "specificity": ("Specificity", "real images called real"),
    "specificity_low": ("Specificity 95% CI low", "Wilson score interval"),
    "specificity_high": ("Specificity 95% CI high", "Wilson score interval"),
    "first": ("First", "first condition of the comparison"),
    "second": ("Second", "second condition of the comparison"),
    "difference": ("Difference", "AUC of the first minus AUC of the second"),
    "method": ("Method", "how the CI and p were computed"),
    "treatment": ("Treatment", "the condition read (MRMC treatment)"),
    "case": ("Image", "the image (MRMC case)"),
    "truth": ("Generated", "1: generated image, 0: real image"),
    "rating": ("Rating", "the reader's rating: higher is more 'generated'"),
    # pairwise comparison
    "left": ("Left", "condition shown on the left"),
    "right": ("Right", "condition shown on the right"),
    "choice": ("Choice", "the answer: -1 left better, 0 equal, 1 right better (scaled)"),
    "winner": ("Winner", "the condition chosen; empty for a tie"),
    "group": ("Group", "the answers the row covers: all, or a style group"),
    "ability": ("Ability", "Bradley-Terry log-ability against the reference condition (0)"),
    "n_wins": ("Wins", "comparisons the condition won"),
    "n_comparisons": ("Comparisons", "decisive comparisons of the condition"),
    "opponent": ("Opponent", "the other condition"),
    "win_rate": ("Win rate", "share of answers where the condition beat the opponent (ties half)"),
    # numbers behind the figures
    "count": ("Count", "number of ratings"),
    "share": ("Share", "share of the style's ratings"),
    "p_column": ("p from", "the column of pairwise.csv the p-value comes from"),
    "rater_a": ("Rater A", "first rater of the pair"),
    "rater_b": ("Rater B", "second rater of the pair"),
    "kappa": ("Kappa", "quadratic-weighted Cohen's kappa of the pair"),
    "fpr": ("1 - specificity", "share of real images rated at or above the threshold"),
    "tpr": ("Sensitivity", "share of generated images rated at or above the threshold"),
    # prompt pre-screen
    "template": ("Template", "the style's prompt template of the variant"),
    "automated": ("Automated mean", "the variant's mean of the pre-screen's metric"),
    "expert_mean": ("Expert mean", "the variant's mean expert score"),
    "tau_b": ("Kendall's tau-b", "between the automated means and the expert means, within styles"),
    "n_variants": ("Variants", "prompt variants compared"),
    "n_styles": ("Styles", "styles with compared variants"),
    "rank": ("Rank", "the variant's rank within its style by the metric (1: best)"),
    # agreement with automated scores
    "metric": ("Metric", "the automated score"),
    "family": ("Family", "the kind of automated score"),
    "direction": ("Direction", "1: higher is better, -1: lower is better"),
    "n_prompts": ("Prompts", "prompts in the comparison"),
    "kendall_tau_b": ("Kendall's tau-b", "rank correlation of the score with the ratings"),
    "tau_ci_low": ("tau 95% CI low", "crossed-bootstrap interval"),
    "tau_ci_high": ("tau 95% CI high", "crossed-bootstrap interval"),
    "spearman": ("Spearman's rho", "rank correlation of the score with the ratings"),
    "spearman_ci_low": ("rho 95% CI low", "crossed-bootstrap interval"),
    "spearman_ci_high": ("rho 95% CI high", "crossed-bootstrap interval"),
    "score_sd": ("Score SD", "standard deviation of the automated score (the unit of its effect)"),
    "converged": ("Converged", "the fit converged"),
    "notes": ("Notes", "what the fit noted"),
    "best_metric": ("Best metric", "the metric that agrees best with the experts"),
    "oriented_tau_b": ("tau-b (oriented)", "Kendall's tau-b with the metric's direction applied"),
    "excludes_zero": ("CI excludes 0", "the interval of tau-b lies above 0"),
    "runner_up": ("Runner-up", "the second-best metric"),
}
SCORE_COUNT = re.compile(r"^n_(-?\d+)$")


def heading(column: str, known: dict[str, tuple[str, str]] | None = None) -> str:
    """The column's heading in words (``n_3``: ``Score 3``); unknown ones tidied."""
    known = COLUMNS if known is None else known
    if column in known:
        return known[column][0]
    match = SCORE_COUNT.match(column)
    if match:
        return f"Score {match[1]}"
    return column.replace("_", " ")


def meaning(column: str, known: dict[str, tuple[str, str]] | None = None) -> str:
    known = COLUMNS if known is None else known
    if column in known:
        return known[column][1]
    match = SCORE_COUNT.match(column)
    if match:
        return f"number of ratings with score {match[1]}"
    return ""


def dictionary(tables: dict[str, list[str]], known: dict[str, tuple[str, str]] | None = None
               ) -> pd.DataFrame:
    """columns.csv: one row per (file, column) of ``tables`` (file name: its columns)."""
    rows = [{"file": file, "column": column, "heading": heading(column, known),
             "meaning": meaning(column, known)}
            for file, columns in sorted(tables.items()) for column in columns]
    return pd.DataFrame(rows, columns=["file", "column", "heading", "meaning"])


# Columns holding keys of a factor, shown by the study's labels.
FACTOR_COLUMNS = {"style": "style", "a": "style", "b": "style", "style_group": "style_group",
                  "condition": "condition", "left": "condition", "right": "condition",
                  "winner": "condition", "opponent": "condition", "first": "condition",
                  "second": "condition", "treatment": "condition", "aspect": "aspect",
                  "detail": "detail", "group": "style_group", "variant": "variant"}
WORDS = {
    "test": {"kruskal": "Kruskal-Wallis", "mannwhitney_group": "Mann-Whitney U",
             "wilcoxon_detail": "Wilcoxon signed-rank", "wilcoxon_condition": "Wilcoxon signed-rank",
             "wilcoxon_variant": "Wilcoxon signed-rank"},
    "effect_measure": {"epsilon_squared": "ε²", "cliffs_delta": "Cliff's δ",
                       "rank_biserial": "rank-biserial r"},
    "unit": {"prompt_median": "per-prompt median", "rating": "rating"},
    "kind": {"effect": "effect", "cutpoint": "threshold", "random_sd": "random-effect SD"},
}
# The columns a page or LaTeX table shows of the wide tables (the CSV has them all).
SHOWN = {
    "pairwise": ["unit", "aspect", "condition", "a", "b", "median_a", "median_b", "p_mw",
                 "p_mw_holm", "cliffs_delta", "status"],
    "ordinal": ["role", "model", "aspect", "term", "estimate", "se", "p", "odds_ratio",
                "or_ci_low", "or_ci_high"],
    "tests": ["unit", "aspect", "condition", "test", "comparison", "n", "statistic", "p",
              "effect_size", "effect_measure", "status"],
    "bootstrap_medians": ["condition", "aspect", "kind", "term", "estimate", "ci_low", "ci_high",
                          "n_valid"],
}


def readable(table: pd.DataFrame, labels, references: dict[str, str] | None = None,
             name: str = "") -> pd.DataFrame:
    """``table`` for people: the shown columns of ``name`` (all for other tables), keys as
    the study's labels, model terms and codes in words, headings for column names."""
    out = table[[c for c in SHOWN.get(name, table.columns) if c in table.columns]].copy()
    for column, factor in FACTOR_COLUMNS.items():
        if column in out and not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = [labels.of_key(factor, v) if isinstance(v, str) else v for v in out[column]]
    for column, words in WORDS.items():
        if column in out:
            out[column] = [words.get(v, v) if isinstance(v, str) else v for v in out[column]]
    if "comparison" in out:  # 'soft - sharp', 'radiology vs rest': keys of several factors
        out["comparison"] = [" ".join(labels.any_key(part) for part in re.split(r"( - | vs )", str(t)))
                             .replace("  ", " ") if isinstance(t, str) else t
                             for t in out["comparison"]]
    if "term" in out and name == "bootstrap_medians":  # styles, or differences of two
        out["term"] = [" − ".join(labels.of_key("style", part) for part in str(t).split(" - "))
                       for t in out["term"]]
    elif "term" in out:
        out["term"] = [labels.term(t, references) if isinstance(t, str) else t for t in out["term"]]
    return out.rename(columns={c: heading(str(c)) for c in out.columns})
