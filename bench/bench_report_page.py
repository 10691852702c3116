"""Report page benchmark: the published kather2022 ratings analysed as `make reproduce` does
(1000 bootstrap resamples), then the report opened in headless Chromium.

Prints the analysis time, the report's size, the time until the page is loaded with
every figure decoded (Performance API), its length in screens at 1280 x 800, where the
key results end, and its A4 page count when printed.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import require_kather_xlsx  # noqa: E402

from glidemed.analysis.pipeline import run_analysis  # noqa: E402
from glidemed.study import load_study  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "analysis"
        started = time.perf_counter()
        run_analysis(load_study("kather2022"), ratings=require_kather_xlsx(), out_dir=out,
                     nonsensical="paper", n_boot=1000)
        print(f"analysis of the published ratings (1000 resamples): "
              f"{time.perf_counter() - started:.1f} s on {os.cpu_count()} core(s)")
        report = out / "report.html"
        print(f"report.html: {report.stat().st_size / 1e6:.2f} MB")
        if not Path("/usr/bin/chromium").exists():
            print("chromium not found at /usr/bin/chromium: browser figures skipped")
            return
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
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
            pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
            browser.close()
        times.sort()
        print(f"loaded with every figure decoded: median {times[2]:.0f} ms, max {times[-1]:.0f} ms")
        print(f"length at 1280x800: {height} px = {height / 800:.1f} screens; key results end "
              f"at {key_end:.0f} px (first screen: 800)")
        print(f"printed on A4: {pages} pages")


if __name__ == "__main__":
    main()
