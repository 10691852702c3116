"""Benchmark of the Bradley-Terry fit beside R's BradleyTerry2::BTm; prints its figures.

    python bench/bench_bradley_terry.py

The paper-size pairwise design: 20 raters x 272 prompts x 3 condition pairs x 2 aspects
(32,640 answers, about 10 % ties). Per aspect: the time of glidemed's fit from the answer
table (aggregation included), and of BTm on the same answers in R on the same machine
(its own aggregation included, timed inside R) when Rscript and BradleyTerry2 are
installed, given the answers one row each (as the table holds them) and aggregated into
counts per ordered pair first. Best of 5 runs each. Targets: under 1 s, and at least 10x
faster than BTm.
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
sys.path.insert(0, str(ROOT))

from glidemed.analysis.bradley_terry import bradley_terry

CONDITIONS = ["sd15", "sdxl", "glide"]
ABILITY = {"sd15": 0.0, "sdxl": 0.5, "glide": -0.7}
R_TIMING = """
suppressPackageStartupMessages(library(BradleyTerry2))
d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = FALSE, na.strings = "")
levels <- c("sd15", "sdxl", "glide")
best <- Inf
for (run in 1:5) {
  t <- system.time({
    x <- d[!is.na(d$winner), ]
    x$loser <- ifelse(x$winner == x$left, x$right, x$left)
    if (commandArgs(TRUE)[2] == "counts") {
      counts <- aggregate(list(n = rep(1, nrow(x))), list(w = x$winner, l = x$loser), sum)
    } else {
      counts <- data.frame(w = x$winner, l = x$loser, n = 1)  # one binomial row per answer
    }
    pairs <- data.frame(p1 = factor(counts$w, levels = levels),
                        p2 = factor(counts$l, levels = levels), win1 = counts$n, win2 = 0)
    fit <- BTm(cbind(win1, win2), p1, p2, data = pairs, refcat = "sd15")
  })[["elapsed"]]
  best <- min(best, t)
}
cat(best, "\\n")
"""


def answers(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for i, a in enumerate(CONDITIONS) for b in CONDITIONS[i + 1:]]
    rows = []
    for _rater in range(20):
        for _prompt in range(272):
            for a, b in pairs:
                left, right = (a, b) if rng.random() < 0.5 else (b, a)
                p = 1 / (1 + np.exp(ABILITY[right] - ABILITY[left]))
                u = rng.random()
                winner = "" if abs(u - p) < 0.05 else (left if u < p else right)
                rows.append((left, right, winner))
    return pd.DataFrame(rows, columns=["left", "right", "winner"])


def fit(table: pd.DataFrame) -> pd.DataFrame:
    decisive = table[table["winner"] != ""]
    loser = decisive["right"].where(decisive["winner"] == decisive["left"], decisive["left"])
    return bradley_terry(decisive["winner"], loser, CONDITIONS)


def best_of(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    per_aspect = {aspect: answers(seed) for seed, aspect in enumerate(["style", "content"])}
    total = sum(len(t) for t in per_aspect.values())
    print(f"{total:,} answers (20 raters x 272 prompts x 3 pairs x 2 aspects)")
    rscript = shutil.which("Rscript")
    for aspect, table in per_aspect.items():
        ours = best_of(lambda: fit(table))
        line = f"{aspect}: glidemed {ours * 1000:.1f} ms"
        if rscript:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "answers.csv"
                table.to_csv(path, index=False)
                for shape in ("rows", "counts"):
                    done = subprocess.run([rscript, "-e", R_TIMING, str(path), shape],
                                          capture_output=True, text=True, check=False)
                    if done.returncode == 0:
                        theirs = float(done.stdout.split()[0])
                        line += (f", BTm on answer {shape} {theirs * 1000:.1f} ms "
                                 f"(x{theirs / ours:.1f})")
                    else:
                        line += f", BTm not run ({done.stderr.strip().splitlines()[-1]})"
        else:
            line += ", BTm not run (no Rscript)"
        print(line)
    abilities = fit(per_aspect["style"])
    print("style abilities:", json.dumps(dict(zip(abilities["condition"],
                                                  abilities["ability"].round(3)))))


if __name__ == "__main__":
    main()
