"""Speed of the 'diffusers' generator: runner overhead, batching, batch tolerance, hashing.

    python bench/bench_diffusers.py [--quick] [--threads N] [--no-hash] [--gpu-only]

On CPU, with the tiny random-weight Stable Diffusion pipeline of tests/tiny_pipelines.py:
  1. glidemed's images/s (runner: seeds, PNG, manifest) vs. calling the pipeline directly
     in a loop over the same prompts and batch size (target: ratio >= 0.9);
  2. images/s by batch size 1, 2, 4, 8, and the largest pixel difference between an
     image made in a batch and the same image made alone (the batching tolerance);
  3. seconds to hash a 2 GB weight folder (random bytes in a temporary folder, deleted
     afterwards) the first time and on a cached re-run.
With CUDA: a full-size Stable Diffusion 1.x architecture with random weights (real speed,
meaningless images) in float16 and bfloat16, images/s by batch size at 512 px and 50
steps, and the projected time for the paper's 272 prompts x 8 images.
Figures on a shared machine vary between runs; the best of several repeats is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from glidemed.generate.base import GeneratorContext, chunked  # noqa: E402
from glidemed.generate.manifest import load_manifest  # noqa: E402
from glidemed.generate.runner import plan_jobs, run_generation  # noqa: E402
from glidemed.study import parse_study  # noqa: E402

STUDY = """
id = "bench-diffusers"
title = "bench"
instructions = "bench"
seed = 1
images_per_prompt = {per_prompt}
images_per_panel = 1

[[conditions]]
name = "sd"
generator = "diffusers"
params = {{ model = "{model}", steps = {steps}, guidance_scale = 7.5{extra} }}

[[styles]]
key = "xray"
label = "X-ray"
template = "An x-ray image of {{description}}"

[[styles]]
key = "ct"
label = "CT"
template = "A computed tomography image of {{description}}"

