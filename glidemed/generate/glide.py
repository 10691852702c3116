"""The 'glide' generator: OpenAI's GLIDE (filtered release) through glide-text2im.

Two guidance modes, as in the glide-text2im notebooks: classifier-free guidance (the
conditional and empty-prompt rows in one batch) and guidance by the noised CLIP model
(its gradient applied to the sampler's mean, as ``p_sample_loop`` does), each followed
by the 64 -> 256 upsampler (DDIM, noise temperature 0.997).

The model, diffusion, tokenizer and checkpoint loader are glide-text2im's. The only
sampling code here is a thin loop over the diffusion's own ``p_mean_variance`` and
``condition_mean``: glide-text2im draws step noise from torch's global generator, and
the loop draws it instead from one generator per image, seeded by the image's seed, so
each image can be re-made alone.

This module imports torch only when a generator is constructed; ``check_params`` runs
without it so study validation stays fast.
"""

from __future__ import annotations

import json
import pickle
import re
import time
from pathlib import Path
from typing import Any

from glidemed.errors import GenerationError
from glidemed.fileio import sha256_file
from glidemed.generate import checkpoints, clip_guidance, glide_speed
from glidemed.generate.base import GeneratorContext, ImageJob
from glidemed.generate.registry import (MAX_BATCH_SIZE, MAX_GUIDANCE_SCALE, above_problem,
                                         type_problem, unknown_or_mistyped)
from glidemed.study import Condition

GUIDANCE_MODES = ("classifier-free", "clip")

# Condition parameters and their defaults (None: decided at run time).
DEFAULTS: dict[str, Any] = {
    "guidance": "classifier-free",
    "guidance_scale": 3.0,
    "base_respacing": "100",
    "upsample_respacing": "fast27",
    "upsample_temperature": 0.997,
    "size": 256,
    "fp16": None,  # on with CUDA, off on CPU
    "batch_size": None,  # DEFAULT_BATCH_SIZE per device kind
    "base_options": {},
    "upsample_options": {},
    "clip_config": None,  # glide-text2im's own CLIP config
    "base_checkpoint": "base",
    "upsample_checkpoint": "upsample",
    "clip_image_checkpoint": "clip/image-enc",
    "clip_text_checkpoint": "clip/text-enc",
    "clip_guidance": None,  # x̂₀ guidance by any CLIP (clip_guidance.py), on the base model
    **glide_speed.DEFAULTS,  # bf16, attention, compile, compile_mode
}
NUMBER = (int, float)
TYPES: dict[str, Any] = {
    "guidance": str, "guidance_scale": NUMBER, "base_respacing": str,
    "upsample_respacing": str, "upsample_temperature": NUMBER, "size": int, "fp16": bool,
    "batch_size": int, "base_options": dict, "upsample_options": dict, "clip_config": str,
    "base_checkpoint": str, "upsample_checkpoint": str, "clip_image_checkpoint": str,
    "clip_text_checkpoint": str, "clip_guidance": dict, **glide_speed.TYPES,
}
CHECKPOINT_PARAMS = ("base_checkpoint", "upsample_checkpoint", "clip_image_checkpoint",
                     "clip_text_checkpoint")
# Images per forward pass when neither the condition nor --batch-size says. CUDA: not
# yet tuned on a GPU (see docs/generate/glide.md). CPU: batching did not pay for the 256 px pipeline
# on two cores (bench/bench_glide.py).
DEFAULT_BATCH_SIZE = {"cuda": 64, "cpu": 1}  # cuda: measured on an H200 (docs/generate/glide.md)

# glide-text2im's model options (model_and_diffusion_defaults) that a condition may
# override, e.g. to load a fine-tuned or a tiny model. Respacing, fp16 and the model
# kind are set by glidemed from the parameters above.
MODEL_OPTIONS: dict[str, Any] = {
    "image_size": int, "num_channels": int, "num_res_blocks": int, "channel_mult": str,
    "num_heads": int, "num_head_channels": int, "num_heads_upsample": int,
    "attention_resolutions": str, "dropout": NUMBER, "text_ctx": int, "xf_width": int,
    "xf_layers": int, "xf_heads": int, "xf_final_ln": bool, "xf_padding": bool,
    "diffusion_steps": int, "noise_schedule": str, "use_scale_shift_norm": bool,
    "resblock_updown": bool, "cache_text_emb": bool,
}
FIXED_OPTIONS = ("timestep_respacing", "use_fp16", "inpaint", "super_res")
RESPACING = re.compile(r"^(ddim[1-9][0-9]*|fast27|[1-9][0-9]*(,[1-9][0-9]*)*)$")

