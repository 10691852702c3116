"""Benchmark of x̂₀ CLIP guidance (clip_guidance): its cost relative to no guidance.

For each generator (tiny GLIDE where glide-text2im is installed, a tiny Stable Diffusion
pipeline always), seconds per image without guidance and with guidance by ``every``
(1, 2, 5) and ``cutouts`` (8, 16, 32), and the ratio to no guidance, through the real
generators (the same code path as ``glidemed generate``).

Default: tiny random-weight models on CPU (the tiny CLIP is an open_clip model with 64 px
input). ``--full`` builds full-size random-weight architectures instead (GLIDE's base
model, a Stable Diffusion 1.x UNet + VAE + text encoder at 512 px, an open_clip ViT-B-16
CLIP at 224 px): real speed, meaningless images; meant for a CUDA machine.

    python bench/bench_guidance.py [--steps 10] [--images 2] [--repeats 2]
                                   [--every 1,2,5] [--cutouts 8,16,32]
                                   [--full] [--device cuda] [--only glide|diffusers]
                                   [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tiny model factories of the test suite
sys.path.insert(0, str(ROOT / "bench"))

from guidance_factory import study_toml  # noqa: E402

from glidemed.generate.base import GeneratorContext  # noqa: E402
from glidemed.generate.registry import generator_class  # noqa: E402
from glidemed.study import load_study, parse_study  # noqa: E402

TEXTS = ["A histopathological image of the lungs", "An x-ray image of breast cancer",
         "A computed tomography image of malaria", "A microscopic image of a lymphoma"]

CONDITION = """
[[conditions]]
name = "sd"
generator = "diffusers"
params = {{ model = "{model}", scheduler = "DDIMScheduler", steps = {steps}, guidance_scale = 7.5 {size} }}
"""


def seconds_per_image(generator, n_images: int, repeats: int) -> float:
    """Best of ``repeats``: seconds per image of one batch of ``n_images``. On CPU the
    process's CPU time (other jobs on a shared machine barely change it), on CUDA wall time."""
    texts = (TEXTS * n_images)[:n_images]
    seeds = list(range(n_images))
    torch = generator.torch
    cuda = generator.device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        generator.sample(texts, seeds)
        if cuda:
            torch.cuda.synchronize()
        best = min(best, clock() - started)
    return best / n_images


def grid(name: str, make, table: dict, args) -> None:
    """Print the cost table of one generator: ``make(clip_guidance or None)`` builds it."""
    plain = seconds_per_image(make(None), args.images, args.repeats)
    clock = "wall" if args.device.startswith("cuda") else "CPU"
    print(f"\n{name}: {args.steps} steps, {args.images} images per batch, best of "
          f"{args.repeats}, {clock} time; without guidance {plain:.3f} s/image")
    print("| every | cutouts | s/image | x no guidance |")
    print("|---|---|---|---|")
    for every in args.every:
        for cutouts in args.cutouts:
            seconds = seconds_per_image(make({**table, "every": every, "cutouts": cutouts}),
                                        args.images, args.repeats)
            print(f"| {every} | {cutouts} | {seconds:.3f} | {seconds / plain:.2f}x |", flush=True)


def save_clip(folder: Path, full: bool) -> str:
    if full:
        import importlib

        import open_clip
        import safetensors.torch

        hub = importlib.import_module("open_clip.push_to_hf_hub")
        model = open_clip.create_model("ViT-B-16")  # random weights, built locally
        folder.mkdir(parents=True, exist_ok=True)
        config = open_clip.get_model_config("ViT-B-16")
        model.visual.image_mean = open_clip.OPENAI_DATASET_MEAN
        model.visual.image_std = open_clip.OPENAI_DATASET_STD
        safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                    folder / hub.HF_SAFE_WEIGHTS_NAME)
        hub.save_config_for_hf(model, folder / hub.HF_CONFIG_NAME, model_config=config)
    else:
        import tiny_clip

        tiny_clip.save_tiny_open_clip(folder, image_size=64)
    return f"local-dir:{folder}"


