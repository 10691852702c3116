"""CLIP guidance on the predicted clean image (x̂₀), for any CLIP and any generator.

At a guided step the sampler's prediction of the clean image, x̂₀, is decoded to pixels
(latent models: through their VAE), ``cutouts`` random crops of it are resized to the
CLIP's input size, and x̂₀ is moved along the gradient of the CLIP similarity between
the crops and the guidance text (minus optional total-variation and range penalties):

    x̂₀' = x̂₀ - ∇ₓ̂₀ [scale · d(crops, text) + tv_weight · TV + range_weight · R]

where d is the spherical distance (or 1 - cosine) of the L2-normalised embeddings,
averaged over the crops. The generator then samples on from x̂₀' as it would from the
model's own x̂₀ (GLIDE: the posterior mean; diffusers: an equivalent noise prediction
handed to the scheduler). The gradient is taken with respect to x̂₀ only, never through
the diffusion model, and never accumulates into any weight.

The crops of each image are drawn from that image's own ``torch.Generator``, seeded from
its job seed, so an image is reproducible alone. ``check_table`` runs without torch.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from glidemed.errors import GenerationError
from glidemed.generate.registry import type_problem

PARAM = "clip_guidance"
LOCAL_DIR = "local-dir:"  # open_clip's prefix for a model folder, as in glidemed score
LOSSES = ("spherical", "cosine")
NUMBER = (int, float)
MAX_CUTOUTS = 256
# Keys of the clip_guidance table, their types and defaults (None: required).
DEFAULTS: dict[str, Any] = {
    "clip": None,
    "scale": 200.0,
    "cutouts": 16,
    "cutout_power": 1.0,
    "every": 1,
    "text": None,  # the prompt itself
    "loss": "spherical",
    "tv_weight": 0.0,
    "range_weight": 0.0,
}
TYPES: dict[str, Any] = {
    "clip": str, "scale": NUMBER, "cutouts": int, "cutout_power": NUMBER, "every": int,
    "text": (str, dict), "loss": str, "tv_weight": NUMBER, "range_weight": NUMBER,
}
# Smallest crop side as a fraction of the image's shorter side.
MIN_CUT_FRACTION = 0.25


def check_table(table: Any) -> list[str]:
    """Problems with a ``clip_guidance`` table, each as 'clip_guidance.key: problem'."""
    if not isinstance(table, dict):
        return [f"{PARAM}: expected a table such as {{ clip = \"local-dir:PATH\", scale = 200.0 }}, "
                f"got {table!r}"]
    problems = []
    for key, value in table.items():
        if key not in TYPES:
            problems.append(f"{PARAM}.{key}: unknown key (allowed: {', '.join(sorted(TYPES))})")
        elif problem := type_problem(f"{PARAM}.{key}", value, TYPES[key]):
            problems.append(problem)
    if problems:
        return problems
    p = {**DEFAULTS, **table}
    if not p["clip"] or not p["clip"].strip():
        problems.append(f"{PARAM}.clip: required: the guidance CLIP, named as for glidemed "
                        "score (e.g. \"local-dir:/models/biomedclip\" or a CLIP folder)")
    if p["scale"] < 0:
        problems.append(f"{PARAM}.scale: expected >= 0, got {p['scale']}")
    if p["cutouts"] < 1:
        problems.append(f"{PARAM}.cutouts: expected at least 1, got {p['cutouts']}")
    elif p["cutouts"] > MAX_CUTOUTS:  # each is a CLIP pass at every guided step
        problems.append(f"{PARAM}.cutouts: expected at most {MAX_CUTOUTS}, got {p['cutouts']}")
    if p["cutout_power"] <= 0:
        problems.append(f"{PARAM}.cutout_power: expected > 0, got {p['cutout_power']}")
    if p["every"] < 1:
        problems.append(f"{PARAM}.every: expected at least 1 (guide every k-th step), "
                        f"got {p['every']}")
    if p["loss"] not in LOSSES:
        problems.append(f"{PARAM}.loss: expected one of {', '.join(LOSSES)}, got {p['loss']!r}")
    for key in ("tv_weight", "range_weight"):
        if p[key] < 0:
            problems.append(f"{PARAM}.{key}: expected >= 0, got {p[key]}")
    templates = p["text"] if isinstance(p["text"], dict) else {"": p["text"] or "{description}"}
    for style, template in templates.items():
        where = f"{PARAM}.text" + (f".{style}" if style else "")
        if not isinstance(template, str):
            problems.append(f"{where}: expected str, got {template!r}")
        elif "{description}" not in template:
            problems.append(f"{where}: the template must contain {{description}} (e.g. "
                            f"\"a histopathology image of {{description}}\"), got {template!r}")
    return problems


@dataclass(frozen=True)
class GuidanceSettings:
    """A checked ``clip_guidance`` table with its defaults filled in."""

    clip: str
    scale: float
    cutouts: int
    cutout_power: float
    every: int
    text: str | dict | None
    loss: str
    tv_weight: float
    range_weight: float

    @classmethod
    def from_table(cls, table: dict, where: str = PARAM) -> "GuidanceSettings":
        problems = check_table(table)
        if problems:
            raise GenerationError(f"{where}: " + "; ".join(problems))
        p = {**DEFAULTS, **table}
        return cls(clip=p["clip"], scale=float(p["scale"]), cutouts=p["cutouts"],
                   cutout_power=float(p["cutout_power"]), every=p["every"], text=p["text"],
                   loss=p["loss"], tv_weight=float(p["tv_weight"]),
                   range_weight=float(p["range_weight"]))

    def as_record(self) -> dict:
        return asdict(self)

    def is_guided(self, step: int) -> bool:
        """Whether sampling step ``step`` (0 = the first, noisiest) is guided."""
        return step % self.every == 0


def guidance_text(settings: GuidanceSettings, study, prompt) -> str:
    """The text a prompt's image is steered towards: the prompt itself, or a template
    (one for all styles, or one per style) filled with the prompt's topic description."""
    template = settings.text
    if template is None:
        return prompt.text
    if isinstance(template, dict):
        if prompt.style not in template:
            raise GenerationError(
                f"{study.path}: {PARAM}.text has no template for style {prompt.style!r} "
                f"(it has: {', '.join(sorted(template)) or 'none'})")
        template = template[prompt.style]
    topic = next(t for t in study.topics if t.key == prompt.topic)
    return template.replace("{description}", getattr(topic, prompt.detail))


