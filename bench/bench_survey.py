"""Survey benchmark: build the paper-size survey, then time the page in headless Chromium.

A temporary study with the design of surveys/kather2022 (272 prompts x 8 images,
256 px, two conditions: 544 panels) whose images are like GLIDE's: crops of natural
photographs shrunk to 64 px and enlarged again to 256 px (GLIDE's base model draws
64 px, its upsampler enlarges), imported with the folder generator. Targets: build
< 15 s on 2 cores; the single file under 20 MB; in Chromium (Performance API, in the
page): the first panel fully decoded <= 1 s after Start, Next to a fully decoded panel
<= 100 ms (the next panel preloaded), the viewer open with its image decoded <= 100 ms.
Also prints a projection for sharp photographs, a pessimistic case.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from glidemed.generate.runner import run_generation
from glidemed.paths import images_dir
from glidemed.study import load_study
from glidemed.survey.build import build_survey

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = ("first", "second")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a valid TOML basic string


def paper_study(folder: Path) -> Path:
    """kather2022's styles and topics, two conditions of GLIDE-like images at 256 px."""
    paper = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    lines = [f"id = {q('paperbench')}", f"title = {q(paper.title)}",
             f"instructions = {q(paper.instructions)}", f"seed = {paper.seed}",
             "images_per_prompt = 8", "images_per_panel = 4"]
    for name in CONDITIONS:
        lines += ["[[conditions]]", f"name = {q(name)}", 'generator = "folder"',
                  'params = { folder = "images" }']
    for s in paper.styles:
        lines += ["[[styles]]", f"key = {q(s.key)}", f"label = {q(s.label)}",
                  f"template = {q(s.template)}", f"group = {q(s.group)}"]
    for t in paper.topics:
        lines += ["[[topics]]", f"key = {q(t.key)}", f"short = {q(t.short)}",
                  f"detailed = {q(t.detailed)}", f"block = {q(t.block)}"]
    path = folder / "study.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    glide_like_images(folder / "images", [p.id for p in load_study(path).prompts()], 8)
    return path


def photo_crops(rng: random.Random, count: int, upsampled: bool):
    """``count`` 256 px crops of scikit-learn's two sample photographs at random places,
    flipped and turned at random; ``upsampled``: shrunk to 64 px and enlarged again."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    for _ in range(count):
        photo = rng.choice(photos)
        x, y = rng.randrange(photo.width - 256), rng.randrange(photo.height - 256)
        crop = photo.crop((x, y, x + 256, y + 256)).rotate(90 * rng.randrange(4))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if upsampled:
            crop = crop.resize((64, 64), Image.LANCZOS).resize((256, 256), Image.BICUBIC)
        yield crop


def glide_like_images(folder: Path, prompt_ids: list[str], per_prompt: int) -> None:
    """The folder generator's images and mapping: every prompt, condition and index."""
    folder.mkdir(parents=True)
    rows, rng = ["file,prompt_id,condition,index"], random.Random(0)
    jobs = [(p, c, i) for c in CONDITIONS for p in prompt_ids for i in range(per_prompt)]
    for (prompt_id, condition, index), image in zip(jobs, photo_crops(rng, len(jobs), True)):
        name = f"{condition}-{len(rows)}.png"
        image.save(folder / name, compress_level=1)
        rows.append(f"{name},{prompt_id},{condition},{index}")
    (folder / "images.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def sharp_projection(encoding, n_images: int) -> float:
    """Single-file MB if the images were sharp 256 px photographs (a pessimistic case)."""
    from glidemed.survey.images import encode_image

    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, crop in enumerate(photo_crops(random.Random(1), 64, False)):
            path = Path(tmp) / f"{n}.png"
            crop.save(path)
            sizes.append(len(encode_image(path, encoding)))
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
        print(f"import of {study.images_per_prompt * len(study.prompts()) * 2} GLIDE-like images "
              f"(folder generator, not a target): {time.perf_counter() - started:.1f} s")
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        report = build_survey(study)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        enc = report.encoding
        print(f"build: {report.panels} panels x 8 = {report.images} images, {enc.format} "
              f"q{enc.quality} {enc.size} px: {seconds:.1f} s on {os.cpu_count()} core(s) "
              f"(target < 15 s); CPU time {cpu:.1f} s; load average {os.getloadavg()[0]:.1f}")
        for warning in report.warnings:
            print(f"  build said: {warning}")
        print(f"single file, GLIDE-like images: {report.size_bytes / 1e6:.1f} MB (limit 20 MB)")
        print(f"projected single file, sharp photographs, {enc.format} q{enc.quality}: "
              f"{sharp_projection(enc, report.images):.1f} MB")
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
