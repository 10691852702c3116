"""Did the pre-screen predict the experts? For a study that `glidemed prescreen` derived.

The derived study's folder holds ``prescreen.json`` (the metric that chose the variants)
and ``ranking.csv`` (each variant's automated mean). Per aspect, the kept variants'
automated means are compared with their mean expert score by Kendall's tau-b counted
within styles only (a variant is compared with the other variants of its style), with a
95% interval from the crossed bootstrap that resamples raters and prompts (the variants of
a prompt stay together). Whether the selected variants beat the plain template is the
variant contrast of the ordinal models (``variant[T.v2]`` against v1).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from glidemed.analysis.bootstrap import crossed_draws
from glidemed.analysis.descriptives import first_ratings
from glidemed.analysis.tidy import usable
from glidemed.fileio import sha256_file
from glidemed.prescreen import PROVENANCE, RANKING
from glidemed.study import Study, variant_name

CHECK_COLUMNS = ["aspect", "style", "variant", "template", "automated", "expert_mean", "n"]
TAU_COLUMNS = ["aspect", "metric", "tau_b", "ci_low", "ci_high", "n_variants", "n_styles",
               "n_boot", "seed"]


def stratified_tau_b(strata, x, y) -> float:
    """Kendall's tau-b over the pairs within each stratum: (C - D) / sqrt((C + D + Tx)(C + D + Ty)),
    Tx and Ty the pairs tied in x only and in y only (scipy's tau-b for one stratum)."""
    strata, x, y = np.asarray(strata), np.asarray(x, float), np.asarray(y, float)
    concordant = discordant = tied_x = tied_y = 0
    for stratum in np.unique(strata):
        i, j = np.triu_indices(int((strata == stratum).sum()), 1)
        dx = np.sign(x[strata == stratum][i] - x[strata == stratum][j])
        dy = np.sign(y[strata == stratum][i] - y[strata == stratum][j])
        concordant += int(((dx * dy) > 0).sum())
        discordant += int(((dx * dy) < 0).sum())
        tied_x += int(((dx == 0) & (dy != 0)).sum())
        tied_y += int(((dy == 0) & (dx != 0)).sum())
    denominator = np.sqrt((concordant + discordant + tied_x) * (concordant + discordant + tied_y))
    return (concordant - discordant) / denominator if denominator else float("nan")


def prescreen_section(study: Study, df: pd.DataFrame, n_boot: int, seed: int):
    """The report section, or None for a study no pre-screen derived."""
    from glidemed.analysis.agreement import metric_direction
    from glidemed.analysis.report import ReportSection

    record = study.folder / PROVENANCE
    if not record.is_file() or "variant" not in df:
        return None
    provenance = json.loads(record.read_text(encoding="utf-8"))
    ranking_path = study.folder / RANKING
    notes = []
    if not ranking_path.is_file():
        return None
    if sha256_file(ranking_path) != provenance.get("ranking_sha256"):
        notes.append(f"{ranking_path}: not the ranking {PROVENANCE} records (its SHA-256 differs)")
    ranking = pd.read_csv(ranking_path, keep_default_na=False)
    metric = provenance["metric"]
    direction = metric_direction(metric)
    automated = {}
    for style in study.styles:
        rows = ranking[(ranking["style"] == style.key) & (ranking["metric"] == metric)]
        means = dict(zip(rows["template"], rows["mean"].astype(float)))
        for i, template in enumerate(style.variants):
            if len(style.variants) > 1 and template in means:
                automated[(style.key, variant_name(i))] = means[template]
    prompts = {p.id: p for p in study.prompts()}
    data = usable(first_ratings(df))
    data = data.assign(base=data["prompt_id"].map(lambda i: prompts[i].seed_id if i in prompts else i),
                       score=data["score"].astype(float))
    checks, taus, findings = [], [], []
    for aspect in pd.unique(data["aspect"]):
        part = data[data["aspect"] == aspect]
        groups = [g for g in automated if ((part["style"] == g[0]) & (part["variant"] == g[1])).any()]
        if len(groups) < 2:
            continue
        expert = {g: part.loc[(part["style"] == g[0]) & (part["variant"] == g[1]), "score"] for g in groups}
        checks += [{"aspect": aspect, "style": g[0], "variant": g[1],
                    "template": study.style(g[0]).variants[int(g[1][1:]) - 1],
                    "automated": automated[g], "expert_mean": float(expert[g].mean()),
                    "n": int(len(expert[g]))} for g in groups]
        strata = [g[0] for g in groups]
        x = [direction * automated[g] for g in groups]
        tau = stratified_tau_b(strata, x, [expert[g].mean() for g in groups])
        low = high = float("nan")
        if n_boot > 0:
            resampled = _bootstrap_means(part, groups, n_boot, seed)
            values = np.array([stratified_tau_b(strata, x, row) for row in resampled])
            values = values[np.isfinite(values)]
            if len(values):
                low, high = np.percentile(values, [2.5, 97.5])
        taus.append({"aspect": aspect, "metric": metric, "tau_b": tau, "ci_low": low,
                     "ci_high": high, "n_variants": len(groups), "n_styles": len(set(strata)),
                     "n_boot": n_boot, "seed": seed})
        over = f"over {len(groups)} prompt variants in {len(set(strata))} style(s)"
        findings.append(
            f"The pre-screen ({metric}) against the experts on {aspect}: Kendall's τ-b "
            + (f"{tau:.2f} (95% CI {low:.2f} to {high:.2f}) {over}." if np.isfinite(tau) else
               f"not defined {over}: within every style, the automated or the expert means tie."))
    if not taus:
        return None
    paragraphs = [
        f"This study was derived by glidemed prescreen from {provenance.get('source_study_id', '?')} "
        f"(study SHA-256 {provenance.get('source_sha256', '')[:16]}…): per style, its first template "
        f"(v1, the control) and the {provenance.get('keep')} best other variant(s) by {metric}.",
        "Did the pre-screen predict the experts? Kendall's tau-b between each kept variant's "
        "automated mean and its mean expert score, counted within styles, with a 95% interval from "
        "a crossed bootstrap over raters and prompts (the variants of a prompt resampled together). "
        "Whether the selected variants beat the plain template is the variant contrast of the "
        "ordinal models (each variant against v1).",
        *notes]
    return ReportSection(
        "prescreen", "Prompt pre-screen and the experts", paragraphs,
        {"prescreen_tau": pd.DataFrame(taus, columns=TAU_COLUMNS),
         "prescreen_check": pd.DataFrame(checks, columns=CHECK_COLUMNS)}, {},
        {"provenance": provenance, "tau": taus, "variants": checks, "notes": notes}, findings)


def _bootstrap_means(part: pd.DataFrame, groups: list[tuple[str, str]], n_boot: int,
                     seed: int) -> np.ndarray:
    """n_boot x groups: each group's mean score with raters and prompts resampled."""
    draws = crossed_draws(part, n_boot, seed, prompt="base")
    rater_code = {r: i for i, r in enumerate(draws.raters)}
    prompt_code = {p: i for i, p in enumerate(draws.prompts)}
    out = np.full((n_boot, len(groups)), np.nan)
    for k, (style, variant) in enumerate(groups):
        mine = part[(part["style"] == style) & (part["variant"] == variant)]
        sums = np.zeros((len(draws.raters), len(draws.prompts)))
        counts = np.zeros_like(sums)
        r = mine["rater"].map(rater_code).to_numpy()
        p = mine["base"].map(prompt_code).to_numpy()
        np.add.at(sums, (r, p), mine["score"].to_numpy(float))
        np.add.at(counts, (r, p), 1)
        total = np.einsum("br,rp,bp->b", draws.rater_counts, sums, draws.prompt_counts)
        n = np.einsum("br,rp,bp->b", draws.rater_counts, counts, draws.prompt_counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = np.where(n > 0, total / np.where(n > 0, n, 1), np.nan)
    return out
