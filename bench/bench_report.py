"""Benchmarks of `glidemed analyze`; prints its figures.

1. The full report on the paper's published ratings (1,632 ratings; 1,000 bootstrap
   resamples, mixed and fixed models, figures, report): target under 15 s; then the
   report in headless Chromium (load time, length, where the key results end, A4 pages).
2. Ingest of 100 raters x 2,176 panels of simulated response files, then descriptives,
   nonparametric tests and the ordinal model: target under 60 s and 2 GB (peak RSS of a
   fresh process doing only this).

Run from the project root: python bench/bench_report.py [--raters N]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XLSX = ROOT.parent / "shared" / "kather2022" / "observer_study_glide_v1_merge.xlsx"
PANELS_PER_PROMPT_CONDITION = 4  # 272 prompts x 2 conditions x 4 = 2,176 panels


def bench_published(n_boot: int) -> None:
    from glidemed.analysis.pipeline import run_analysis
    from glidemed.study import load_study

    if not XLSX.is_file():
        print(f"published report: skipped ({XLSX} not found)")
        return
    study = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_analysis(study, ratings=XLSX, out_dir=Path(tmp) / "analysis",
                               nonsensical="zero", n_boot=n_boot)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"published report: {summary['counts']['ratings']} ratings, {n_boot} bootstrap "
              f"resamples, {len(summary['models'])} models: {seconds:.1f} s wall, {cpu:.1f} s CPU "
              f"(target < 15 s)")
        report_page(Path(tmp) / "analysis" / "report.html")


def report_page(report: Path) -> None:
    """The report in headless Chromium: its size, the time until it is loaded with every
    figure decoded (Performance API), its length in screens at 1280 x 800, where the key
    results end, and its A4 page count when printed."""
    print(f"report.html: {report.stat().st_size / 1e6:.2f} MB")
    if not Path("/usr/bin/chromium").exists():
        print("chromium not found at /usr/bin/chromium: the page's figures skipped")
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        times = []
        for _ in range(5):
            page.goto(report.as_uri())
            times.append(page.evaluate("""async () => {
                await Promise.all([...document.images].map(i => i.decode()));
                return performance.now(); }"""))
        height = page.evaluate("document.documentElement.scrollHeight")
        key_end = page.evaluate("document.getElementById('key-results').getBoundingClientRect().bottom")
        pdf = page.pdf(format="A4", print_background=True)
        browser.close()
    times.sort()
    print(f"loaded with every figure decoded: median {times[2]:.0f} ms, max {times[-1]:.0f} ms")
    print(f"length at 1280x800: {height} px = {height / 800:.1f} screens; key results end at "
          f"{key_end:.0f} px (first screen: 800)")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    print(f"printed on A4: {pages} pages")


def synthetic_key(study) -> dict:
    """A key of 2,176 panels (each prompt x condition shown as 4 panels of 4 images)."""
    panels = {}
    for prompt in study.prompts():
        for condition in study.conditions:
            for k in range(PANELS_PER_PROMPT_CONDITION):
                token = hashlib.sha256(f"{prompt.id}/{condition.name}/{k}".encode()).hexdigest()[:16]
                panels[token] = {"prompt_id": prompt.id, "condition": condition.name,
                                 "control": False,
                                 "images": {f"{token}-{i}": f"{condition.name}/{prompt.id}/{i}.png"
                                            for i in range(4)}}
    return {"schema": "glidemed-key/1", "study_id": study.id,
            "build_hash": hashlib.sha256(b"bench").hexdigest(), "created": "2026-01-01T00:00:00Z",
            "study_sha256": "0" * 64, "conditions": [c.name for c in study.conditions],
            "panels": panels, "left_out": []}


def measure_ingest(folder: Path) -> None:
    """In a fresh process: ingest, descriptives, tests, ordinal model; time and peak memory."""
    from glidemed.analysis.descriptives import describe_ratings, prompt_medians
    from glidemed.analysis.ingest import ingest_responses
    from glidemed.analysis.nonparametric import run_tests
    from glidemed.analysis.ordinal import fit_ordinal
    from glidemed.study import load_study

    study = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    key = synthetic_key(study)
    times = {}
    started, cpu = time.perf_counter(), time.process_time()
    ratings, ledger, profiles = ingest_responses(study, key, [folder])
    times["ingest"] = time.perf_counter() - started
    mark = time.perf_counter()
    describe_ratings(ratings, profiles)
    prompt_medians(ratings)
    times["descriptives"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for unit in ("prompt_median", "rating"):
        run_tests(ratings, unit)
    times["tests"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for aspect in ("style", "content"):
        fit_ordinal(ratings, "score ~ style + detail + condition", aspect)
    times["ordinal"] = time.perf_counter() - mark
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(f"ingest {len(ledger)} files, {len(ratings)} ratings: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
          + f"; total {total:.1f} s wall, {cpu:.1f} s CPU (target < 60 s), "
          f"peak memory {peak:.0f} MiB (target < 2048)")


def bench_ingest(n_raters: int) -> None:
    from glidemed.simulate import simulate_responses
    from glidemed.study import load_study

    study = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths = simulate_responses(study, synthetic_key(study), n_raters, Path(tmp), seed=1)
        size = sum(p.stat().st_size for p in paths)
        print(f"(setup: {len(paths)} response files, {size / 1e6:.0f} MB, simulated in "
              f"{time.perf_counter() - started:.1f} s)")
        subprocess.run([sys.executable, __file__, "--measure", tmp], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=100)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure_ingest(args.measure)
        return
    bench_published(args.bootstrap)
    bench_ingest(args.raters)


if __name__ == "__main__":
    main()
