"""Benchmark of the cumulative link mixed model and the crossed bootstrap; prints its figures.

    python bench/bench_mixed.py [--quick]

1. The published ratings (../shared/kather2022/): time per fit of
   score ~ style + detail + (1|rater) + (1|prompt_id), per aspect, next to R's
   ordinal::clmm on the same table and machine when Rscript is installed.
2. 20 raters x 2,176 panels (43,520 ratings): time per fit (target < 60 s).
3. Coverage of the 95% Wald CIs on simulated studies with known effects.
4. Crossed bootstrap of per-style medians on the 20 x 2,176 table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from clmm_sim import CUTPOINTS, DETAIL_EFFECTS, STYLE_EFFECTS, simulate_clmm

from glidemed.analysis.bootstrap import bootstrap_medians
from glidemed.analysis.legacy import read_legacy_spreadsheet
from glidemed.analysis.mixed import fit_clmm
from glidemed.errors import AnalysisError
from glidemed.study import load_study

XLSX = ROOT.parent / "shared" / "kather2022" / "observer_study_glide_v1_merge.xlsx"
FORMULA = "score ~ style + detail + (1|rater) + (1|prompt_id)"
R_TIMING = """
suppressPackageStartupMessages(library(ordinal))
d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = FALSE)
for (aspect in c("style", "content")) {
  x <- d[d$aspect == aspect, ]
  for (col in c("style", "detail", "rater", "prompt_id")) x[[col]] <- factor(x[[col]], levels = unique(x[[col]]))
  x$score <- factor(x$score, ordered = TRUE)
  f <- score ~ style + detail + (1 | rater) + (1 | prompt_id)
  fit <- clmm(f, data = x)
  t <- replicate(3, system.time(clmm(f, data = x)))
  cat(aspect, min(t["elapsed", ]), min(t["user.self", ] + t["sys.self", ]), logLik(fit), "\\n")
}
"""


def timed(fn, repeats: int = 3):
    """Best wall and CPU seconds over ``repeats`` calls, and the last result."""
    best_wall = best_cpu = np.inf
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def published() -> None:
    print("1. Published ratings (Kather et al. 2022), " + FORMULA)
    if not XLSX.exists():
        print(f"   skipped: {XLSX} not found")
        return
    df = read_legacy_spreadsheet(load_study(ROOT / "surveys" / "kather2022" / "study.toml"), XLSX)
    usable = df[df["exclusion"] == ""]
    r_times = {}
    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            csv, script = Path(tmp) / "ratings.csv", Path(tmp) / "time.R"
            usable[["rater", "prompt_id", "style", "detail", "aspect", "score"]].to_csv(csv, index=False)
            script.write_text(R_TIMING)
            out = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True, text=True,
                                 check=False)
            for line in out.stdout.splitlines():
                aspect, wall, cpu, loglik = line.split()
                r_times[aspect] = (float(wall), float(cpu), float(loglik))
            if out.returncode:
                print("   R failed:", out.stderr.strip()[-300:])
    for aspect in ("style", "content"):
        wall, cpu, res = timed(lambda aspect=aspect: fit_clmm(df, FORMULA, aspect))
        line = (f"   {aspect:8s} n={res.n}  glidemed {wall:6.3f} s wall, {cpu:6.3f} s CPU, "
                f"loglik {res.loglik:.4f}")
        if aspect in r_times:
            r_wall, r_cpu, r_loglik = r_times[aspect]
            line += (f" | R clmm {r_wall:6.3f} s wall, {r_cpu:6.3f} s CPU, loglik {r_loglik:.4f}"
                     f" | speed-up (CPU) x{r_cpu / cpu:.1f}")
        print(line)
    if not shutil.which("Rscript"):
        stored = json.loads((ROOT / "tests" / "reference" / "clmm_kather2022.json").read_text())
        print("   (Rscript not installed; R clmm took "
              + ", ".join(f"{a} {v['cpu_seconds']:.2f} s CPU" for a, v in stored.items())
              + " when tests/reference/clmm_kather2022.json was made)")


def big_design(seed: int = 7, n_raters: int = 20) -> pd.DataFrame:
    """20 raters x 2,176 panels: 8 styles x 17 topics x 2 details x 2 conditions x 4 panels."""
    rng = np.random.default_rng(seed)
    styles = [f"style{i}" for i in range(8)]
    panels = pd.DataFrame([(s, t, d, c, k) for s in styles for t in range(17)
                           for d in ("short", "detailed") for c in ("clip", "cfg") for k in range(4)],
                          columns=["style", "topic", "detail", "condition", "k"])
    panels["prompt_id"] = panels["style"] + "." + panels["topic"].astype(str) + "." + panels["detail"]
    panels["panel"] = panels["prompt_id"] + "." + panels["condition"] + "." + panels["k"].astype(str)
    style_effect = dict(zip(styles, rng.normal(0, 1, len(styles))))
    prompt_effect = dict(zip(panels["prompt_id"].unique(), rng.normal(0, 1, 272)))
    eta = (panels["style"].map(style_effect) + np.where(panels["detail"] == "short", -0.4, 0)
           + np.where(panels["condition"] == "cfg", 0.5, 0) + panels["prompt_id"].map(prompt_effect)
           + rng.normal(0, 0.5, len(panels)))
    raters = pd.DataFrame({"rater": [f"r{j:02d}" for j in range(n_raters)],
                           "severity": rng.normal(0, 0.6, n_raters)})
    df = raters.merge(panels.assign(eta=eta), how="cross")
    lin = (df["eta"] + df["severity"]).to_numpy()
    cum = 1 / (1 + np.exp(-(np.asarray(CUTPOINTS)[None, :] - lin[:, None])))
    df["score"] = (rng.random(len(df))[:, None] > cum).sum(axis=1)
    return df.assign(aspect="style", exclusion="", repeat=False)


def big() -> pd.DataFrame:
    df = big_design()
    print(f"2. {df['rater'].nunique()} raters x {df['panel'].nunique()} panels "
          f"({len(df)} ratings), target < 60 s per fit")
    for formula in ("score ~ style + detail + condition + (1|rater) + (1|panel)",
                    "score ~ style + detail + condition + (1|rater) + (1|prompt_id)",
                    "score ~ style + detail + condition + (1|rater) + (1|prompt_id) + (1|panel)"):
        wall, cpu, res = timed(lambda formula=formula: fit_clmm(df, formula, "style"), repeats=1)
        sds = res.table[res.table["kind"] == "random_sd"]
        sd_text = ", ".join(f"{t} {e:.3f}" for t, e in zip(sds["term"], sds["estimate"]))
        print(f"   {formula}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, converged={res.converged}; {sd_text}")
    return df


def coverage(n_seeds: int) -> None:
    truth = {f"style[T.{s}]": v for s, v in STYLE_EFFECTS.items() if s != "a"}
    truth["detail[T.short]"] = DETAIL_EFFECTS["short"]
    truth.update({f"{k}|{k + 1}": c for k, c in enumerate(CUTPOINTS)})
    print(f"3. Coverage of 95% Wald CIs over {n_seeds} simulated studies "
          "(6 raters x 60 prompts, SD rater 0.6, SD prompt 1.0)")
    hits = {t: [] for t in truth}
    estimates = {t: [] for t in truth}
    sds, seconds, failed = [], [], 0
    for seed in range(n_seeds):
        df = simulate_clmm(seed=1000 + seed, n_raters=6, n_topics=10)
        try:
            res = fit_clmm(df, FORMULA, "style")
        except AnalysisError as exc:
            failed += 1
            print("   fit failed:", exc)
            continue
        seconds.append(res.seconds)
        table = res.table.set_index("term")
        for term, value in truth.items():
            hits[term].append(table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"])
            estimates[term].append(table.loc[term, "estimate"])
        sds.append(table.loc[["sd(rater)", "sd(prompt_id)"], "estimate"].to_numpy())
    for term, value in truth.items():
        print(f"   {term:16s} true {value:+.2f}  mean estimate {np.mean(estimates[term]):+.3f}  "
              f"coverage {np.mean(hits[term]):.3f}")
    effects = np.concatenate([hits[t] for t in truth if "[T." in t])
    cuts = np.concatenate([hits[t] for t in truth if "|" in t])
    print(f"   effects: coverage {effects.mean():.3f} of {len(effects)}; cut-points: "
          f"{cuts.mean():.3f} of {len(cuts)}")
    everything = np.concatenate([hits[t] for t in truth])
    print(f"   all: coverage {everything.mean():.3f} of {len(everything)} intervals "
          f"(nominal 0.95); failed fits {failed}")
    mean_sd = np.mean(sds, axis=0)
    print(f"   mean SD estimates: rater {mean_sd[0]:.3f} (true 0.6), prompt {mean_sd[1]:.3f} (true 1.0); "
          f"median {np.median(seconds):.3f} s per fit")


def bootstrap(df: pd.DataFrame) -> None:
    print(f"4. Crossed bootstrap of per-style medians and differences ({len(df)} ratings)")
    for unit in ("prompt_median", "rating"):
        wall, cpu, out = timed(lambda unit=unit: bootstrap_medians(df, unit=unit, n_boot=2000, seed=1),
                                repeats=1)
        print(f"   unit={unit}: 2000 resamples in {wall:.2f} s wall ({cpu:.2f} s CPU), {len(out)} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer coverage seeds")
    args = parser.parse_args()
    published()
    df = big()
    coverage(40 if args.quick else 200)
    bootstrap(df)


if __name__ == "__main__":
    main()