[[topics]]
key = "lungs"
short = "the lungs"
detailed = "the lungs, organs in the chest"
"""
PAPER_IMAGES = 272 * 8


def study_for(folder: Path, model: Path, per_prompt: int, steps: int, extra: str = ""):
    path = folder / "study.toml"
    path.write_text(STUDY.format(model=model, per_prompt=per_prompt, steps=steps, extra=extra))
    return parse_study(path.read_text(), path)


def best_of(repeats: int, fn) -> float:
    return min(_timed(fn) for _ in range(repeats))


def best_wall_and_cpu(repeats: int, fn) -> tuple[float, float]:
    """Fastest wall-clock and fastest CPU time (this process) of ``repeats`` calls."""
    runs = []
    for _ in range(repeats):
        cpu = time.process_time()
        wall = _timed(fn)
        runs.append((wall, time.process_time() - cpu))
    return min(w for w, _ in runs), min(c for _, c in runs)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def direct_loop(pipe, jobs, batch_size: int, steps: int, **kwargs) -> None:
    """The loop a user would write: the pipeline called per batch, one generator per image."""
    import torch

    for batch in chunked(jobs, batch_size):
        pipe(prompt=[j.prompt.text for j in batch], num_inference_steps=steps,
             guidance_scale=7.5, generator=[torch.Generator().manual_seed(j.seed) for j in batch],
             **kwargs)


def runner_bench(work: Path, model: Path, repeats: int, quick: bool) -> None:
    from glidemed.generate.diffusers_pipeline import DiffusersGenerator

    steps = 10
    study = study_for(work, model, per_prompt=2 if quick else 4, steps=steps)
    jobs = plan_jobs(study)
    n = len(jobs)
    print(f"\n1-2. tiny Stable Diffusion (32 px, {steps} steps), {n} images per measurement, "
          f"best of {repeats}")
    print("img/s: wall clock (CPU time of this process); ratio = glidemed / direct; in-call: the")
    print("share of glidemed's run spent inside the pipeline call (the ratio without noise)")
    print("batch | glidemed img/s | direct loop img/s | ratio wall (cpu) | in-call wall (cpu) "
          "| max pixel diff vs batch 1")
    in_call = [0.0, 0.0]
    original = DiffusersGenerator.call_pipeline

    def timed_call(self, kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(self, kwargs)
        finally:
            in_call[0] += time.perf_counter() - wall
            in_call[1] += time.process_time() - cpu

    DiffusersGenerator.call_pipeline = timed_call
    alone = None
    for batch_size in (1, 2, 4, 8):
        context = GeneratorContext(study, batch_size=batch_size)
        pipe = DiffusersGenerator(study.conditions[0], context).pipe  # loaded once, shared
        outs = []

        def through_runner():
            out = work / f"out-{batch_size}-{len(outs)}"
            outs.append(out)
            run_generation(study, out, context=context, progress=False)

        in_call[:] = [0.0, 0.0]
        wall, cpu = time.perf_counter(), time.process_time()
        through_runner()
        share = (in_call[0] / (time.perf_counter() - wall), in_call[1] / (time.process_time() - cpu))
        ours, ours_cpu = best_wall_and_cpu(repeats, through_runner)
        theirs, theirs_cpu = best_wall_and_cpu(
            repeats, lambda: direct_loop(pipe, jobs, batch_size, steps))
        images = {key: _pixels(outs[-1] / rec["file"]) for key, rec in load_manifest(outs[-1]).items()}
        if alone is None:
            alone = images
        diff = max(int(np.abs(images[k] - alone[k]).max()) for k in images)
        print(f"{batch_size:>5} | {n / ours:>6.2f} ({n / ours_cpu:>5.2f}) | "
              f"{n / theirs:>8.2f} ({n / theirs_cpu:>5.2f}) | {theirs / ours:>5.2f} "
              f"({theirs_cpu / ours_cpu:.2f}) | {share[0]:.3f} ({share[1]:.3f}) | {diff}")
    DiffusersGenerator.call_pipeline = original


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image, dtype=int)


def hashing_bench(work: Path, size_gb: float) -> None:
    from glidemed.modelfiles import HashCache, folder_digest

    folder = work / "big-model"
    (folder / "unet").mkdir(parents=True)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    chunk = 64 * 2**20
    n_bytes = int(size_gb * 2**30)
    with open(weights, "wb") as handle:
        for _ in range(n_bytes // chunk):
            handle.write(os.urandom(chunk))
    cache_path = work / "file-hashes.json"

    def digest() -> None:
        cache = HashCache(cache_path)  # read from disk, as each run does
        folder_digest(folder, cache=cache)
        cache.save()

    try:
        first = _timed(digest)
        again = best_of(3, digest)
        print(f"\n3. hashing a {n_bytes / 2**30:.1f} GiB weight folder: first time {first:.2f} s "
              f"({n_bytes / 2**20 / first:.0f} MiB/s), cached re-run {again * 1000:.1f} ms")
    finally:
        weights.unlink()


def full_size_sd(folder: Path) -> Path:
    """Stable Diffusion 1.x architecture (UNet, VAE, CLIP ViT-L/14 text) with random weights."""
    import torch
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from tiny_pipelines import tiny_tokenizer
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2,
                        sample_size=512)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072,
                                        num_attention_heads=12, num_hidden_layers=12,
                                        vocab_size=49408, max_position_embeddings=77,
                                        projection_dim=768, hidden_act="quick_gelu"))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tiny_tokenizer(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def gpu_bench(work: Path, quick: bool) -> None:
    import torch

    if not torch.cuda.is_available():
        print("\n4. GPU: CUDA not available here; run this script on a GPU machine for the "
              "full-size Stable Diffusion figures")
        return
    model = full_size_sd(work / "sd-full")
    steps = 50
    print(f"\n4. full-size Stable Diffusion 1.x architecture, random weights, 512 px, {steps} "
          f"steps, on {torch.cuda.get_device_name()}")
    print("dtype | batch | img/s | projected 272 prompts x 8 images")
    for dtype in ("float16", "bfloat16"):
        for batch_size in (1, 2, 4, 8) if not quick else (8,):
            study = study_for(work, model, per_prompt=batch_size, steps=steps,
                              extra=f', dtype = "{dtype}"')
            context = GeneratorContext(study, device="cuda", batch_size=batch_size)
            only = [study.prompts()[0].id]
            run_generation(study, work / f"warm-{dtype}-{batch_size}", only=only,
                           context=context, progress=False)  # load and warm up
            out = work / f"gpu-{dtype}-{batch_size}"
            seconds = _timed(lambda: run_generation(study, out, context=context, progress=False))
            n = len(load_manifest(out))
            rate = n / seconds
            print(f"{dtype:>8} | {batch_size:>5} | {rate:>5.2f} | "
                  f"{PAPER_IMAGES / rate / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a busy 2-core machine more crawl)")
    parser.add_argument("--no-hash", action="store_true", help="skip the 2 GB hashing figure")
    parser.add_argument("--hash-gb", type=float, default=2.0)
    parser.add_argument("--gpu-only", action="store_true")
    args = parser.parse_args()
    import diffusers
    import torch
    import tiny_pipelines

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"{torch.get_num_threads()} CPU thread(s), {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-diffusers-") as tmp:
        work = Path(tmp)
        if not args.gpu_only:
            model = tiny_pipelines.save_tiny_sd(work / "tiny-sd")
            runner_bench(work, model, repeats=2 if args.quick else 3, quick=args.quick)
            if not args.no_hash:
                hashing_bench(work, args.hash_gb)
        gpu_bench(work, args.quick)


if __name__ == "__main__":
    main()