INSTALL_HINT = "install the extra with: pip install -e '.[glide]'"


def check_params(params: dict) -> list[str]:
    """Problems with a 'glide' condition's parameters, each as 'key: problem' (no torch)."""
    problems = unknown_or_mistyped(params, TYPES)
    if problems:
        return problems
    p = {**DEFAULTS, **params}
    if p["guidance"] not in GUIDANCE_MODES:
        problems.append(f"guidance: expected one of {', '.join(GUIDANCE_MODES)}, "
                        f"got {p['guidance']!r}")
    if p["guidance_scale"] < 0:
        problems.append(f"guidance_scale: expected >= 0, got {p['guidance_scale']}")
    for key in ("base_respacing", "upsample_respacing"):
        if not RESPACING.match(p[key]):
            problems.append(f"{key}: expected a step count such as '100', 'ddim50', 'fast27' "
                            f"or section counts such as '10,10,3', got {p[key]!r}")
        elif p[key] in ("1", "ddim1"):
            problems.append(f"{key}: expected at least 2 steps (glide-text2im's sampler "
                            f"needs two), got {p[key]!r}")
    if not 0 < p["upsample_temperature"] <= 2:
        problems.append(f"upsample_temperature: expected 0 < t <= 2, got "
                        f"{p['upsample_temperature']}")
    if p["size"] not in (64, 256):
        problems.append(f"size: expected 64 (base model only) or 256 (with the upsampler), "
                        f"got {p['size']}")
    if p["batch_size"] is not None and p["batch_size"] < 1:
        problems.append(f"batch_size: expected at least 1, got {p['batch_size']}")
    problems += filter(None, [
        above_problem("guidance_scale", p["guidance_scale"], MAX_GUIDANCE_SCALE),
        above_problem("batch_size", p["batch_size"], MAX_BATCH_SIZE)])
    for key in ("base_options", "upsample_options"):
        for option, value in p[key].items():
            if option in FIXED_OPTIONS:
                problems.append(f"{key}.{option}: set by glidemed (use the respacing and fp16 "
                                "parameters)")
            elif option not in MODEL_OPTIONS:
                problems.append(f"{key}.{option}: unknown model option "
                                f"(allowed: {', '.join(sorted(MODEL_OPTIONS))})")
            elif problem := type_problem(f"{key}.{option}", value, MODEL_OPTIONS[option]):
                problems.append(problem)
    for key in CHECKPOINT_PARAMS:
        if problem := checkpoints.check_reference(p[key]):
            problems.append(f"{key}: {problem}")
    if p["clip_guidance"] is not None:
        problems += clip_guidance.check_table(p["clip_guidance"])
    problems += glide_speed.check_params(p)
    return problems


def _import_engine():
    """torch and glide-text2im, or a GenerationError saying how to install them."""
    try:
        import torch
        import yaml  # noqa: F401  (glide-text2im's CLIP needs it but does not declare it)
        from glide_text2im import model_creation  # noqa: F401
    except ImportError as exc:
        raise GenerationError(f"the 'glide' generator needs torch, PyYAML and glide-text2im "
                              f"({exc.name or exc} is not installed); {INSTALL_HINT}") from None
    return torch


def engine_versions() -> dict:
    """torch and glide-text2im versions (with the git commit it was installed from, if known)."""
    from importlib import metadata

    import torch

    versions = {"torch": torch.__version__}
    try:
        dist = metadata.distribution("glide-text2im")
        text = dist.version
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
        commit = direct.get("vcs_info", {}).get("commit_id")
        versions["glide-text2im"] = f"{text}+{commit}" if commit else text
    except (metadata.PackageNotFoundError, ValueError):
        versions["glide-text2im"] = "unknown"
    return versions


# Loaded models, shared by the conditions of one run (e.g. 'clip' and 'cfg' use the same
# base and upsampler). Key: everything that determines the loaded weights.
_LOADED: dict[tuple, Any] = {}
_HASHES: dict[tuple, str] = {}


