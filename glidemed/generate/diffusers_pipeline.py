"""The 'diffusers' generator: any Hugging Face diffusers text-to-image pipeline.

Stable Diffusion 1.x/2.x, SDXL, SD3, PixArt, Flux and their fine-tunes (RoentGen,
MINIM, ...) load through ``DiffusionPipeline.from_pretrained`` from a folder holding a
saved pipeline (``model_index.json``), or from a hub id when the machine is online.
glidemed calls the pipeline as its authors documented it: it passes the prompts and one
``torch.Generator`` per image, seeded with the image's seed, and changes nothing about
how the model samples.

torch, diffusers and transformers are imported only when a generator is constructed;
``check_params`` runs without them so study validation stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import re
from pathlib import Path
from typing import Any, Callable

from glidemed import outside_json
from glidemed.errors import GenerationError
from glidemed.generate import clip_guidance
from glidemed.generate.base import GeneratorContext, ImageJob
from glidemed.generate.registry import (MAX_BATCH_SIZE, MAX_GUIDANCE_SCALE, MAX_SIDE,
                                         MAX_STEPS, above_problem, unknown_or_mistyped)
from glidemed.generate.torch_common import sample_batch, torch_device
from glidemed.modelfiles import hub_online
from glidemed.study import Condition

NUMBER = (int, float)
# Condition parameters and their defaults (None: the pipeline's own default, or decided
# at run time from the device).
DEFAULTS: dict[str, Any] = {
    "model": None,
    "steps": None,
    "guidance_scale": None,
    "negative_prompt": None,
    "scheduler": None,
    "width": None,
    "height": None,
    "dtype": None,  # float16 on CUDA, float32 on CPU
    "batch_size": None,  # DEFAULT_BATCH_SIZE per device kind
    "variant": None,
    "pipeline_options": {},
    "safety_checker": False,
    "clip_guidance": None,  # x̂₀ guidance by any CLIP (clip_guidance.py)
}
TYPES: dict[str, Any] = {
    "model": str, "steps": int, "guidance_scale": NUMBER, "negative_prompt": str,
    "scheduler": str, "width": int, "height": int, "dtype": str, "batch_size": int,
    "variant": str, "pipeline_options": dict, "safety_checker": bool,
    "clip_guidance": dict,
}
DTYPES = ("float32", "float16", "bfloat16")
# from_pretrained arguments that glidemed sets from the parameters above.
RESERVED_OPTIONS = {"torch_dtype": "dtype", "variant": "variant",
                    "safety_checker": "safety_checker", "feature_extractor": "safety_checker",
                    "requires_safety_checker": "safety_checker", "scheduler": "scheduler",
                    "local_files_only": "model"}
# Images per pipeline call when neither the condition nor --batch-size says. CUDA: not
# yet tuned on a GPU (bench/bench_diffusers.py measures it).
DEFAULT_BATCH_SIZE = {"cuda": 8, "cpu": 1}
# Arguments of a pipeline's __call__ that mean it starts from an image, not from text.
IMAGE_INPUTS = ("image", "mask_image", "control_image", "video")
SCHEDULER_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*Scheduler$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
INSTALL_HINT = "install the extra with: pip install -e '.[diffusers]'"


def check_params(params: dict) -> list[str]:
    """Problems with a 'diffusers' condition's parameters, each as 'key: problem' (no torch)."""
    problems = unknown_or_mistyped(params, TYPES)
    if problems:
        return problems
    p = {**DEFAULTS, **params}
    if not p["model"]:
        problems.append("model: missing; expected a folder holding a saved diffusers pipeline "
                        "(model_index.json), relative to the study file, or a hub id")
    if p["steps"] is not None and p["steps"] < 1:
        problems.append(f"steps: expected at least 1, got {p['steps']}")
    if p["guidance_scale"] is not None and p["guidance_scale"] < 0:
        problems.append(f"guidance_scale: expected >= 0, got {p['guidance_scale']}")
    if p["scheduler"] is not None and not SCHEDULER_NAME.match(p["scheduler"]):
        problems.append(f"scheduler: expected a diffusers scheduler class name such as "
                        f"'DPMSolverMultistepScheduler', got {p['scheduler']!r}")
    for key in ("width", "height"):
        if p[key] is not None and (p[key] < 8 or p[key] % 8):
            problems.append(f"{key}: expected a multiple of 8 pixels, got {p[key]}")
    if p["dtype"] is not None and p["dtype"] not in DTYPES:
        problems.append(f"dtype: expected one of {', '.join(DTYPES)}, got {p['dtype']!r}")
    if p["batch_size"] is not None and p["batch_size"] < 1:
        problems.append(f"batch_size: expected at least 1, got {p['batch_size']}")
    problems += filter(None, [
        above_problem("steps", p["steps"], MAX_STEPS),
        above_problem("guidance_scale", p["guidance_scale"], MAX_GUIDANCE_SCALE),
        above_problem("width", p["width"], MAX_SIDE),
        above_problem("height", p["height"], MAX_SIDE),
        above_problem("batch_size", p["batch_size"], MAX_BATCH_SIZE)])
    for option in p["pipeline_options"]:
        if option in RESERVED_OPTIONS:
            problems.append(f"pipeline_options.{option}: set by glidemed (use the "
                            f"{RESERVED_OPTIONS[option]} parameter)")
    if p["clip_guidance"] is not None:
        problems += clip_guidance.check_table(p["clip_guidance"])
    return problems


