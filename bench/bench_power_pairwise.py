"""Benchmark of the pairwise power simulation; prints its figures.

    python bench/bench_power_pairwise.py

Per simulated study (simulate the answers, fit Bradley-Terry on the decisive ones, Wald
test): the paper-size design, 20 raters x 272 prompts x 3 condition pairs (16,320 answers),
and a small pilot, 5 raters x 20 prompts. Best of 3 runs of 20 studies each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glidemed.power_pairwise import pairwise_power

CONDITIONS = ["sd15", "sdxl", "glide"]
ABILITY = {"sdxl": 0.3, "glide": -0.5}


def main() -> None:
    for raters, prompts in [(20, 272), (5, 20)]:
        best = min(_seconds(raters, prompts) for _ in range(3))
        print(f"{raters} raters x {prompts} prompts: {1000 * best / 20:.1f} ms per simulated study")


def _seconds(raters: int, prompts: int) -> float:
    start = time.perf_counter()
    pairwise_power(CONDITIONS, ABILITY, [raters], [prompts], n_sim=20, compare=("sdxl", "glide"))
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