def _file_key(path: Path) -> tuple:
    """Identifies a file's current content cheaply (path, size, modification time)."""
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _sha256(path: Path) -> str:
    key = _file_key(path)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


class GlideGenerator:
    """Text-to-image with GLIDE: base model, guidance, then (for size 256) the upsampler."""

    check_params = staticmethod(check_params)

    def __init__(self, condition: Condition, context: GeneratorContext):
        self.torch = torch = _import_engine()
        self.condition = condition
        p = {**DEFAULTS, **condition.params}
        self.p = p
        device = context.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise GenerationError(f"--device: {exc}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise GenerationError(f"--device {device}: CUDA is not available on this machine "
                                  "(use --device cpu)")
        self.speed = glide_speed.resolve(p, self.device, torch, condition.name)
        self.fp16 = self.speed.precision == "fp16"
        self.batch_size = (context.batch_size or p["batch_size"]
                           or DEFAULT_BATCH_SIZE.get(self.device.type, 1))
        self.folder = checkpoints.checkpoint_dir(context.checkpoint_dir)
        self.used: dict[str, Path] = {}
        needed = ["base_checkpoint"]
        if p["size"] != p["base_options"].get("image_size", 64):
            needed.append("upsample_checkpoint")
        if p["guidance"] == "clip":
            needed += ["clip_image_checkpoint", "clip_text_checkpoint"]
        checkpoints.require_all([p[key] for key in needed], self.folder)
        self.base, self.base_diffusion, self.base_options = self._model(
            "base", p["base_options"], p["base_respacing"], p["base_checkpoint"])
        self.up = None
        if p["size"] != self.base_options["image_size"]:
            self.up, self.up_diffusion, self.up_options = self._model(
                "upsample", p["upsample_options"], p["upsample_respacing"],
                p["upsample_checkpoint"])
            if p["size"] != self.up_options["image_size"]:
                raise GenerationError(
                    f"condition {condition.name!r}: size {p['size']} matches neither the base "
                    f"model ({self.base_options['image_size']} px) nor the upsampler "
                    f"({self.up_options['image_size']} px)")
        self.clip = self._clip(context) if p["guidance"] == "clip" else None
        self.study = context.study
        self.guide = None
        if p["clip_guidance"] is not None:
            self.guide = clip_guidance.load_guide(
                p["clip_guidance"], self.device,
                f"{context.study.path}: condition {condition.name!r}", context.study)

    # -- loading -------------------------------------------------------------------

    def _model(self, kind: str, overrides: dict, respacing: str, ref: str):
        from glide_text2im.model_creation import (
            create_model_and_diffusion,
            model_and_diffusion_defaults,
            model_and_diffusion_defaults_upsampler,
        )

        options = (model_and_diffusion_defaults() if kind == "base"
                   else model_and_diffusion_defaults_upsampler())
        options.update(overrides)
        options.update(timestep_respacing=respacing, use_fp16=self.fp16)
        path = checkpoints.require(ref, self.folder)
        self.used[f"{kind}_checkpoint"] = path
        key = (kind, json.dumps(options, sort_keys=True), _file_key(path), str(self.device),
               self.speed.key())
        if key not in _LOADED:
            try:
                model, diffusion = create_model_and_diffusion(**options)
            except (ValueError, AssertionError, KeyError, ZeroDivisionError) as exc:
                raise GenerationError(f"condition {self.condition.name!r}: glide-text2im "
                                      f"rejects the {kind} model options {overrides}: "
                                      f"{exc}") from None
            model.eval()
            glide_speed.prepare(model, self.speed, self.torch)
            model.to(self.device)
            self._load_state(model, ref, path, f"{kind}_options")
            _LOADED[key] = (glide_speed.compile_model(model, self.speed, self.torch), diffusion)
        return (*_LOADED[key], options)

    def _read_state(self, ref: str, path: Path) -> dict:
        """A state dict through glide-text2im's loader (release names) or torch.load (files)."""
        try:
            if checkpoints.is_file_reference(ref):
                return self.torch.load(path, map_location=self.device, weights_only=True)
            from glide_text2im.download import load_checkpoint

            # The file is present (checked before), so this reads it without network.
            return load_checkpoint(ref, self.device, progress=False, cache_dir=str(path.parent))
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            raise GenerationError(f"cannot read checkpoint {path}: {exc}. Delete it and "
                                  "download it again (glidemed checkpoints --download)") from None

    def _load_state(self, module, ref: str, path: Path, options_key: str) -> None:
        state = self._read_state(ref, path)
        if not isinstance(state, dict):
            raise GenerationError(f"checkpoint {path} is not a state dict")
        check_state_keys(module.state_dict(), state, path, options_key)
        module.load_state_dict(state)

    def _clip(self, context: GeneratorContext):
        from glide_text2im.clip.model_creation import create_clip_model

        config = self.p["clip_config"]
        if config is not None:
            config = Path(config)
            if not config.is_absolute():
                config = context.study.folder / config
            if not config.is_file():
                raise GenerationError(f"{context.study.path}: condition {self.condition.name!r}: "
                                      f"clip_config file {config} not found")
            config = str(config)
        image_path = checkpoints.require(self.p["clip_image_checkpoint"], self.folder)
        text_path = checkpoints.require(self.p["clip_text_checkpoint"], self.folder)
        key = ("clip", config, _file_key(image_path), _file_key(text_path), str(self.device),
               self.speed.attention)
        self.used["clip_image_checkpoint"] = image_path
        self.used["clip_text_checkpoint"] = text_path
        if key not in _LOADED:
            clip = create_clip_model(config_path=config, device=self.device)
            self._load_state(clip.image_encoder, self.p["clip_image_checkpoint"], image_path,
                             "clip_config")
            self._load_state(clip.text_encoder, self.p["clip_text_checkpoint"], text_path,
                             "clip_config")
            if self.speed.attention == "sdpa":
                glide_speed.prepare_clip(clip)
            _LOADED[key] = clip
        return _LOADED[key]

    # -- manifest ------------------------------------------------------------------

    def describe(self) -> dict:
        params = {key: self.p[key] for key in DEFAULTS}
        params.update(fp16=self.fp16, bf16=self.speed.precision == "bf16",
                      batch_size=self.batch_size, device=str(self.device),
                      checkpoint_sha256={role: _sha256(path) for role, path in self.used.items()},
                      checkpoint_files={role: str(path) for role, path in self.used.items()})
        if self.up is None:
            for key in ("upsample_respacing", "upsample_temperature", "upsample_options",
                        "upsample_checkpoint"):
                params[key] = None  # not used at 64 px
        if self.clip is None:
            for key in ("clip_config", "clip_image_checkpoint", "clip_text_checkpoint"):
                params[key] = None
        if self.guide is not None:
            params["clip_guidance"] = self.guide.describe()
        return {"params": params, "versions": engine_versions()}

    # -- sampling ------------------------------------------------------------------

    def render(self, jobs: list[ImageJob]):
        """Yield (job, image, extra) for ``jobs``, all in one batch."""
        if not jobs:
            return
        torch = self.torch
        started = time.perf_counter()
        try:
            guide_texts = clip_guidance.batch_texts(self.guide, self.study, jobs)
            images = self.sample([job.prompt.text for job in jobs], [job.seed for job in jobs],
                                 guide_texts)
        except torch.cuda.OutOfMemoryError:
            raise GenerationError(f"CUDA ran out of memory with a batch of {len(jobs)} image(s) "
                                  f"in condition {self.condition.name!r}; use a smaller batch "
                                  "(--batch-size or the condition's batch_size)") from None
        except Exception as exc:
            glide_speed.raise_compile_failure(exc, self.speed, self.condition.name)
            raise
        # The whole batch is made at once: each image's share of its time, for the manifest
        # (compilation, on the first batch of a shape, reported apart).
        compiling = glide_speed.take_compile_seconds(self.base, self.up)
        share = {"seconds": round((time.perf_counter() - started - compiling) / len(jobs), 4),
                 "batch_size": len(jobs)}
        if compiling:
            share["compile_seconds"] = round(compiling, 2)
        for job, image in zip(jobs, images):
            yield job, image, share

    def sample(self, texts: list[str], seeds: list[int],
               guide_texts: list[str] | None = None) -> list:
        """PIL images for ``texts``, image i drawn from the noise stream of ``seeds[i]``
        (and, with ``clip_guidance``, steered towards ``guide_texts[i]``, default ``texts``)."""
        from PIL import Image

        torch = self.torch
        streams = [torch.Generator().manual_seed(seed) for seed in seeds]
        with torch.no_grad():
            x0_guidance = None if self.guide is None else clip_guidance.BatchGuidance(
                self.guide, guide_texts or texts, seeds)
            x = self._sample_base(texts, streams, x0_guidance)
            if self.up is not None:
                x = self._upsample(texts, x, streams)
            pixels = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(row, "RGB") for row in pixels]

    def _noise(self, streams: list, shape: tuple) -> Any:
        """One draw per image from its own generator (on CPU, so any device gives the same)."""
        torch = self.torch
        return torch.stack([torch.randn(shape, generator=g) for g in streams]).to(self.device)

    def _tokens(self, model, texts: list[str], text_ctx: int):
        tokens, masks = [], []
        for text in texts:
            ids, mask = model.tokenizer.padded_tokens_and_mask(model.tokenizer.encode(text),
                                                               text_ctx)
            tokens.append(ids)
            masks.append(mask)
        torch = self.torch
        return (torch.tensor(tokens, device=self.device),
                torch.tensor(masks, dtype=torch.bool, device=self.device))

    def _sample_base(self, texts: list[str], streams: list, x0_guidance=None):
        torch = self.torch
        model, diffusion, options = self.base, self.base_diffusion, self.base_options
        scale = float(self.p["guidance_scale"])
        size = options["image_size"]
        if self.clip is None:
            # Classifier-free: B conditional rows, then B empty-prompt rows, one forward pass.
            tokens, mask = self._tokens(model, texts + [""] * len(texts), options["text_ctx"])

            def model_fn(x_t, ts, **kwargs):
                out = model(torch.cat([x_t, x_t]), torch.cat([ts, ts]), **kwargs)
                eps, rest = out[:, :3], out[:, 3:]
                cond_eps, uncond_eps = torch.split(eps, len(x_t), dim=0)
                guided = uncond_eps + scale * (cond_eps - uncond_eps)
                return torch.cat([guided, rest[:len(x_t)]], dim=1)

            cond_fn = None
        else:
            tokens, mask = self._tokens(model, texts, options["text_ctx"])
            model_fn = model
            cond_fn = self.clip.cond_fn(texts, scale)
        kwargs = {"tokens": tokens, "mask": mask}
        x = self._noise(streams, (3, size, size))
        model.del_cache()
        # The steps of glide-text2im's p_sample_loop, with per-image step noise.
        for i in reversed(range(diffusion.num_timesteps)):
            t = torch.tensor([i] * len(texts), device=self.device)
            out = diffusion.p_mean_variance(model_fn, x, t, clip_denoised=True,
                                            model_kwargs=kwargs)
            if x0_guidance is not None:
                out = clip_guidance.guide_glide_step(x0_guidance, diffusion, out, x, t)
            if cond_fn is not None:
                out["mean"] = diffusion.condition_mean(cond_fn, out, x, t, model_kwargs=kwargs)
            x = out["mean"]
            if i > 0:
                x = x + torch.exp(0.5 * out["log_variance"]) * self._noise(streams, x.shape[1:])
        model.del_cache()
        return x

    def _upsample(self, texts: list[str], low: Any, streams: list):
        model, diffusion, options = self.up, self.up_diffusion, self.up_options
        tokens, mask = self._tokens(model, texts, options["text_ctx"])
        kwargs = {"low_res": ((low + 1) * 127.5).round() / 127.5 - 1,
                  "tokens": tokens, "mask": mask}
        size = options["image_size"]
        shape = (len(texts), 3, size, size)
        noise = self._noise(streams, shape[1:]) * float(self.p["upsample_temperature"])
        model.del_cache()
        # DDIM with eta = 0 adds no step noise: the result depends only on this start noise.
        out = diffusion.ddim_sample_loop(model, shape, noise=noise, device=self.device,
                                         clip_denoised=True, progress=False,
                                         model_kwargs=kwargs, cond_fn=None)
        model.del_cache()
        return out


def check_state_keys(expected: dict, state: dict, path: Path, options_key: str) -> None:
    """Raise a GenerationError naming the keys where a checkpoint does not fit the model."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
              for k in expected if k in state
              and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)]
    if not (missing or unexpected or shapes):
        return

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {some(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {some(unexpected)}")
    if shapes:
        parts.append(f"different shapes: {some(shapes)}")
    raise GenerationError(f"checkpoint {path} does not fit the model options "
                          f"(check the condition's {options_key}): " + "; ".join(parts))
