"""Survey benchmark: build the paper-size survey, then time the page in headless Chromium.

A temporary study with the design of surveys/kather2022 (272 prompts x 8 images,
256 px) but the placeholder generator, and two conditions: 544 panels. Targets: build
< 15 s on 2 cores; in Chromium (Performance API, in the page): the first panel fully
decoded <= 1 s after Start, Next to a fully decoded panel <= 100 ms (the next panel
preloaded), the viewer open with its image decoded <= 100 ms. Also prints the
single-file size, and projections for photo-like images (placeholders compress
differently from real ones).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from glidemed.generate.runner import run_generation
from glidemed.paths import images_dir
from glidemed.study import load_study
from glidemed.survey.build import build_survey

ROOT = Path(__file__).resolve().parent.parent

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a valid TOML basic string


def paper_study(folder: Path) -> Path:
    """kather2022's styles and topics, two placeholder conditions at 256 px."""
    paper = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    lines = [f"id = {q('paperbench')}", f"title = {q(paper.title)}",
             f"instructions = {q(paper.instructions)}", f"seed = {paper.seed}",
             "images_per_prompt = 8", "images_per_panel = 4",
             "[[conditions]]", 'name = "first"', 'generator = "placeholder"', "params = { size = 256 }",
             "[[conditions]]", 'name = "second"', 'generator = "placeholder"', "params = { size = 256 }"]
    for s in paper.styles:
        lines += ["[[styles]]", f"key = {q(s.key)}", f"label = {q(s.label)}",
                  f"template = {q(s.template)}", f"group = {q(s.group)}"]
    for t in paper.topics:
        lines += ["[[topics]]", f"key = {q(t.key)}", f"short = {q(t.short)}",
                  f"detailed = {q(t.detailed)}", f"block = {q(t.block)}"]
    path = folder / "study.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def photo_projection(fmt: str, quality: int, n_images: int, upsampled: bool) -> float | None:
    """Single-file MB if the images were 256 px crops of natural photos.

    Sharp crops are a pessimistic case; crops shrunk to 64 px and enlarged again
    resemble GLIDE's output (a 64 px base image enlarged by its upsampler).
    """
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        return None
    from PIL import Image

    from glidemed.survey.images import Encoding, encode_image
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, array in enumerate(load_sample_images().images):
            image = Image.fromarray(array)
            for x in range(0, image.width - 256, 128):
                for y in range(0, image.height - 256, 128):
                    crop = image.crop((x, y, x + 256, y + 256))
                    if upsampled:
                        crop = crop.resize((64, 64), Image.LANCZOS).resize((256, 256), Image.BICUBIC)
                    path = Path(tmp) / f"{n}-{x}-{y}.png"
                    crop.save(path)
                    sizes.append(len(encode_image(path, Encoding(fmt, quality, 256))))
    return statistics.mean(sizes) * n_images * 4 / 3 / 1e6


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the encoding workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


READY = """() => new Promise(done => { const wait = () =>
    document.querySelector('#grid[aria-busy=false]') ? done() : requestAnimationFrame(wait); wait(); })"""


def browser_figures(index: Path) -> dict:
    """Times measured in the page with performance.now(), each until every image shown
    is decoded."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(index.as_uri() + "?rater=bench")
        page.evaluate("window.benchStart = performance.now()")
        page.get_by_role("button", name="Start").click()
        page.evaluate(READY)
        first = page.evaluate("performance.now() - window.benchStart") / 1000
        latencies = page.evaluate("""async () => {
            const ready = %s, out = [];
            for (let i = 0; i < 50; i++) {
                document.getElementById('rate-0-1').click();
                document.getElementById('rate-1-2').click();
                const t = performance.now();
                document.getElementById('next').click();
                await ready();
                await Promise.all([...document.querySelectorAll('#grid img')].map(im => im.decode()));
                out.push(performance.now() - t);
            }
            return out; }""" % READY)
        viewer = page.evaluate("""async () => {
            const out = [];
            for (let i = 0; i < 20; i++) {
                const t = performance.now();
                document.querySelectorAll('#grid button')[i %% 4].click();
                await document.querySelector('.viewer-img').decode();
                await new Promise(r => requestAnimationFrame(r));
                out.push(performance.now() - t);
                document.getElementById('viewer').close();
            }
            return out; }""".replace("%%", "%"))
        panels = page.evaluate("document.getElementById('progress-text').textContent")
        browser.close()
    return {"first": first, "next_median": statistics.median(latencies), "next_max": max(latencies),
            "viewer_median": statistics.median(viewer), "viewer_max": max(viewer), "panels": panels}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["GLIDEMED_BUILD_DIR"] = str(tmp / "build")
        (tmp / "study").mkdir()
        study = load_study(paper_study(tmp / "study"))
        started = time.perf_counter()
        run_generation(study, images_dir(study), progress=False)
        print(f"generate (placeholder, not a target): {time.perf_counter() - started:.1f} s")
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        report = build_survey(study)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        enc = report.encoding
        print(f"build: {report.panels} panels x 8 = {report.images} images, {enc.format} "
              f"q{enc.quality} {enc.size} px: {seconds:.1f} s on {os.cpu_count()} core(s) "
              f"(target < 15 s); CPU time {cpu:.1f} s; load average {os.getloadavg()[0]:.1f}")
        print(f"single file: {report.size_bytes / 1e6:.1f} MB (placeholder images; limit 20 MB)")
        for fmt, quality in [(enc.format, enc.quality), ("jpeg", 75)]:
            for upsampled, kind in [(False, "sharp photo crops"), (True, "photos enlarged from 64 px")]:
                mb = photo_projection(fmt, quality, report.images, upsampled)
                if mb is not None:
                    print(f"projected single file, {kind}, {fmt} q{quality}: {mb:.1f} MB")
        if Path("/usr/bin/chromium").exists():
            figures = browser_figures(report.survey_dir / "index.html")
            print(f"rater's plan: {figures['panels']}")
            print(f"first panel decoded after Start: {figures['first']:.2f} s (target <= 1 s)")
            print(f"Next to a decoded panel: median {figures['next_median']:.1f} ms, max "
                  f"{figures['next_max']:.1f} ms (target <= 100 ms)")
            print(f"viewer open and decoded: median {figures['viewer_median']:.1f} ms, max "
                  f"{figures['viewer_max']:.1f} ms (target <= 100 ms)")
        else:
            print("chromium not found at /usr/bin/chromium: browser figures skipped")


if __name__ == "__main__":
    main()
