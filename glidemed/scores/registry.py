"""The scorer families: what turns images into features, and the metrics of those features.

A scorer embeds images (``embed``: PIL images -> features) and names the metrics it gives:
per image (``image_metrics``, from the features and the prompts) and per set of images
(``set_metrics``, from generated and reference features). A new metric family is a new
scorer class here, registered in ``FAMILIES``: the runner makes every scorer through
:func:`make_scorers`, so it needs no change.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from glidemed.clipmodels import library_versions
from glidemed.errors import ScoringError
from glidemed.modelfiles import file_sha256
from glidemed.scores.cache import identity_key
from glidemed.scores.clipscores import clip_image_metrics
from glidemed.scores.setmetrics import SET_METRICS, SetMetric
from glidemed.study import Study

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
INCEPTION_SIDE = 299
TEXT_BATCH = 64


class Scorer(Protocol):
    family: str
    name: str
    identity: dict

    @property
    def cache_key(self) -> str: ...

    def embed(self, images: list) -> np.ndarray: ...

    def image_metrics(self, study: Study, prompt_ids: list[str], features: np.ndarray
                      ) -> dict[str, np.ndarray]: ...

    def set_metrics(self) -> dict[str, SetMetric]: ...


def clip_name(spec: str) -> tuple[str, str]:
    """(metric name, model spec) from ``NAME=SPEC`` or a bare spec (the folder's or id's
    last part)."""
    name, sep, rest = spec.partition("=")
    if sep and NAME_RE.match(name) and rest:
        return name, rest
    tail = spec.split(":", 1)[1] if spec.startswith(("local-dir:", "hf-hub:")) else spec
    name = Path(tail.rstrip("/\\")).name or tail
    if not NAME_RE.match(name):
        raise ScoringError(f"--clip {spec}: cannot name the model from it; write NAME=SPEC with "
                           "a name of letters, digits, '.', '_' or '-'")
    return name, spec


class ClipScorer:
    """One CLIP model: CLIPScore, zero-shot style, retrieval per image; CMMD per set."""

    family = "clip"

    def __init__(self, spec: str, device: str | None = None):
        from glidemed.clipmodels import load_clip

        self.name, model_spec = clip_name(spec)
        self.clip = load_clip(model_spec, device)
        self.identity = {**self.clip.identity, "name": self.name, "family": self.family,
                         "image_size": self.clip.image_size, "logit_scale": self.clip.logit_scale}

    @property
    def cache_key(self) -> str:
        return f"clip-{self.name}-{identity_key(self.identity)}"

    def embed(self, images: list) -> np.ndarray:
        import torch

        pixels = torch.stack([self.clip.preprocess(image) for image in images])
        with torch.inference_mode():
            return self.clip.encode_image(pixels).cpu().numpy()

    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        import torch

        parts = []
        with torch.inference_mode():
            for i in range(0, len(texts), TEXT_BATCH):
                parts.append(self.clip.encode_text(texts[i:i + TEXT_BATCH]).cpu().numpy())
        return np.concatenate(parts)

    def image_metrics(self, study: Study, prompt_ids: list[str], features: np.ndarray
                      ) -> dict[str, np.ndarray]:
        prompts = study.prompts()
        text = dict(zip([p.id for p in prompts], self.text_embeddings([p.text for p in prompts])))
        metrics = clip_image_metrics(study, prompt_ids, features, text, self.clip.logit_scale)
        return {f"{metric}:{self.name}": values for metric, values in metrics.items()}

    def set_metrics(self) -> dict[str, SetMetric]:
        return {f"cmmd:{self.name}": SET_METRICS["cmmd"]}


class InceptionScorer:
    """The Inception network of FID and KID (torchmetrics), from a local weights file, or any
    module that maps uint8 N x 3 x 299 x 299 images to N x D features (as torchmetrics takes)."""

    family = "inception"
    name = "inception"

    def __init__(self, weights: Path | None = None, module: Any = None, device: str | None = None):
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if module is None:
            module = self._load(weights)
            self.identity = {"name": "inception-v3-compat", "family": self.family,
                             "weights": str(weights), "weights_sha256": file_sha256(weights),
                             "versions": library_versions("torch", "torchmetrics", "torch-fidelity")}
        else:
            digest = hashlib.sha256()
            for key, value in sorted(module.state_dict().items()):
                digest.update(key.encode() + value.detach().cpu().numpy().tobytes())
            self.identity = {"name": type(module).__qualname__, "family": self.family,
                             "parameters_sha256": digest.hexdigest(),
                             "versions": library_versions("torch", "torchmetrics")}
        self.module = module.to(self.device).eval()

    @staticmethod
    def _load(weights: Path | None):
        if weights is None:
            raise ScoringError("FID/KID need the Inception weights, which cannot be downloaded "
                               "here: give --inception-weights FILE (torch-fidelity's "
                               "pt_inception-2015-12-05-6726825d.pth)")
        weights = Path(weights)
        if not weights.is_file():
            raise ScoringError(f"{weights}: Inception weights file not found (--inception-weights)")
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                      feature_extractor_weights_path=str(weights))
        except ModuleNotFoundError as exc:
            raise ScoringError(f"FID/KID need {exc.name}: pip install 'glidemed[scores]'") from None
        except Exception as exc:  # noqa: BLE001 -- a bad file is one user message
            text = " ".join(str(exc).split())[:200]
            raise ScoringError(f"{weights}: not usable Inception weights ({text})") from None

    @property
    def cache_key(self) -> str:
        return f"inception-{identity_key(self.identity)}"

    def embed(self, images: list) -> np.ndarray:
        import torch
        from PIL import Image

        arrays = [np.asarray(im.convert("RGB").resize((INCEPTION_SIDE, INCEPTION_SIDE),
                                                      Image.BILINEAR)) for im in images]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous().to(self.device)
        with torch.inference_mode():
            features = self.module(batch)
        return features.reshape(len(images), -1).double().cpu().numpy()

    def image_metrics(self, study: Study, prompt_ids: list[str], features: np.ndarray
                      ) -> dict[str, np.ndarray]:
        return {}

    def set_metrics(self) -> dict[str, SetMetric]:
        return {"fid": SET_METRICS["fid"], "kid": SET_METRICS["kid"]}


FAMILIES = {"clip": ClipScorer, "inception": InceptionScorer}


def make_scorers(requests: list[tuple[str, dict]], device: str | None = None) -> list[Scorer]:
    """One scorer per ``(family, options)`` request, in order, made by its class in
    :data:`FAMILIES`; two scorers of one name are refused (their metrics would clash)."""
    scorers: list[Scorer] = []
    for family, options in requests:
        if family not in FAMILIES:
            raise ScoringError(f"unknown scorer family {family!r} (known: {', '.join(FAMILIES)})")
        scorer = FAMILIES[family](**options, device=device)
        if any(s.name == scorer.name for s in scorers):
            raise ScoringError(f"--{family} {options.get('spec', '')}: a second model named "
                               f"{scorer.name!r}; name them apart with NAME=SPEC")
        scorers.append(scorer)
    return scorers