def _import_engine():
    """torch and diffusers, or a GenerationError saying how to install them."""
    try:
        import diffusers  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise GenerationError(f"the 'diffusers' generator needs torch, diffusers and "
                              f"transformers ({exc.name or exc} is not installed); "
                              f"{INSTALL_HINT}") from None
    return torch


@functools.cache
def engine_versions() -> dict:
    """Versions of the libraries that load and run the pipeline, for the manifest."""
    from importlib import metadata

    versions = {}
    for name in ("torch", "diffusers", "transformers", "safetensors", "accelerate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


# -- where the model comes from ------------------------------------------------------------

def locate_model(model: str, study_folder: Path, where: str,
                 online: Callable[[], bool] = hub_online,
                 download: Callable[[str], Path] | None = None) -> tuple[Path, str | None]:
    """The folder of a saved pipeline and the hub id it came from (None for a local folder).

    A folder relative to the study file (or absolute) wins; a value shaped like a hub id
    ('owner/name') that is not such a folder is fetched from the hub when online. Offline,
    the message names the folder to copy the model into so the study works unchanged.
    """
    path = Path(model).expanduser()
    folder = (path if path.is_absolute() else study_folder / path).resolve()
    if folder.exists() or model.startswith((".", "/", "~")) or not HUB_ID.match(model):
        if not folder.is_dir():
            raise GenerationError(f"{where}: model folder {folder} not found")
        return folder, None
    if not online():
        raise GenerationError(
            f"{where}: model {model!r} is not a folder next to the study and this machine is "
            f"offline, so it cannot come from the Hugging Face hub; copy the saved pipeline "
            f"into {folder} (e.g. `huggingface-cli download {model} --local-dir {folder}` on a "
            f"machine with network)")
    try:
        return Path(download(model)).resolve(), model
    except Exception as exc:  # noqa: BLE001  (hub errors have many types; all end here)
        raise GenerationError(f"{where}: model {model!r}: no folder {folder}, and fetching it "
                              f"from the Hugging Face hub failed: {_one_line(exc)}") from None


def read_model_index(folder: Path, where: str) -> dict:
    index = folder / "model_index.json"
    if not index.is_file():
        raise GenerationError(f"{where}: {folder} has no model_index.json, so it is not a saved "
                              "diffusers pipeline (save one with pipe.save_pretrained(folder))")
    try:
        table = outside_json.loads(index.read_bytes())
    except (OSError, outside_json.OutsideJSONError) as exc:
        raise GenerationError(f"{where}: cannot read {index}: {_one_line(exc)}") from None
    if not isinstance(table, dict) or not isinstance(table.get("_class_name"), str):
        raise GenerationError(f"{where}: {index} names no pipeline class (_class_name)")
    return table


def text_to_image_class(class_name: str, where: str) -> type:
    """The diffusers pipeline class, if it makes images from a prompt alone."""
    import diffusers

    cls = getattr(diffusers, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise GenerationError(f"{where}: pipeline class {class_name!r} is not in diffusers "
                              f"{diffusers.__version__}")
    call = inspect.signature(cls.__call__).parameters
    inputs = [name for name in IMAGE_INPUTS if name in call]
    if "prompt" not in call or "generator" not in call or inputs:
        why = (f"it takes {', '.join(inputs)}" if inputs and "prompt" in call
               else "it takes no prompt" if "prompt" not in call
               else "it takes no generator")
        raise GenerationError(f"{where}: {class_name} is not a text-to-image pipeline ({why}); "
                              "use a folder saved from a text-to-image pipeline such as "
                              "StableDiffusionPipeline")
    return cls


def _dtype_argument() -> str:
    """from_pretrained's dtype argument: 'dtype' in recent diffusers, 'torch_dtype' before."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


@contextlib.contextmanager
def _quiet_loading():
    """No per-component progress bars while loading (the run has its own progress bar)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    states = [(module, module.is_progress_bar_enabled())
              for module in (diffusers_logging, transformers_logging)]
    for module, _ in states:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, enabled in states:
            if enabled:
                module.enable_progress_bar()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# Loaded pipelines, shared by the conditions of one run that use the same model, dtype
# and device (e.g. two guidance scales). Key: everything that determines the weights.
_LOADED: dict[tuple, Any] = {}


class DiffusersGenerator:
    """Text-to-image through a diffusers pipeline, one seeded generator per image."""

    check_params = staticmethod(check_params)

    def __init__(self, condition: Condition, context: GeneratorContext):
        self.torch = torch = _import_engine()
        import diffusers

        self.condition = condition
        self.p = p = {**DEFAULTS, **condition.params}
        self.where = where = f"{context.study.path}: condition {condition.name!r}"
        self.device = torch_device(torch, context.device)
        self.dtype = p["dtype"] or ("float16" if self.device.type == "cuda" else "float32")
        if self.dtype == "float16" and self.device.type == "cpu":
            raise GenerationError(f"{where}: dtype = \"float16\" needs a CUDA device, got cpu "
                                  "(use float32 or bfloat16 on CPU)")
        self.batch_size = (context.batch_size or p["batch_size"]
                           or DEFAULT_BATCH_SIZE.get(self.device.type, 1))
        self.folder, self.hub_id = locate_model(
            p["model"], context.study.folder, where,
            download=lambda repo: diffusers.DiffusionPipeline.download(
                repo, variant=p["variant"], **p["pipeline_options"]))
        self.model_index = read_model_index(self.folder, where)
        cls = text_to_image_class(self.model_index["_class_name"], where)
        scheduler_cls = self._scheduler_class(diffusers) if p["scheduler"] else None
        self.pipe, own_scheduler = self._load(cls)
        self.scheduler = self._scheduler(own_scheduler, scheduler_cls)
        self.call_params = inspect.signature(type(self.pipe).__call__).parameters
        self.resolved = self._resolve()
        self._digest = None
        self.study = context.study
        self.guide = None
        if p["clip_guidance"] is not None:
            if problem := clip_guidance.scheduler_problem(self.scheduler):
                raise GenerationError(f"{where}: {problem}")
            self.guide = clip_guidance.load_guide(p["clip_guidance"], self.device, where,
                                                  context.study)

    # -- loading -----------------------------------------------------------------------

    def _scheduler_class(self, diffusers) -> type:
        cls = getattr(diffusers, self.p["scheduler"], None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            raise GenerationError(f"{self.where}: unknown scheduler {self.p['scheduler']!r} "
                                  f"(not a scheduler class of diffusers {diffusers.__version__})")
        return cls

    def _load(self, cls: type):
        torch, p = self.torch, self.p
        init = inspect.signature(cls.__init__).parameters
        has_checker = "safety_checker" in init
        options = dict(p["pipeline_options"])
        if p["safety_checker"]:
            if not has_checker or self.model_index.get("safety_checker", [None])[0] is None:
                raise GenerationError(f"{self.where}: safety_checker = true, but the pipeline "
                                      f"in {self.folder} has no safety checker")
        elif has_checker:
            options.update(safety_checker=None, requires_safety_checker=False)
        index = self.folder / "model_index.json"
        key = (str(self.folder), index.stat().st_mtime_ns, self.dtype, p["variant"],
               json.dumps(options, sort_keys=True, default=str), str(self.device))
        if key not in _LOADED:
            try:
                options[_dtype_argument()] = getattr(torch, self.dtype)
                with _quiet_loading():
                    pipe = cls.from_pretrained(self.folder, variant=p["variant"],
                                               local_files_only=True, **options)
                pipe.to(self.device)
            except (OSError, ValueError, TypeError, KeyError, RuntimeError, ImportError) as exc:
                raise GenerationError(f"{self.where}: cannot load the pipeline in {self.folder}: "
                                      f"{_one_line(exc)}") from None
            pipe.set_progress_bar_config(disable=True)
            # Its own scheduler, kept apart: conditions sharing the pipeline set theirs per call.
            _LOADED[key] = (pipe, pipe.scheduler)
        return _LOADED[key]

    def _scheduler(self, own, cls: type | None):
        """This condition's scheduler, built from the pipeline's own scheduler config."""
        if cls is None:
            return type(own).from_config(own.config)
        compatible = {c.__name__ for c in getattr(own, "compatibles", [])} | {type(own).__name__}
        if cls.__name__ not in compatible:
            raise GenerationError(f"{self.where}: scheduler {cls.__name__} does not fit this "
                                  f"pipeline's {type(own).__name__} (compatible: "
                                  f"{', '.join(sorted(compatible))})")
        return cls.from_config(own.config)

    def _resolve(self) -> dict:
        """Every sampling parameter as the pipeline will use it (its defaults made explicit)."""
        p, pipe, call = self.p, self.pipe, self.call_params
        for key, arg in (("negative_prompt", "negative_prompt"), ("guidance_scale", "guidance_scale"),
                         ("steps", "num_inference_steps"), ("width", "width"),
                         ("height", "height")):
            if p[key] is not None and arg not in call:
                raise GenerationError(f"{self.where}: {key} is set, but {type(pipe).__name__} "
                                      f"takes no {arg}")

        def default(arg: str):
            return call[arg].default if arg in call and call[arg].default is not inspect.Parameter.empty else None

        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample_size = getattr(pipe, "default_sample_size", None) or getattr(
            getattr(denoiser, "config", None), "sample_size", None)
        scale = getattr(pipe, "vae_scale_factor", None)
        size = sample_size * scale if isinstance(sample_size, int) and scale else None
        resolved = {
            "steps": p["steps"] if p["steps"] is not None else default("num_inference_steps"),
            "guidance_scale": (p["guidance_scale"] if p["guidance_scale"] is not None
                               else default("guidance_scale")),
            "negative_prompt": p["negative_prompt"],
            "width": p["width"] or size,
            "height": p["height"] or size,
        }
        multiple = self._size_multiple()
        for key in ("width", "height"):
            if resolved[key] is not None and resolved[key] % multiple:
                raise GenerationError(f"{self.where}: {key} = {resolved[key]} is not accepted by "
                                      f"{type(pipe).__name__}: expected a multiple of {multiple}")
        return resolved

    def _size_multiple(self) -> int:
        """Width and height must be multiples of this (latent scale x patch size, and 8)."""
        processor = getattr(self.pipe, "image_processor", None)
        scale = getattr(getattr(processor, "config", None), "vae_scale_factor", None) \
            or getattr(self.pipe, "vae_scale_factor", 1)
        return math.lcm(8, int(scale) * int(getattr(self.pipe, "patch_size", 1) or 1))

    # -- manifest ----------------------------------------------------------------------

    def digest(self) -> dict:
        """SHA-256 of model_index.json and of every weight file (cached by size and mtime)."""
        if self._digest is None:
            from glidemed.modelfiles import HashCache, folder_digest

            cache = HashCache()
            record = folder_digest(self.folder, cache=cache).as_record()
            record["model_index_sha256"] = cache.sha256(self.folder / "model_index.json")
            cache.save()
            self._digest = record
        return self._digest

    def describe(self) -> dict:
        digest = self.digest()
        params = {key: self.p[key] for key in DEFAULTS}
        params.update(self.resolved)
        params.update(
            model_folder=str(self.folder), hub_id=self.hub_id,
            pipeline_class=type(self.pipe).__name__, dtype=self.dtype,
            batch_size=self.batch_size, device=str(self.device),
            scheduler=type(self.scheduler).__name__,
            scheduler_config=json.loads(self.scheduler.to_json_string()),
            model_index_sha256=digest["model_index_sha256"],
            weights_sha256=digest["weights_sha256"], weight_files=digest["weight_files"],
            weight_bytes=digest["weight_bytes"])
        if self.guide is not None:
            params["clip_guidance"] = self.guide.describe()
        return {"params": params, "versions": engine_versions()}

    # -- sampling ----------------------------------------------------------------------

    def render(self, jobs: list[ImageJob]):
        """Yield (job, image, extra) for ``jobs``, all in one pipeline call."""
        if not jobs:
            return
        try:
            guide_texts = clip_guidance.batch_texts(self.guide, self.study, jobs)
            negatives = [job.prompt.negative or None for job in jobs]  # the style's, if any
            # The whole batch is made at once: each image's share of its time, for the manifest.
            results, share = sample_batch(
                self.torch, jobs,
                lambda texts, seeds: self.sample(texts, seeds, guide_texts, negatives), self.where)
        except (ValueError, TypeError) as exc:
            raise GenerationError(f"{self.where}: {type(self.pipe).__name__} refused the "
                                  f"parameters: {_one_line(exc)}") from None
        for job, (image, flagged) in zip(jobs, results):
            extra = dict(share)
            if flagged is not None:
                extra["nsfw_detected"] = flagged
                if flagged:
                    extra["blanked"] = "by the pipeline's safety checker: not a generated image"
            yield job, image, extra

    def sample(self, texts: list[str], seeds: list[int], guide_texts: list[str] | None = None,
               negatives: list[str | None] | None = None) -> list[tuple[Any, bool | None]]:
        """(PIL image, safety-checker flag or None) per text, image i seeded by ``seeds[i]``
        (and, with ``clip_guidance``, steered towards ``guide_texts[i]``, default ``texts``;
        ``negatives[i]``, a style's negative prompt, replaces the condition's)."""
        # CPU generators: the same starting noise on any device, as diffusers recommends.
        generators = [self.torch.Generator().manual_seed(seed) for seed in seeds]
        guided = contextlib.nullcontext()
        if self.guide is not None:
            guided = clip_guidance.guided_scheduler(
                self.scheduler, clip_guidance.BatchGuidance(self.guide, guide_texts or texts, seeds),
                clip_guidance.diffusers_decoder(self.pipe))
        with guided:
            output = self.call_pipeline(self.call_arguments(texts, generators, negatives))
        flags = getattr(output, "nsfw_content_detected", None)
        if flags is None or not self.p["safety_checker"]:
            flags = [None] * len(texts)
        return [(image, None if flag is None else bool(flag))
                for image, flag in zip(output.images, flags)]

    def call_arguments(self, texts: list[str], generators: list,
                       negatives: list[str | None] | None = None) -> dict:
        """The pipeline's __call__ arguments for one batch."""
        r = self.resolved
        kwargs: dict[str, Any] = {"prompt": list(texts), "generator": generators,
                                  "output_type": "pil"}
        if "num_images_per_prompt" in self.call_params:
            kwargs["num_images_per_prompt"] = 1
        if r["steps"] is not None:
            kwargs["num_inference_steps"] = r["steps"]
        if r["guidance_scale"] is not None:
            kwargs["guidance_scale"] = float(r["guidance_scale"])
        negatives = [n if n is not None else r["negative_prompt"] for n in (negatives or [None] * len(texts))]
        if any(n is not None for n in negatives):
            kwargs["negative_prompt"] = [n or "" for n in negatives]
        for key in ("width", "height"):
            if r[key] is not None:
                kwargs[key] = r[key]
        return kwargs

    def call_pipeline(self, kwargs: dict):
        """One pipeline call for a batch; the single place where sampling happens."""
        self.pipe.scheduler = self.scheduler
        return self.pipe(**kwargs)
