"""Benchmark of automated scoring and of the agreement analysis; prints its figures.

    python bench/bench_scores.py [--quick] [--vit-b16] [--threads N]

1. `glidemed score` of the paper's study size (272 prompts x 8 images = 2,176 placeholder
   images of 256 px) with a tiny random-weight open_clip model on this machine's CPU threads
   (target < 60 s on 2 cores), then the same run again (everything cached: the resume path).
2. With --vit-b16: the same with a ViT-B/16-sized random-weight open_clip model, on the GPU when
   one is available (images/s); on a CPU-only machine this is reported as not measured.
3. The agreement analysis on the published study's ratings (1,632 ratings, 3 raters,
   272 prompts) with four synthetic per-image scores: correlations with 1,000 crossed
   bootstrap resamples, and the ordinal mixed models (target < 10 s).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
XLSX = ROOT.parent / "shared" / "kather2022" / "observer_study_glide_v1_merge.xlsx"
PLACEHOLDER = """
[[conditions]]
name = "placeholder"
generator = "placeholder"
params = { size = 256 }
"""


def paper_sized_study(folder: Path):
    """surveys/kather2022 with one placeholder condition: 2,176 images."""
    from glidemed.study import load_study

    text = (ROOT / "surveys" / "kather2022" / "study.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^# [^\n]*\n\[\[conditions\]\].*?(?=^\[\[styles\]\])", "", text)
    text = re.sub(r"(?ms)^\[\[conditions\]\].*?(?=^\[\[styles\]\])", "", text)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.toml").write_text(text + PLACEHOLDER, encoding="utf-8")
    return load_study(folder / "study.toml")


def bench_scoring(tmp: Path, quick: bool, vit_b16: bool) -> None:
    import torch

    from glidemed.generate.runner import run_generation
    from glidemed.paths import images_dir
    from glidemed.scores.run import run_scoring
    from tiny_clip import save_tiny_open_clip

    os.environ["GLIDEMED_BUILD_DIR"] = str(tmp / "build")
    study = paper_sized_study(tmp / "study")
    if quick:
        study = study.__class__(**{**study.__dict__, "images_per_prompt": 1, "images_per_panel": 1})
    started = time.perf_counter()
    run_generation(study, images_dir(study), progress=False)
    n = len(study.prompts()) * study.images_per_prompt
    print(f"(setup: {n} placeholder images in {time.perf_counter() - started:.1f} s)")
    tiny = save_tiny_open_clip(tmp / "tiny")
    threads = torch.get_num_threads()
    for label, out in (("first run", tmp / "scores"), ("again, all cached", tmp / "scores")):
        started = time.perf_counter()
        report = run_scoring(study, [f"tiny=local-dir:{tiny}"], out_dir=out, device="cpu",
                             batch_size=64, progress=False)
        seconds = time.perf_counter() - started
        print(f"score, tiny open_clip, CPU ({threads} threads), {label}: {report.images} images, "
              f"{report.rows} scores in {seconds:.1f} s ({report.images / seconds:.0f} images/s, "
              f"{report.embedded} embedded)")
    if vit_b16:
        if not torch.cuda.is_available():
            print("score, ViT-B/16-sized random-weight open_clip: no GPU here, not measured")
            return
        folder = save_vit_b16(tmp / "vitb16")
        for label in ("first run", "again, all cached"):
            started = time.perf_counter()
            report = run_scoring(study, [f"vitb16=local-dir:{folder}"], out_dir=tmp / "gpu",
                                 device="cuda", batch_size=128, progress=False)
            seconds = time.perf_counter() - started
            print(f"score, ViT-B/16 random weights, {torch.cuda.get_device_name()}, {label}: "
                  f"{report.images / seconds:.0f} images/s ({seconds:.1f} s)")


def save_vit_b16(folder: Path) -> Path:
    """open_clip's ViT-B-16 architecture, random weights, saved as open_clip saves models."""
    import importlib

    import open_clip
    import safetensors.torch

    hub = importlib.import_module("open_clip.push_to_hf_hub")
    folder.mkdir(parents=True, exist_ok=True)
    model = open_clip.create_model("ViT-B-16", pretrained=None)
    config = open_clip.get_model_config("ViT-B-16")
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                folder / hub.HF_SAFE_WEIGHTS_NAME)
    hub.save_config_for_hf(model, folder / hub.HF_CONFIG_NAME, model_config=config)
    return folder


def bench_agreement(n_boot: int) -> None:
    import pandas as pd

    from glidemed.analysis.agreement import correlation_table, model_table, recommendation_table
    from glidemed.analysis.legacy import read_legacy_spreadsheet
    from glidemed.analysis.tidy import usable_first_ratings
    from glidemed.study import load_study

    if not XLSX.is_file():
        print(f"agreement: the published ratings are not at {XLSX}; not measured")
        return
    study = load_study(ROOT / "surveys" / "kather2022" / "study.toml")
    ratings = read_legacy_spreadsheet(study, XLSX, "exclude")
    data = usable_first_ratings(ratings).copy()
    data["score"] = data["score"].astype(float)
    rng = np.random.default_rng(0)
    # four scores: one driven by the ratings, three partly or not at all
    signal = data["score"].to_numpy() + rng.normal(0, 1.5, len(data))
    metrics = {"clipscore:m": signal, "style_zeroshot:m": 0.3 * signal + rng.normal(0, 1, len(data)),
               "style_zeroshot_top1:m": (rng.random(len(data)) < 0.5).astype(float),
               "retrieval:m": rng.integers(1, 40, len(data)).astype(float)}
    for name, values in metrics.items():
        data[name] = values
    print(f"agreement: {len(ratings)} ratings ({len(data)} usable), {data['rater'].nunique()} raters, "
          f"{data['prompt_id'].nunique()} prompts, {len(metrics)} scores")
    started = time.perf_counter()
    table = correlation_table(data, list(metrics), n_boot=n_boot, seed=0)
    recommendation_table(table)
    correlations = time.perf_counter() - started
    started = time.perf_counter()
    models, _ = model_table(data, list(metrics))
    modelling = time.perf_counter() - started
    print(f"agreement, correlations with {n_boot} crossed bootstrap resamples: {len(table)} rows "
          f"in {correlations:.2f} s; ordinal mixed models: {len(models)} fits in {modelling:.2f} s; "
          f"total {correlations + modelling:.2f} s (target < 10 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="272 images and 200 resamples")
    parser.add_argument("--vit-b16", action="store_true", help="also a ViT-B/16-sized CLIP (GPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads [torch's default]")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} "
          "(shared machines give noisy figures)")
    bench_agreement(200 if args.quick else 1000)
    with tempfile.TemporaryDirectory() as tmp:
        bench_scoring(Path(tmp), args.quick, args.vit_b16)


if __name__ == "__main__":
    main()
