"""One loader for CLIP models of either library: open_clip folders and transformers CLIPModels.

``load_clip(spec)`` accepts ``local-dir:PATH`` (an open_clip folder with
``open_clip_config.json`` and weights; BiomedCLIP and QuiltNet come this way), a plain
folder (open_clip when it holds ``open_clip_config.json``, else a transformers ``CLIPModel``
folder such as PLIP or PubMedCLIP), ``hf-hub:ORG/NAME`` (open_clip, online only) or a
transformers hub id (online only). Every model answers the same small interface
(:class:`LoadedClip`); torch and the model libraries are imported only here, lazily.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from glidemed.errors import ScoringError
from glidemed.modelfiles import file_sha256, folder_digest

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = (".safetensors", ".bin", ".pth")  # what open_clip looks for in a folder
# OpenAI CLIP's normalisation, the transformers default when a folder has no image processor.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipLoadError(ScoringError):
    """A CLIP model named by the user cannot be read by open_clip nor by transformers."""


@dataclass
class LoadedClip:
    """A CLIP model of either library behind one interface (see the module docstring)."""

    spec: str
    library: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    identity: dict
    device: Any
    logit_scale: float = 100.0  # the model's learned temperature, exp(logit_scale)
    _model: Any = field(repr=False, default=None)
    _tokenize: Callable[[list[str]], dict] = field(repr=False, default=None)
    _to_pixels: Callable[[Any], Any] = field(repr=False, default=None)

    def encode_image(self, pixels):
        """L2-normalised embeddings of N×3×S×S pixels in [0, 1]; differentiable w.r.t. pixels.

        The model's own normalisation is applied here; other sizes are resized (bicubic,
        antialiased) to the model's input side first.
        """
        import torch
        import torch.nn.functional as F

        pixels = pixels.to(self.device, dtype=torch.float32)
        if pixels.shape[-2:] != (self.image_size, self.image_size):
            pixels = F.interpolate(pixels, size=(self.image_size, self.image_size),
                                   mode="bicubic", align_corners=False, antialias=True)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        normalised = (pixels - mean) / std
        if self.library == "open_clip":
            features = self._model.encode_image(normalised)
        else:
            features = _pooled(self._model.get_image_features(pixel_values=normalised))
        return F.normalize(features.float(), dim=-1)

    def encode_text(self, texts: list[str]):
        """L2-normalised embeddings of the texts (truncated to the model's context length)."""
        import torch.nn.functional as F

        tokens = {k: v.to(self.device) for k, v in self._tokenize(list(texts)).items()}
        if self.library == "open_clip":
            features = self._model.encode_text(tokens["input_ids"])
        else:
            features = _pooled(self._model.get_text_features(**tokens))
        return F.normalize(features.float(), dim=-1)

    def preprocess(self, image):
        """A PIL image as a 3×S×S tensor in [0, 1], resized and cropped as the model's own
        preprocessing would (without its normalisation, which ``encode_image`` applies)."""
        return self._to_pixels(image.convert("RGB"))


def _pooled(output):
    """transformers 5 returns a model output whose pooler_output is projected; 4.x a tensor."""
    return output if hasattr(output, "dim") else output.pooler_output


def library_versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def _identity(spec: str, library: str, folder: Path | None) -> dict:
    record: dict = {"name": spec, "spec": spec, "library": library}
    if folder is not None:
        record.update(folder_digest(folder).as_record())
        record["config_sha256"] = {f.name: file_sha256(f) for f in sorted(folder.glob("*.json"))}
    record["versions"] = library_versions("torch", "open_clip_torch" if library == "open_clip"
                                          else "transformers")
    return record


def _resolve_device(device: str | None):
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def load_clip(spec: str, device: str | None = None) -> LoadedClip:
    """Load the CLIP model named by ``spec`` in eval mode on ``device`` (default: cuda if any)."""
    spec = str(spec)
    if spec.startswith(LOCAL_DIR):
        folder = Path(spec[len(LOCAL_DIR):]).expanduser()
        _require_open_clip_folder(spec, folder)
        return _load_open_clip(spec, f"{LOCAL_DIR}{folder}", folder, device)
    if spec.startswith(HF_HUB):
        _require_online(spec)
        return _load_open_clip(spec, spec, None, device)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if (folder / OPEN_CLIP_CONFIG).is_file():
            _require_open_clip_folder(spec, folder)
            return _load_open_clip(spec, f"{LOCAL_DIR}{folder}", folder, device)
        return _load_transformers(spec, str(folder), folder, device)
    if folder.exists() or spec.startswith((os.sep, ".", "~")) or spec.count("/") > 1:
        raise ClipLoadError(f"{spec}: not a CLIP model folder (neither open_clip nor transformers "
                            "can read it)")
    _require_online(spec)
    return _load_transformers(spec, spec, None, device)


def _require_online(spec: str) -> None:
    from glidemed.modelfiles import hub_online

    if not hub_online():
        raise ClipLoadError(f"{spec}: no such folder, and a hub id cannot be downloaded on this "
                            "offline machine; give the model's local folder instead")


def _require_open_clip_folder(spec: str, folder: Path) -> None:
    if not folder.is_dir():
        raise ClipLoadError(f"{spec}: folder not found")
    config = folder / OPEN_CLIP_CONFIG
    if not config.is_file():
        raise ClipLoadError(f"{spec}: no {OPEN_CLIP_CONFIG} in the folder, so open_clip cannot "
                            "read it")
    try:
        loaded = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ClipLoadError(f"{config}: not valid JSON ({exc})") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("model_cfg"), dict):
        raise ClipLoadError(f"{config}: no 'model_cfg' object, so open_clip cannot read it")
    if not any(f.is_file() and f.suffix in OPEN_CLIP_WEIGHTS for f in folder.iterdir()):
        # open_clip would only warn and go on with random weights.
        raise ClipLoadError(f"{spec}: no weights file (*.safetensors, *.bin, *.pth) in the "
                            "folder, so open_clip would use random weights")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _load_open_clip(spec: str, name: str, folder: Path | None, device: str | None) -> LoadedClip:
    import open_clip
    from torchvision import transforms

    dev = _resolve_device(device)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=dev)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as exc:  # noqa: BLE001 -- any failure of the library is one user message
        raise ClipLoadError(f"{spec}: open_clip cannot read it ({_one_line(exc)})") from None
    model.eval()
    steps = [t for t in preprocess.transforms if not isinstance(t, transforms.Normalize)]
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)

    def tokenize(texts: list[str]) -> dict:
        return {"input_ids": tokenizer(texts)}

    return LoadedClip(spec=spec, library="open_clip", image_size=size,
                      mean=tuple(float(v) for v in model.visual.image_mean),
                      std=tuple(float(v) for v in model.visual.image_std),
                      identity=_identity(spec, "open_clip", folder), device=dev,
                      logit_scale=float(model.logit_scale.detach().exp()), _model=model,
                      _tokenize=tokenize, _to_pixels=transforms.Compose(steps))


