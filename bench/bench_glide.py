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
    tiny = _tiny_module()
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


PAPER_STEPS = {"base": 100, "upsample": 27}  # base respacing '100', upsampler 'fast27'
# Dense (no sparsity) datasheet peaks in TFLOP/s by device name: fp32 (no TF32), fp16 = bf16.
DATASHEET_TFLOPS = {"H200": (66.9, 989.4), "H100 SXM": (66.9, 989.4), "H100 PCIe": (51.2, 756.5),
                    "H100 NVL": (60.0, 835.0), "A100": (19.5, 312.0), "L40S": (91.6, 362.1),
                    "L4": (30.3, 121.0), "A10": (31.2, 125.0)}
FULL_STUDY = """id = "glide-full-size"
title = "Full-size GLIDE benchmark"
instructions = "None."
[[conditions]]
name = "bench"
generator = "glide"
params = {{ base_respacing = "{steps}", upsample_respacing = "{up_steps}" }}
[[styles]]
key = "xray"
label = "X-ray"
template = "An x-ray image of {{description}}"
[[topics]]
key = "lungs"
short = "the lungs"
detailed = "the lungs"
"""


@dataclasses.dataclass
class Run:
    """One timed configuration of the full-size pipeline."""

    mode: str
    precision: str
    batch: int
    attention: str = "sdpa"
    compile: bool = False
    compile_mode: str = "default"
    same_prompt: bool = False  # the notebook recipe: one prompt's images per batch
    label: str = ""


def _sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StageClock:
    """Wraps a generator's base and upsampler stages: seconds and FLOPs per stage."""

    def __init__(self, gen, torch):
        self.torch, self.seconds, self.flops, self.counting = torch, {}, {}, False
        for stage, name in (("base", "_sample_base"), ("upsample", "_upsample")):
            setattr(gen, name, self._wrap(stage, getattr(gen, name)))

    def _wrap(self, stage: str, method):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        def timed(*args, **kwargs):
            if self.counting:  # the math kernel, so the counter sees attention's matmuls
                with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
                    out = method(*args, **kwargs)
                self.flops[stage] = self.flops.get(stage, 0) + counter.get_total_flops()
                return out
            _sync(self.torch)
            started = time.perf_counter()
            out = method(*args, **kwargs)
            _sync(self.torch)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
            return out

        return timed


