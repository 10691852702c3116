"""Time a power analysis of 200 simulated studies of the seed study's design (2 conditions;
histopathology vs radiology, half a point on the style scale): 3 and 5 raters x 68 and 272
prompts, 50 studies each, with the mixed model on 2 worker processes (target: under 5 minutes),
then the same with Mann-Whitney on per-prompt medians. Also prints the rejection rate
under no difference (calibration).

    python bench/bench_power.py [--sims N] [--jobs J]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from glidemed.power import power_analysis
from glidemed.study import load_study

ROOT = Path(__file__).resolve().parent.parent


def run(study, label: str, **kwargs) -> float:
    start = time.perf_counter()
    table = power_analysis(study, **kwargs)
    seconds = time.perf_counter() - start
    studies = int(table["n_sims"].sum())
    print(f"\n{label}: {studies} simulated studies in {seconds:.1f} s "
          f"({seconds / studies * 1000:.0f} ms per study, jobs={kwargs.get('jobs', 1)})")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=50, help="studies per cell (4 cells)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    study = load_study(ROOT / "surveys" / "kather2022")
    common = {"rater_counts": [3, 5], "prompt_counts": [68, 272], "difference": 0.5,
              "n_sims": args.sims, "seed": 1, "jobs": args.jobs}
    mixed = run(study, "mixed model (clmm, Wald test)", method="mixed", **common)
    run(study, "Mann-Whitney on per-prompt medians", method="mann-whitney", **common)
    null = {**common, "difference": 0.0, "rater_counts": [3], "prompt_counts": [272],
            "n_sims": 2 * args.sims}
    se = math.sqrt(0.05 * 0.95 / null["n_sims"])
    print(f"\nno difference (power should be 0.05 +- {1.96 * se:.3f}):")
    run(study, "mixed model, null", method="mixed", **null)
    run(study, "Mann-Whitney, null", method="mann-whitney", **null)
    verdict = "meets" if mixed < 300 else "MISSES"
    print(f"\n200-study power analysis (mixed): {mixed:.1f} s, {verdict} the 5-minute target")


if __name__ == "__main__":
    main()
