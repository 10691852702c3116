"""Speed of the MRMC analysis and of Roe-Metz power; prints its figures.

Targets: ORH on Van Dyke < 0.5 s; 20 readers x 2 treatments x 2000 cases < 10 s;
1000 simulated Roe-Metz studies < 60 s on 2 cores.

    .venv/bin/python bench/bench_mrmc.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glidemed.analysis import mrmc as orh
from glidemed.power_mrmc import RoeMetz, roe_metz_power, simulate_ratings

ROOT = Path(__file__).resolve().parent.parent
VANDYKE = ROOT / "tests" / "data" / "vandyke" / "vandyke.csv"


def timed(label: str, func, repeat: int = 3) -> None:
    best = min(_once(func) for _ in range(repeat))
    print(f"{label}: {best:.3f} s (best of {repeat})")


def _once(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def big_table() -> pd.DataFrame:
    """20 readers x 2 treatments x 2000 cases of Roe-Metz ratings on a 1-5 scale, as a long table."""
    ratings, truth = simulate_ratings(RoeMetz(), [0.75, 0.8], 20, 2000, np.random.default_rng(0))
    levels = np.clip(np.round(ratings + 2.5), 1, 5)
    t, r, c = np.indices(levels.shape)
    return pd.DataFrame({"reader": r.ravel() + 1, "treatment": t.ravel() + 1, "case": c.ravel() + 1,
                         "truth": truth[c.ravel()].astype(int), "rating": levels.ravel()}).astype(str)


def main() -> None:
    print(f"cores: {os.cpu_count()} (shared machine: figures are noisy)")
    vandyke = orh.read_table(VANDYKE)
    timed("ORH, Van Dyke (5 readers x 2 x 114 cases), jackknife, from the table", lambda: orh.mrmc(vandyke))
    timed("ORH, Van Dyke, DeLong", lambda: orh.mrmc(vandyke, cov_method="delong"))
    table = big_table()
    timed(f"ORH, 20 readers x 2 treatments x 2000 cases ({len(table)} rows), jackknife",
          lambda: orh.mrmc(table), repeat=2)
    timed("ORH, 20 x 2 x 2000, DeLong", lambda: orh.mrmc(table, cov_method="delong"), repeat=2)
    timed("Roe-Metz power, 1000 simulated studies (5 readers x 2 x 100 cases)",
          lambda: roe_metz_power(RoeMetz(), [0.75, 0.8], 5, 100, 1000), repeat=1)
    timed("Roe-Metz power, 1000 simulated studies (10 readers x 2 x 200 cases)",
          lambda: roe_metz_power(RoeMetz(), [0.75, 0.8], 10, 200, 1000), repeat=1)


if __name__ == "__main__":
    main()