def glide_part(tmp: Path, clip: str, args) -> None:
    if importlib.util.find_spec("glide_text2im") is None:
        print("\nGLIDE: skipped (glide-text2im is not installed)")
        return
    tiny_dir = ROOT / "tests" / "glide_tiny"
    study = load_study(tiny_dir / "study.toml")
    cond = study.condition("cfg")
    params = {**cond.params, "base_respacing": str(args.steps), "size": 64,
              "batch_size": args.images}
    if args.full:
        import torch
        from glide_text2im.model_creation import create_model_and_diffusion, model_and_diffusion_defaults

        params.pop("base_options")
        options = model_and_diffusion_defaults()
        options["use_fp16"] = False
        model, _ = create_model_and_diffusion(**options)
        torch.save(model.state_dict(), tmp / "base.pt")
        del model
    else:
        spec = importlib.util.spec_from_file_location("glide_tiny", tiny_dir / "tiny.py")
        tiny = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tiny)
        tiny.write_checkpoints(tmp)
    context = GeneratorContext(study=study, checkpoint_dir=tmp, device=args.device)
    cls = generator_class("glide")

    def make(table):
        extra = {} if table is None else {"clip_guidance": table}
        return cls(dataclasses.replace(cond, params={**params, **extra}), context)

    label = "GLIDE base, full size" if args.full else "GLIDE base, tiny"
    grid(f"{label}, classifier-free, 64 px", make, {"clip": clip}, args)


def diffusers_part(tmp: Path, clip: str, args) -> None:
    import tiny_pipelines

    if args.full:
        from bench_diffusers import full_size_sd  # the diffusers benchmark's SD 1.x architecture

        folder = full_size_sd(tmp / "sd")
    else:
        folder = tiny_pipelines.save_tiny_sd(tmp / "sd")
    size = ", width = 512, height = 512" if args.full else ""
    study_path = tmp / "study.toml"
    study_path.write_text(study_toml(CONDITION.format(model=folder, steps=args.steps, size=size)),
                          encoding="utf-8")
    study = parse_study(study_path.read_text(encoding="utf-8"), study_path)
    cond = study.condition("sd")
    context = GeneratorContext(study=study, device=args.device, batch_size=args.images)
    cls = generator_class("diffusers")

    def make(table):
        extra = {} if table is None else {"clip_guidance": table}
        return cls(dataclasses.replace(cond, params={**cond.params, **extra}), context)

    label = "Stable Diffusion 1.x-sized, 512 px" if args.full else "tiny Stable Diffusion, 32 px"
    grid(f"{label}, DDIM, classifier-free 7.5", make, {"clip": clip}, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--every", default="1,2,5")
    parser.add_argument("--cutouts", default="8,16,32")
    parser.add_argument("--full", action="store_true", help="full-size random-weight models")
    parser.add_argument("--device", default=None, help="cpu, cuda [cuda when available]")
    parser.add_argument("--only", choices=("glide", "diffusers"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (more threads thrash on a busy machine)")
    args = parser.parse_args()
    args.every = [int(v) for v in args.every.split(",")]
    args.cutouts = [int(v) for v in args.cutouts.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.device = device
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""))
    if args.full and not device.startswith("cuda"):
        print("note: --full on a CPU is slow; its figures are meant for a GPU")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = save_clip(tmp / "clip", args.full)
        print("guidance CLIP: " + ("open_clip ViT-B-16 (random weights), 224 px" if args.full
                                   else "tiny open_clip (random weights), 64 px"))
        if args.only in (None, "glide"):
            glide_part(tmp / "glide", clip, args)
        if args.only in (None, "diffusers"):
            diffusers_part(tmp, clip, args)


if __name__ == "__main__":
    main()