def matmul_tflops(torch, device, dtype) -> float:
    """Attained dense matmul rate (TFLOP/s) in ``dtype``: the practical peak of the device."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn((n, n), device=device).to(dtype) for _ in range(2))
    best = float("inf")
    for _ in range(5):
        _sync(torch)
        started = time.perf_counter()
        for _ in range(4 if device.type == "cuda" else 1):
            a @ b
        _sync(torch)
        best = min(best, (time.perf_counter() - started) / (4 if device.type == "cuda" else 1))
    return 2 * n ** 3 / best / 1e12


def datasheet_tflops(torch, device, precision: str, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (fp32, half) in DATASHEET_TFLOPS.items():
        if key in name:
            return fp32 if precision == "fp32" else half
    return None


def full_size_part(args) -> None:
    """The released architectures with random weights through the 'glide' generator."""
    import torch

    from glidemed.generate import glide, glide_speed

    tiny = _tiny_module()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="glide-full-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.steps is not None and args.steps < 2:
        raise SystemExit("bench_glide: --steps: expected at least 2 (glide-text2im's sampler "
                         "needs two)")
    up_steps = "fast27" if args.steps is None else str(args.steps)
    steps = {"base": args.steps or PAPER_STEPS["base"], "upsample": args.steps or 27}
    (work / "study.toml").write_text(FULL_STUDY.format(steps=steps["base"], up_steps=up_steps))
    study = load_study(work / "study.toml")
    started = time.perf_counter()
    modes = args.modes.split(",")
    names = ("base",) + (("upsample",) if args.size == 256 else ()) + (
        ("clip",) if "clip" in modes else ())
    ckpt = args.checkpoint_dir or tiny.write_checkpoints(work / "checkpoints", work / "study.toml",
                                                         names)
    weights = "checkpoints from " + str(ckpt) if args.checkpoint_dir else "random weights"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads")
    print(f"Full-size GLIDE on {name}, torch {torch.__version__}; released architectures, "
          f"{weights} ({time.perf_counter() - started:.0f} s to write); base respacing "
          f"'{steps['base']}', upsampler '{up_steps}', {args.size} px", flush=True)
    context = GeneratorContext(study, device=str(device), checkpoint_dir=ckpt)
    base_cond = study.conditions[0]
    precisions = args.precisions.split(",")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    n_images = args.images or max(batches + [8])
    peaks: dict[str, float] = {}
    results: dict[tuple, float] = {}  # (mode, label) -> projected img/s at paper steps
    flops_per_image: dict[str, float] = {}
    reference: dict[str, list] = {}  # mode -> fp32 images, for the precision difference
    deadline = time.monotonic() + args.budget_s if args.budget_s else None

    def generator(run: Run):
        params = {**base_cond.params, "guidance": run.mode, "size": args.size,
                  "fp16": run.precision == "fp16", "bf16": run.precision == "bf16",
                  "attention": run.attention, "compile": run.compile,
                  "compile_mode": run.compile_mode}
        return glide.GlideGenerator(dataclasses.replace(base_cond, params=params), context)

    def measure(run: Run) -> None:
        if deadline and time.monotonic() > deadline:
            print(f"  {run.label}: skipped (time budget of {args.budget_s} s spent)", flush=True)
            return
        try:
            gen = generator(run)
        except glide.GenerationError as exc:
            print(f"  {run.label}: {exc.message}", flush=True)
            return
        clock = StageClock(gen, torch)
        if not flops_per_image:
            sizes = [f"{name} {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters"
                     for name, model in (("base", gen.base), ("upsampler", gen.up),
                                         ("CLIP image encoder", gen.clip and gen.clip.image_encoder))
                     if model is not None]
            print("  models: " + ", ".join(sizes), flush=True)
        if run.mode not in flops_per_image:
            clock.counting = True
            gen.sample(TEXTS[:1], [0])
            clock.counting = False
            per_step = {k: clock.flops.get(k, 0) / steps[k] for k in steps}
            flops_per_image[run.mode] = sum(per_step[k] * PAPER_STEPS[k] for k in steps)
            print(f"  {run.mode}: {per_step['base'] / 1e9:,.0f} GFLOP per image per base step, "
                  f"{per_step['upsample'] / 1e9:,.0f} per upsampler step; "
                  f"{flops_per_image[run.mode] / 1e12:,.1f} TFLOP per image at the paper's "
                  "steps (torch.utils.flop_counter)", flush=True)
        count = max(2 * run.batch if run.precision == "fp32" and args.fp32_one_batch
                    else n_images, run.batch)
        if run.same_prompt:
            texts = [TEXTS[0]] * count
        else:
            texts = [TEXTS[(i // 8) % len(TEXTS)] for i in range(count)]
        seeds = list(range(1000, 1000 + count))
        calls, images = [], []
        try:
            for start in range(0, count, run.batch):
                clock.seconds = {}
                t0 = time.perf_counter()
                images += gen.sample(texts[start:start + run.batch], seeds[start:start + run.batch])
                calls.append((time.perf_counter() - t0, dict(clock.seconds),
                              len(texts[start:start + run.batch])))
        except torch.cuda.OutOfMemoryError:
            print(f"  {run.label}: out of memory", flush=True)
            del gen
            glide._LOADED.clear()
            torch.cuda.empty_cache()
            return
        compile_s = glide_speed.take_compile_seconds(gen.base, gen.up)
        timed = calls[1:] if len(calls) > 1 else calls  # the first call warms up (and compiles)
        seconds = sum(c[0] for c in timed)
        made = sum(c[2] for c in timed)
        stage = {k: sum(c[1].get(k, 0.0) for c in timed) for k in steps}
        other = max(0.0, seconds - sum(stage.values()))
        paper_seconds = sum(stage[k] / steps[k] * PAPER_STEPS[k] for k in steps) + other
        rate, paper_rate = made / seconds, made / paper_seconds
        results[(run.mode, run.label)] = paper_rate
        if run.precision not in peaks:
            dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
            peaks[run.precision] = matmul_tflops(torch, device, dtype[run.precision])
        achieved = flops_per_image[run.mode] * paper_rate / 1e12
        sheet = datasheet_tflops(torch, device, run.precision, args.peak_tflops)
        sheet_text = f", {achieved / sheet:5.1%} of the datasheet {sheet:,.0f}" if sheet else ""
        pixels = [np.asarray(i, dtype=int) for i in images]
        key = (run.mode, run.batch, run.same_prompt)
        diff = ""
        if run.precision == "fp32" and run.attention == "sdpa" and not run.compile:
            reference[key] = pixels
        elif key in reference and run.precision != "fp32":
            d = [np.abs(a - b) for a, b in zip(reference[key], pixels)]
            diff = (f"; vs fp32, same seeds: max |diff| {max(int(x.max()) for x in d)}, mean "
                    f"{np.mean([x.mean() for x in d]):.2f} of 255")
        study_min = PAPER_IMAGES / 2 / paper_rate / 60
        print(f"  {run.label}: {rate:.3g} img/s measured ({made} images"
              f"{', warm-up included' if len(calls) == 1 else ''}), {paper_rate:.3g} img/s at "
              f"the paper's steps = {achieved:.3g} TFLOP/s, {achieved / peaks[run.precision]:5.1%}"
              f" of the measured {run.precision} matmul rate {peaks[run.precision]:.3g}"
              f"{sheet_text}; this condition of the paper study ({PAPER_IMAGES // 2} images): "
              f"{study_min:,.1f} min"
              + (f"; compile {compile_s:.1f} s" if run.compile else "") + diff, flush=True)
        del gen

    for mode in modes:
        print(f"{mode}:", flush=True)
        for precision in precisions:
            for batch in ([batches[0]] if precision == "fp32" and args.fp32_one_batch else batches):
                measure(Run(mode, precision, batch, label=f"{precision} batch {batch:>3}"))
            glide._LOADED.clear()
        notebook = "fp16" if device.type == "cuda" else "fp32"  # the notebook: fp16 with CUDA
        measure(Run(mode, notebook, args.notebook_batch, attention="original", same_prompt=True,
                    label=f"notebook recipe (one prompt, {args.notebook_batch} images per "
                          f"batch, {notebook}, original attention)"))
        glide._LOADED.clear()
    for mode in modes if args.compile else ():
        mine = [(v, k[1]) for k, v in results.items() if k[0] == mode and "batch" in k[1]]
        if not mine:
            continue
        label = max(mine)[1]
        precision, batch = label.split()[0], int(label.split()[-1])
        print(f"{mode}, torch.compile:", flush=True)
        for compile_mode in args.compile_modes.split(","):
            measure(Run(mode, precision, batch, compile=True, compile_mode=compile_mode,
                        label=f"{precision} batch {batch:>3} compiled ({compile_mode})"))
        glide._LOADED.clear()
    print("Summary (projected to the paper's steps):", flush=True)
    total = 0.0
    for mode in modes:
        mine = {k[1]: v for k, v in results.items() if k[0] == mode}
        notebook = next((v for k, v in mine.items() if k.startswith("notebook")), None)
        best = max(((v, k) for k, v in mine.items() if not k.startswith("notebook")), default=None)
        if best is None:
            continue
        total += PAPER_IMAGES / 2 / best[0]
        gain = f", speed-up over the notebook recipe {best[0] / notebook:.2f}x" if notebook else ""
        print(f"  {mode}: best {best[1].strip()}: {best[0]:.3g} img/s{gain}", flush=True)
    if total:
        both = "" if len(modes) == 2 else " (both conditions at this rate)"
        factor = 1 if len(modes) == 2 else 2
        print(f"  paper study ({PAPER_IMAGES} images, 272 prompts x 8 images x 2 conditions)"
              f"{both}: {total * factor / 60:,.1f} min", flush=True)


def _tiny_module():
    spec = importlib.util.spec_from_file_location("glide_tiny", TINY / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    return tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, help="images per timed case (default: CPU part 8, "
                        "full size the largest batch)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many CPU runs")
    parser.add_argument("--full-size", action="store_true",
                        help="the released architectures (random weights) instead of tiny ones")
    parser.add_argument("--gpu-suite", action="store_true",
                        help="with --full-size: every GPU measurement in one run (see above)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when present)")
    parser.add_argument("--steps", type=int,
                        help="base and upsampler steps (default: the paper's '100' and 'fast27'); "
                             "figures are also projected to the paper's steps")
    parser.add_argument("--size", type=int, default=256, choices=(64, 256))
    parser.add_argument("--modes", default="classifier-free,clip")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--batch-sizes", default="8,16,32,64", help="images per forward pass")
    parser.add_argument("--fp32-one-batch", action="store_true",
                        help="time fp32 at the first batch size only (it is slow on GPUs)")
    parser.add_argument("--notebook-batch", type=int, default=8,
                        help="images per batch of the notebook recipe (its own: 8)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the best configuration with torch.compile")
    parser.add_argument("--compile-modes", default="default,reduce-overhead")
    parser.add_argument("--peak-tflops", type=float, help="the device's datasheet peak")
    parser.add_argument("--budget-s", type=float, help="skip what is left after this many seconds")
    parser.add_argument("--checkpoint-dir", type=Path,
                        help="with --full-size: real checkpoints instead of random weights")
    parser.add_argument("--work-dir", type=Path, help="where random-weight checkpoints are written")
    args = parser.parse_args()
    try:
        import glide_text2im  # noqa: F401
        import torch
    except ImportError:
        print("bench_glide: skipped, the glide extra is not installed (pip install -e '.[glide]')")
        return
    if args.gpu_suite:
        if not torch.cuda.is_available():
            print("bench_glide --gpu-suite: skipped (no CUDA device)")
            return
        gpu_suite(args)
    elif args.full_size:
        full_size_part(args)
    else:
        cpu_part(args.images or 8, args.repeats)


def gpu_suite(args) -> None:
    """Every GPU measurement in one call, well inside ten minutes on one H100/H200 class GPU.

    Sampling at reduced steps (20 base, 9 upsampler; each step costs the same, so figures
    are projected to the paper's 100 + 27 steps), then one run at the paper's own steps
    to check the projection, then the precision difference on the tiny models.
    """
    import torch

    print(f"GPU suite on {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB", flush=True)
    suite = dict(full_size=True, device="cuda", size=256, modes="classifier-free,clip",
                 notebook_batch=8, peak_tflops=args.peak_tflops, checkpoint_dir=args.checkpoint_dir,
                 work_dir=args.work_dir or Path(tempfile.mkdtemp(prefix="glide-suite-")))
    started = time.monotonic()
    full_size_part(argparse.Namespace(**suite, steps=10, precisions="bf16,fp16,fp32",
                                      batch_sizes="16,32,64,128", fp32_one_batch=True, images=None,
                                      compile=True, compile_modes="default,reduce-overhead",
                                      budget_s=330))
    suite["checkpoint_dir"] = suite["checkpoint_dir"] or suite["work_dir"] / "checkpoints"
    left = 540 - (time.monotonic() - started)
    print(f"\nPaper steps (100 + fast27), bf16, batch 32 ({left:.0f} s left):", flush=True)
    full_size_part(argparse.Namespace(**suite, steps=None, precisions="bf16", batch_sizes="32",
                                      fp32_one_batch=False, images=64, compile=False,
                                      compile_modes="", budget_s=max(0.0, left - 120)))


if __name__ == "__main__":
    main()
