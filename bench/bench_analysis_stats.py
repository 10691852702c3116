"""Time the statistics (descriptives, tests, ordinal models, reliability with bootstraps) on
the published ratings of the seed study and on synthetic data of 100 raters x 2,176 panels.

    python bench/bench_analysis_stats.py [--quick]

Prints seconds per stage and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glidemed.analysis.descriptives import describe_ratings
from glidemed.analysis.legacy import read_legacy_spreadsheet, write_ratings_csv
from glidemed.analysis.nonparametric import run_tests
from glidemed.analysis.ordinal import fit_ordinal
from glidemed.analysis.reliability import reliability_table
from glidemed.analysis.tidy import TIDY_COLUMNS, normalise, read_ratings_csv
from glidemed.study import load_study

ROOT = Path(__file__).resolve().parent.parent
XLSX = ROOT.parent / "shared" / "kather2022" / "observer_study_glide_v1_merge.xlsx"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(label: str, func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:7.2f} s")
    return result, seconds


def stats_stages(df: pd.DataFrame, n_boot: int) -> float:
    total = timed("descriptives", describe_ratings, df)[1]
    for unit in ("prompt_median", "rating"):
        total += timed(f"tests ({unit})", run_tests, df, unit)[1]
    for aspect in pd.unique(df["aspect"]):
        total += timed(f"ordinal ({aspect})", fit_ordinal, df, "score ~ style + detail + condition",
                       aspect)[1]
    return total, timed(f"reliability ({n_boot} bootstrap resamples)", reliability_table, df,
                        n_boot=n_boot)[1]


def synthetic(study, n_raters: int, n_panels: int, seed: int = 0) -> pd.DataFrame:
    """Every rater rates every panel; a panel is a prompt x condition x image subset."""
    rng = np.random.default_rng(seed)
    prompts = study.prompts()
    conditions = [c.name for c in study.conditions]
    panel = np.arange(n_panels)
    prompt = np.array(prompts, dtype=object)[panel % len(prompts)]
    condition = np.array(conditions, dtype=object)[(panel // len(prompts)) % len(conditions)]
    style_effect = {s.key: e for s, e in zip(study.styles, np.linspace(-1.5, 1.5, len(study.styles)))}
    rows = []
    for aspect in [a.key for a in study.aspects]:
        for rater in range(n_raters):
            bias = rng.normal(0, 0.4)
            latent = np.array([style_effect[p.style] for p in prompt]) + bias + rng.logistic(size=n_panels)
            score = np.clip(np.round(latent + 2), 0, 4).astype(int)
            rows.append(pd.DataFrame({
                "rater": f"rater{rater:03d}", "panel": [f"p{i:05d}" for i in panel],
                "prompt_id": [p.id for p in prompt], "style": [p.style for p in prompt],
                "style_group": [p.style_group for p in prompt], "topic": [p.topic for p in prompt],
                "detail": [p.detail for p in prompt], "condition": condition, "aspect": aspect,
                "score": score, "exclusion": "", "seconds": rng.uniform(5, 30, n_panels),
                "repeat": False, "comment": "", "nonsensical": False}))
    return normalise(pd.concat(rows, ignore_index=True)[TIDY_COLUMNS + ["nonsensical"]], ["nonsensical"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Fewer bootstrap resamples.")
    args = parser.parse_args()
    study = load_study("kather2022")

    if XLSX.is_file():
        print(f"published ratings ({XLSX.name}):")
        df, ingest = timed("import (legacy spreadsheet, nonsensical as 0)", read_legacy_spreadsheet,
                           study, XLSX, "zero")
        stats_s, rel_s = stats_stages(df, 200 if args.quick else 1000)
        print(f"  {'total (' + str(len(df)) + ' ratings)':<44} {ingest + stats_s + rel_s:7.2f} s"
              f"   peak RSS {peak_mb():.0f} MB")
    else:
        print(f"published ratings not found at {XLSX}; skipped")

    n_raters, n_panels = 100, 2176
    print(f"synthetic: {n_raters} raters x {n_panels} panels x 2 aspects:")
    df, make = timed("build the tidy table", synthetic, study, n_raters, n_panels)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.csv"
        _, write = timed("ratings.csv write", write_ratings_csv, df, path)
        df, read = timed("ratings.csv read (as analyze --ratings)", read_ratings_csv, path,
                         ["nonsensical"])
    stats_s, rel_s = stats_stages(df, 100 if args.quick else 200)
    print(f"  {'ingest stand-in + descriptives + tests + ordinal':<44} {make + write + read + stats_s:7.2f} s"
          f"   ({len(df)} ratings)")
    print(f"  {'... + reliability':<44} {make + write + read + stats_s + rel_s:7.2f} s"
          f"   peak RSS {peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