def _load_transformers(spec: str, name: str, folder: Path | None, device: str | None) -> LoadedClip:
    if folder is not None and not (folder / "config.json").is_file():
        raise ClipLoadError(f"{spec}: neither open_clip ({OPEN_CLIP_CONFIG}) nor transformers "
                            "(config.json) can read this folder")
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # glidemed shows its own progress
    dev = _resolve_device(device)
    try:
        model = CLIPModel.from_pretrained(name).to(dev)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001
        raise ClipLoadError(f"{spec}: transformers cannot read it as a CLIPModel "
                            f"({_one_line(exc)})") from None
    model.eval()
    size = int(model.config.vision_config.image_size)
    try:
        processor = CLIPImageProcessor.from_pretrained(name)
    except Exception:  # noqa: BLE001 -- no preprocessor_config.json: CLIP's defaults
        processor = CLIPImageProcessor(size={"shortest_edge": size},
                                       crop_size={"height": size, "width": size},
                                       image_mean=list(OPENAI_MEAN), image_std=list(OPENAI_STD))
    max_length = int(model.config.text_config.max_position_embeddings)

    def tokenize(texts: list[str]) -> dict:
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                            return_tensors="pt")
        return {k: encoded[k] for k in ("input_ids", "attention_mask") if k in encoded}

    def to_pixels(image):
        out = processor(images=image, do_normalize=False, return_tensors="pt")
        pixels = out["pixel_values"][0]
        if pixels.shape[-1] != size or pixels.shape[-2] != size:
            pixels = torch.nn.functional.interpolate(pixels[None], size=(size, size),
                                                     mode="bicubic", antialias=True)[0]
        return pixels.clamp(0, 1)

    return LoadedClip(spec=spec, library="transformers", image_size=size,
                      mean=tuple(float(v) for v in processor.image_mean),
                      std=tuple(float(v) for v in processor.image_std),
                      identity=_identity(spec, "transformers", folder), device=dev,
                      logit_scale=float(model.logit_scale.detach().exp()), _model=model,
                      _tokenize=tokenize, _to_pixels=to_pixels)
