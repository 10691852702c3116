"""Benchmark of the pairwise-task statistics beside R; prints its figures.

    python bench/bench_pairwise.py

The paper-size pairwise design: 20 raters x 272 prompts x 3 condition pairs x 2 aspects
(32,640 answers on a 3-level scale, simulated with abilities, a position bias towards the
right side, rater and prompt effects; about a quarter ties; make_paired_simulated.py).
Per aspect, from that aspect's answer table:

- Bradley-Terry: glidemed's ``paired_bradley_terry`` (coding and counting included) beside
  R ``BradleyTerry2::BTm`` timed inside R (its own aggregation included, R startup and CSV
  reading excluded), given the decisive answers one row each and counted per ordered pair
  first; and the fit alone on the counts (win matrix, R's data frame of counts). Best of 5
  runs in R, of 20 in Python (after a first call; a millisecond is noisy). Targets: under
  1 s and at least 10x faster than BTm.
- Ordinal paired-comparison mixed model: glidemed's ``paired_model`` beside R
  ``ordinal::clmm`` on the same x_right - x_left design, one run each. Target: under 10 s.

Then the largest differences of the estimates from R's, and the time of the win rates
with 2,000 crossed bootstrap resamples. R parts are skipped, with a note, when Rscript,
BradleyTerry2 or ordinal is missing.
"""

from __future__ import annotations

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
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "reference")]

from make_paired_simulated import ABILITY, simulate_answers  # noqa: E402

from glidemed.analysis.bradley_terry import bradley_terry_counts  # noqa: E402
from glidemed.analysis.paired import paired_bradley_terry, paired_model, win_rates  # noqa: E402

CONDITIONS = list(ABILITY)
N_LEVELS = 3
R_SCRIPT = """
suppressPackageStartupMessages({library(BradleyTerry2); library(ordinal); library(jsonlite)})
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = "")
levels <- c("sd15", "sdxl", "glide")
pairs_of <- function(shape) {
  x <- d[d$choice != 1, ]
  x$winner <- ifelse(x$choice < 1, x$left, x$right)
  x$loser <- ifelse(x$choice < 1, x$right, x$left)
  counts <- if (shape == "counts") {
    aggregate(list(n = rep(1, nrow(x))), list(w = x$winner, l = x$loser), sum)
  } else data.frame(w = x$winner, l = x$loser, n = 1)  # one binomial row per answer
  data.frame(p1 = factor(counts$w, levels = levels), p2 = factor(counts$l, levels = levels),
             win1 = counts$n, win2 = 0)
}
fit_bt <- function(pairs) BTm(cbind(win1, win2), p1, p2, data = pairs, refcat = "sd15")
bt <- function(shape) fit_bt(pairs_of(shape))
counted <- pairs_of("counts")
best <- function(f) min(replicate(5, system.time(f())[["elapsed"]]))
out <- list(bt_rows = best(function() bt("rows")), bt_counts = best(function() bt("counts")),
            bt_fit = best(function() fit_bt(counted)),
            bt_ability = unname(BTabilities(bt("counts"))[levels, "ability"]))
d$x_sdxl <- (d$right == "sdxl") - (d$left == "sdxl")
d$x_glide <- (d$right == "glide") - (d$left == "glide")
out$clmm <- system.time(fit <- clmm(factor(choice, ordered = TRUE) ~ x_sdxl + x_glide +
                                    (1 | rater) + (1 | prompt_id), data = d))[["elapsed"]]
a <- fit$alpha
out$clmm_estimates <- list(sdxl = fit$beta[["x_sdxl"]], glide = fit$beta[["x_glide"]],
                           "0|1" = a[[1]], "1|2" = a[[2]], right = -mean(a),
                           "sd(rater)" = attr(VarCorr(fit)$rater, "stddev")[[1]],
                           "sd(prompt_id)" = attr(VarCorr(fit)$prompt_id, "stddev")[[1]])
cat(toJSON(out, digits = I(10), auto_unbox = TRUE))
"""


def best_of(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_r(table: pd.DataFrame) -> dict | str:
    """R's timings and estimates on ``table``, or why they are missing."""
    rscript = shutil.which("Rscript")
    if not rscript:
        return "R parts not run: no Rscript"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "answers.csv"
        table.to_csv(path, index=False)
        done = subprocess.run([rscript, "-e", R_SCRIPT, str(path)], capture_output=True,
                              text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        return f"R parts not run: {lines[-1]}"
    return json.loads(done.stdout)


def main() -> None:
    answers = simulate_answers(20, 272, ("style", "content"), n_levels=N_LEVELS, seed=1)
    ties = (answers["choice"] == N_LEVELS // 2).mean()
    print(f"{len(answers):,} answers (20 raters x 272 prompts x 3 pairs x 2 aspects), "
          f"{ties:.0%} ties")
    for aspect, table in answers.groupby("aspect", sort=False):
        bt = paired_bradley_terry(table, CONDITIONS, None, N_LEVELS)  # also warms up
        bt_seconds = best_of(lambda: paired_bradley_terry(table, CONDITIONS, None, N_LEVELS), 20)
        decisive = table[table["choice"] != N_LEVELS // 2]
        left_won = decisive["choice"] < N_LEVELS // 2
        wins = pd.crosstab(np.where(left_won, decisive["left"], decisive["right"]),
                           np.where(left_won, decisive["right"], decisive["left"]))
        wins = wins.reindex(index=CONDITIONS, columns=CONDITIONS, fill_value=0).to_numpy(float)
        fit_seconds = best_of(lambda: bradley_terry_counts(wins, CONDITIONS), 20)
        start = time.perf_counter()
        model = paired_model(table, CONDITIONS, None, N_LEVELS)
        model_seconds = time.perf_counter() - start
        r = run_r(table)
        bt_line = f"{aspect}: Bradley-Terry glidemed {bt_seconds * 1000:.2f} ms"
        model_line = f"{aspect}: paired ordinal mixed model glidemed {model_seconds:.2f} s"
        if isinstance(r, str):
            print(f"{bt_line}\n{model_line}\n{aspect}: {r}")
            continue
        bt_line += "".join(f", BTm on answer {shape} {r['bt_' + shape] * 1000:.0f} ms "
                           f"(x{r['bt_' + shape] / bt_seconds:.0f})" for shape in ("rows", "counts"))
        bt_line += (f"; the fit alone on the counts: glidemed {fit_seconds * 1000:.2f} ms, BTm "
                    f"{r['bt_fit'] * 1000:.0f} ms (x{r['bt_fit'] / fit_seconds:.0f})")
        model_line += f", R clmm {r['clmm']:.2f} s (x{r['clmm'] / model_seconds:.1f})"
        ours = model.table.set_index("term")["estimate"]
        theirs = pd.Series(r["clmm_estimates"])
        print(bt_line)
        print(model_line)
        print(f"{aspect}: largest difference from R: Bradley-Terry abilities "
              f"{np.max(np.abs(bt['ability'] - r['bt_ability'])):.1e}, mixed model "
              f"(abilities, thresholds, position bias, SDs) "
              f"{np.max(np.abs(ours[theirs.index] - theirs)):.1e}")
        print(f"{aspect}: position bias {ours['right']:.3f} (log-odds towards the right), "
              f"abilities {json.dumps(ours[CONDITIONS[1:]].round(3).to_dict())}")
    start = time.perf_counter()
    rates = win_rates(answers, CONDITIONS, N_LEVELS, groups={"xray": "radiology", "ct": "radiology"})
    print(f"win rates, {len(rates)} rows (2 aspects x 4 groups x 6 ordered pairs), 2,000 crossed "
          f"resamples: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