def batch_texts(guide: "ClipGuide | None", study, jobs) -> list[str] | None:
    """The guidance text of each job's prompt, or None for a condition without guidance."""
    if guide is None:
        return None
    return [guidance_text(guide.settings, study, job.prompt) for job in jobs]


def cutout_seed(image_seed: int) -> int:
    """The seed of an image's cutout generator: apart from its noise stream, fixed by its seed."""
    digest = hashlib.sha256(f"cutouts:{image_seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def cutout_generators(seeds: Sequence[int]) -> list:
    import torch

    return [torch.Generator().manual_seed(cutout_seed(seed)) for seed in seeds]


def make_cutouts(image, count: int, size: int, power: float, generator) -> Any:
    """``count`` random square crops of one image (3×H×W), each resized to size×size.

    Crop sides are drawn as ``min + (max - min) · u**power`` with u uniform, min a quarter
    and max all of the shorter side (a larger power favours small crops); positions are
    uniform. All draws come from ``generator`` (on CPU), so they do not depend on the
    device or on the other images of the batch.
    """
    import torch
    import torch.nn.functional as F

    _, height, width = image.shape
    side = min(height, width)
    low = max(1, int(side * MIN_CUT_FRACTION))
    draws = torch.rand(count, 3, generator=generator)
    crops = []
    for u_size, u_y, u_x in draws.tolist():
        cut = int(low + (side - low) * u_size ** power)
        top = int(u_y * (height - cut + 1))
        left = int(u_x * (width - cut + 1))
        crop = image[None, :, top:top + cut, left:left + cut]
        crops.append(F.interpolate(crop, size=(size, size), mode="bilinear",
                                   align_corners=False, antialias=cut > size))
    return torch.cat(crops)


def spherical_distance(a, b):
    """Squared great-circle distance between unit vectors (rows of a and b), ×2."""
    return (a - b).norm(dim=-1).div(2).clamp(max=1).arcsin().pow(2).mul(2)


def total_variation(pixels):
    """Mean squared difference between neighbouring pixels, per image."""
    dx = pixels[..., :, 1:] - pixels[..., :, :-1]
    dy = pixels[..., 1:, :] - pixels[..., :-1, :]
    return dx.pow(2).mean(dim=(-3, -2, -1)) + dy.pow(2).mean(dim=(-3, -2, -1))


def range_penalty(pixels):
    """Mean squared amount by which pixels (in [0, 1]) leave [0, 1], per image."""
    return (pixels - pixels.clamp(0, 1)).pow(2).mean(dim=(-3, -2, -1))


class ClipGuide:
    """The guidance CLIP, its text embeddings and the x̂₀ update of one batch at a time."""

    def __init__(self, settings: GuidanceSettings, clip, load_seconds: float | None = None):
        import torch

        self.torch = torch
        self.settings = settings
        self.clip = clip
        for module in _modules(clip):
            module.requires_grad_(False)
        self.load_seconds = load_seconds

    def text_embeddings(self, texts: list[str]):
        with self.torch.no_grad():
            return self.clip.encode_text(texts).float()

    def loss(self, pixels, text_embeddings, generators: list):
        """Per-image guidance loss of pixels N×3×H×W in [0, 1] (lower is better)."""
        torch = self.torch
        s = self.settings
        size = self.clip.image_size
        losses = []
        for image, text, generator in zip(pixels, text_embeddings, generators):
            crops = make_cutouts(image, s.cutouts, size, s.cutout_power, generator)
            embedded = self.clip.encode_image(crops).float()
            target = text[None].to(embedded.device)
            if s.loss == "spherical":
                distance = spherical_distance(embedded, target)
            else:
                distance = 1 - (embedded * target).sum(dim=-1)
            losses.append(s.scale * distance.mean())
        loss = torch.stack(losses).to(pixels.device)
        if s.tv_weight:
            loss = loss + s.tv_weight * total_variation(pixels)
        if s.range_weight:
            loss = loss + s.range_weight * range_penalty(pixels)
        return loss

    def shift(self, x0, decode: Callable, text_embeddings, generators: list):
        """The guided x̂₀: ``x0`` minus the gradient of the loss of ``decode(x0)``.

        ``decode`` maps x̂₀ (any shape, e.g. latents) to pixels N×3×H×W in [0, 1] and must
        be differentiable. Only ``x0``'s gradient is computed, one image at a time (so the
        VAE's and CLIP's activations of one image are alive at once); nothing is kept.
        """
        torch = self.torch
        gradients = []
        with torch.enable_grad():
            for i, generator in enumerate(generators):
                leaf = x0[i:i + 1].detach().float().requires_grad_(True)
                loss = self.loss(decode(leaf), text_embeddings[i:i + 1], [generator]).sum()
                gradient = torch.autograd.grad(loss, leaf)[0]
                if not bool(torch.isfinite(gradient).all()):
                    raise GenerationError(
                        f"{PARAM}: the guidance gradient is not finite (in half precision the "
                        "decoder or CLIP may overflow); use dtype = \"float32\" or \"bfloat16\"")
                gradients.append(gradient)
        return (x0.detach().float() - torch.cat(gradients)).to(x0.dtype)

    def describe(self) -> dict:
        """The guidance parameters and the CLIP's identity, for each image's manifest record."""
        record = self.settings.as_record()
        record["clip_identity"] = dict(getattr(self.clip, "identity", {}) or {})
        record["clip_image_size"] = self.clip.image_size
        return record


def _modules(clip) -> list:
    """The torch modules inside a loaded CLIP (whatever attribute holds them)."""
    import torch

    found = [clip] if isinstance(clip, torch.nn.Module) else []
    for value in vars(clip).values() if hasattr(clip, "__dict__") else ():
        if isinstance(value, torch.nn.Module):
            found.append(value)
    return found


def load_guide(table: dict, device, where: str, study=None) -> ClipGuide:
    """The ClipGuide of a condition's ``clip_guidance`` table, its CLIP loaded on ``device``
    (a relative folder in ``clip`` is taken relative to the study file's folder)."""
    import time

    settings = GuidanceSettings.from_table(table, where)
    if study is not None and isinstance(settings.text, dict):
        unknown = sorted(set(settings.text) - {style.key for style in study.styles})
        if unknown:
            raise GenerationError(f"{where}: {PARAM}.text names unknown style(s) "
                                  f"{', '.join(unknown)} (the study's styles: "
                                  f"{', '.join(style.key for style in study.styles)})")
    started = time.perf_counter()
    folder = None if study is None else study.folder
    clip = load_guidance_clip(resolve_clip_spec(settings.clip, folder), device, where)
    return ClipGuide(settings, clip, time.perf_counter() - started)


def resolve_clip_spec(spec: str, study_folder: Path | None) -> str:
    """``spec`` with a relative model folder made relative to the study's folder."""
    if study_folder is None:
        return spec
    if spec.startswith(LOCAL_DIR):
        path = Path(spec[len(LOCAL_DIR):]).expanduser()
        return spec if path.is_absolute() else f"{LOCAL_DIR}{Path(study_folder) / path}"
    path = Path(spec).expanduser()
    if not path.is_absolute() and (Path(study_folder) / path).is_dir():
        return str(Path(study_folder) / path)
    return spec  # an absolute folder, or a hub id


def load_guidance_clip(spec: str, device, where: str):
    """A CLIP through glidemed's CLIP loader (the one ``glidemed score`` uses)."""
    from glidemed.clipmodels import load_clip
    from glidemed.errors import GlidemedError

    try:
        return load_clip(spec, device)
    except GlidemedError as exc:
        raise GenerationError(f"{where}: {PARAM}.clip: {exc.message}") from None
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise GenerationError(f"{where}: {PARAM}.clip: cannot load {spec!r}: "
                              f"{' '.join(str(exc).split())}") from None


class BatchGuidance:
    """The guidance of one batch: its text embeddings and per-image cutout generators."""

    def __init__(self, guide: ClipGuide, texts: list[str], seeds: Sequence[int]):
        self.guide = guide
        self.embeddings = guide.text_embeddings(texts)
        self.generators = cutout_generators(seeds)
        self.step = 0

    def __call__(self, x0, decode: Callable):
        """x̂₀ after this step's guidance (unchanged on a step that is not guided)."""
        step, self.step = self.step, self.step + 1
        if not self.guide.settings.is_guided(step):
            return x0
        return self.guide.shift(x0, decode, self.embeddings, self.generators)


def glide_pixels(x0):
    """GLIDE's x̂₀ in [-1, 1] as pixels in [0, 1]."""
    return (x0 + 1) / 2


def guide_glide_step(batch: BatchGuidance, diffusion, out: dict, x, t) -> dict:
    """A glide-text2im ``p_mean_variance`` output with x̂₀ guided and the mean re-derived.

    The guided x̂₀ is clipped to [-1, 1] as the sampler clips the model's own, and the
    posterior mean comes from glide-text2im's ``q_posterior_mean_variance``, as in
    ``p_mean_variance`` itself; the variance is the model's.
    """
    pred = batch(out["pred_xstart"], glide_pixels)
    if pred is out["pred_xstart"]:
        return out
    pred = pred.clamp(-1, 1)
    mean, _, _ = diffusion.q_posterior_mean_variance(x_start=pred, x_t=x, t=t)
    return {**out, "mean": mean, "pred_xstart": pred}


# -- diffusers ------------------------------------------------------------------------------

# Schedulers whose step takes (model output, timestep, sample) at one noise level that
# glidemed can read, so x̂₀ follows from the model output: by ᾱ_t or by σ_t.
ALPHA_SCHEDULERS = ("DDIMScheduler", "DDPMScheduler")
SIGMA_SCHEDULERS = ("EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler")
GUIDABLE_SCHEDULERS = ALPHA_SCHEDULERS + SIGMA_SCHEDULERS
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def scheduler_problem(scheduler) -> str | None:
    """Why x̂₀ guidance cannot run with this scheduler (None when it can)."""
    name = type(scheduler).__name__
    if name not in GUIDABLE_SCHEDULERS:
        return (f"{PARAM} needs a scheduler that exposes the predicted clean sample; "
                f"{name} does not (use scheduler = one of {', '.join(GUIDABLE_SCHEDULERS)})")
    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind not in PREDICTION_TYPES:
        return (f"{PARAM}: {name} predicts {kind!r}; guidance knows "
                f"{', '.join(PREDICTION_TYPES)}")
    return None


def _x0_coefficients(scheduler, timestep, sample) -> tuple[Any, Any]:
    """(a, b) with x̂₀ = a·sample + b·model_output at this step, as the scheduler computes it."""
    import torch

    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind == "sample":
        return 0.0, 1.0
    if type(scheduler).__name__ in ALPHA_SCHEDULERS:
        alpha_bar = scheduler.alphas_cumprod[int(timestep)].to(torch.float64)
        a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
        coefficients = (1 / a, -s / a) if kind == "epsilon" else (a, -s)
    else:
        if scheduler.step_index is None:
            scheduler._init_step_index(timestep)
        sigma = scheduler.sigmas[scheduler.step_index].to(torch.float64)
        coefficients = ((1.0, -sigma) if kind == "epsilon"
                        else (1 / (sigma ** 2 + 1), -sigma / (sigma ** 2 + 1).sqrt()))
    return tuple(float(c) for c in coefficients)


@contextlib.contextmanager
def guided_scheduler(scheduler, batch: BatchGuidance, decode: Callable):
    """While active, each ``scheduler.step`` first guides x̂₀ and hands the scheduler the
    model output that predicts the guided x̂₀ (the scheduler itself is unchanged)."""
    original = scheduler.step

    def step(model_output, timestep, sample, *args, **kwargs):
        a, b = _x0_coefficients(scheduler, timestep, sample)
        x0 = a * sample + b * model_output
        guided = batch(x0, decode)
        if guided is not x0:
            model_output = model_output + ((guided - x0) / b).to(model_output.dtype)
        return original(model_output, timestep, sample, *args, **kwargs)

    scheduler.step = step
    try:
        yield scheduler
    finally:
        del scheduler.step  # the class's own step again


def diffusers_decoder(pipe) -> Callable:
    """x̂₀ of a pipeline as pixels in [0, 1]: latents through its VAE, else as they are."""
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return lambda x0: (x0 + 1) / 2
    vae.requires_grad_(False)
    scaling = vae.config.get("scaling_factor", 1.0) or 1.0
    shift = vae.config.get("shift_factor", 0.0) or 0.0

    def decode(x0):
        latents = (x0 / scaling + shift).to(vae.dtype)
        return ((vae.decode(latents).sample.float() + 1) / 2)

    return decode
