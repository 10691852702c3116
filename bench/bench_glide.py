"""Benchmark of the 'glide' generator; prints its figures.

CPU part (always): tiny random-weight models (tests/glide_tiny/), N images rendered in one
batch versus one image per forward pass, for both guidance modes at 64 px and for the
base + upsampler pipeline at 256 px; also the largest pixel difference between an image
rendered in the batch and alone (the batching tolerance).

GPU part (when CUDA is present): the released models at the paper's settings (base
respacing 100, upsampler fast27, fp16), images/s of base + upsampler per batch size and
the speed-up over the notebook recipe (one prompt at a time: its 8 images per batch),
with the projected time of the full paper study (272 prompts x 8 images x 2 conditions).
It needs the checkpoints in the checkpoint folder (`glidemed checkpoints --download`).

    python bench/bench_glide.py [--images 8] [--repeats 3] [--gpu-batches 8,16,32,64]
                                [--gpu-prompts 8] [--checkpoint-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from glidemed.generate.base import GeneratorContext
from glidemed.generate.glide import GlideGenerator
from glidemed.study import Condition, load_study

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "glide_tiny"
TEXTS = ["A histopathological image of the lungs", "An x-ray image of breast cancer",
         "A computed tomography image of malaria", "A microscopic image of a lymphoma"]
PAPER_IMAGES = 272 * 8 * 2


def _timed(generator: GlideGenerator, texts: list[str], seeds: list[int], batch: int):
    images = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        images += generator.sample(texts[start:start + batch], seeds[start:start + batch])
    if generator.device.type == "cuda":
        generator.torch.cuda.synchronize()
    return time.perf_counter() - started, [np.asarray(i, dtype=int) for i in images]


def cpu_part(n_images: int, repeats: int) -> None:
    spec = importlib.util.spec_from_file_location("glide_tiny", TINY / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    study = load_study(TINY / "study.toml")
    import torch

    print(f"CPU part: {platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); tiny random-weight models")
    print(f"{'case':<34} {'batched img/s':>14} {'one-by-one img/s':>17} {'speed-up':>9} "
          f"{'max |diff|':>10}")
    with tempfile.TemporaryDirectory() as folder:
        context = GeneratorContext(study, device="cpu",
                                   checkpoint_dir=tiny.write_checkpoints(Path(folder)))
        cases = [("classifier-free, 64 px, 4 steps", "cfg", {}, n_images),
                 ("CLIP, 64 px, 4 steps", "clip", {}, n_images),
                 ("classifier-free, 256 px, 4+4 steps", "cfg", {"size": 256}, max(2, n_images // 2))]
        for label, name, extra, count in cases:
            cond = next(c for c in study.conditions if c.name == name)
            gen = GlideGenerator(dataclasses.replace(cond, params={**cond.params, **extra}),
                                 context)
            texts = [TEXTS[i % len(TEXTS)] for i in range(count)]
            seeds = list(range(100, 100 + count))
            gen.sample(texts[:1], seeds[:1])  # warm-up, both batch shapes
            gen.sample(texts, seeds)
            # Best of `repeats` runs, each order alternated, to damp noise from other jobs.
            batched = single = float("inf")
            for _ in range(repeats):
                seconds, a = _timed(gen, texts, seeds, count)
                batched = min(batched, seconds)
                seconds, b = _timed(gen, texts, seeds, 1)
                single = min(single, seconds)
            diff = max(int(np.abs(x - y).max()) for x, y in zip(a, b))
            print(f"{label:<34} {count / batched:>14.2f} {count / single:>17.2f} "
                  f"{single / batched:>8.2f}x {diff:>10d}")


def gpu_part(batches: list[int], n_prompts: int, checkpoint_dir: Path | None) -> None:
    import torch

    print(f"\nGPU part: {torch.cuda.get_device_name()}; released checkpoints, paper settings "
          "(base '100', upsampler 'fast27', fp16, 256 px)")
    study = load_study("kather2022")
    texts = [p.text for p in study.prompts()[:n_prompts] for _ in range(8)]
    seeds = list(range(len(texts)))
    context = GeneratorContext(study, device="cuda", checkpoint_dir=checkpoint_dir)
    for mode in ("classifier-free", "clip"):
        gen = GlideGenerator(Condition("bench", "glide", {"guidance": mode}), context)
        gen.sample(texts[:2], seeds[:2])  # warm-up
        notebook, _ = _timed(gen, texts, seeds, 8)  # one prompt (8 images) per batch
        print(f"{mode}: notebook recipe (one prompt, 8 images per batch): "
              f"{len(texts) / notebook:.2f} img/s")
        for batch in batches:
            try:
                seconds, _ = _timed(gen, texts, seeds, batch)
            except torch.cuda.OutOfMemoryError:
                print(f"  batch {batch}: out of memory")
                torch.cuda.empty_cache()
                continue
            rate = len(texts) / seconds
            print(f"  batch {batch:>3}: {rate:6.2f} img/s, speed-up {notebook / seconds:4.2f}x, "
                  f"full paper study ({PAPER_IMAGES} images, both modes at this rate) "
                  f"{PAPER_IMAGES / rate / 60:6.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8, help="images per CPU case")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many CPU runs")
    parser.add_argument("--gpu-batches", default="8,16,32,64")
    parser.add_argument("--gpu-prompts", type=int, default=8)
    parser.add_argument("--checkpoint-dir", type=Path)
    args = parser.parse_args()
    try:
        import glide_text2im  # noqa: F401
        import torch
    except ImportError:
        print("bench_glide: skipped, the glide extra is not installed (pip install -e '.[glide]')")
        return
    cpu_part(args.images, args.repeats)

    if torch.cuda.is_available():
        gpu_part([int(b) for b in args.gpu_batches.split(",")], args.gpu_prompts,
                 args.checkpoint_dir)
    else:
        print("\nGPU part: skipped (no CUDA device)")


if __name__ == "__main__":
    main()
