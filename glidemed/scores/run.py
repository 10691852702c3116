"""`glidemed score`: automated scores of a study's images into build/<study>/scores/.

Every input (models, reference mapping, Inception weights) is checked before any image is
embedded. Embeddings are cached per scorer and image SHA-256 (``cache/``), so an interrupted
run resumes where it stopped; the three result files are written atomically at the end.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from glidemed import __version__
from glidemed.errors import ScoringError
from glidemed.fileio import describe_os_error, write_text_atomic
from glidemed.scores.cache import EmbeddingCache
from glidemed.scores.inputs import (SCORE_COLUMNS, SCORES_SCHEMA, SET_COLUMNS, ScoredImage,
                                    reference_images, study_images)
from glidemed.scores.registry import Scorer, make_scorers
from glidemed.scores.setmetrics import MIN_SET_SIZE, bootstrap_set_metric
from glidemed.study import Study

ALL_STYLES = "all"


@dataclass
class ScoreReport:
    out_dir: Path
    images: int = 0
    reference: int = 0
    embedded: int = 0  # image x scorer embeddings computed in this run (others were cached)
    rows: int = 0
    set_rows: int = 0
    notes: list[str] = field(default_factory=list)


def run_scoring(study: Study, clip: list[str] | tuple[str, ...] = (), *,
                images_dir: Path | None = None, out_dir: Path | None = None,
                reference: Path | None = None, fid: bool = False,
                inception_weights: Path | None = None, inception_module: Any = None,
                device: str | None = None, batch_size: int = 32, n_boot: int = 200,
                seed: int = 0, progress: bool = True,
                scorers: list[Scorer] | None = None) -> ScoreReport:
    """Score every verified image of the study with each CLIP model in ``clip`` (and, with a
    ``reference`` folder, CMMD per model and, with ``fid``, FID and KID) per condition and
    style. ``scorers``: CLIP scorers already loaded (make_scorers), instead of ``clip``.
    ``inception_module`` replaces the Inception network (any module of the same
    shape of input and output). Returns counts and notes."""
    from glidemed.paths import images_dir as default_images, scores_dir

    images_dir = Path(images_dir) if images_dir is not None else default_images(study)
    out = Path(out_dir) if out_dir is not None else scores_dir(study)
    fid = fid or inception_weights is not None or inception_module is not None
    if not clip and not fid and not scorers:
        raise ScoringError("nothing to score: give --clip MODEL (repeatable) and/or --fid with "
                           "--reference DIR")
    if fid and reference is None:
        raise ScoringError("--fid: FID and KID compare the images with real ones; give the "
                           "reference folder with --reference DIR")
    if batch_size < 1:
        raise ScoringError(f"--batch-size: expected at least 1, got {batch_size}")
    images, notes = study_images(study, images_dir)
    refs = reference_images(study, reference) if reference is not None else []
    # the cheap checks of the Inception weights come before loading any CLIP model
    requests = [("inception", {"weights": inception_weights, "module": inception_module})] if fid else []
    scorers = (make_scorers(requests, device) if requests else []) + (
        scorers if scorers is not None
        else make_scorers([("clip", {"spec": spec}) for spec in clip], device))
    report = ScoreReport(out, len(images), len(refs), notes=notes)
    try:
        caches = {s.cache_key: EmbeddingCache(out / "cache" / s.cache_key) for s in scorers}
        report.embedded = _embed_all(study, scorers, caches, images + refs, batch_size, progress)
    except OSError as exc:
        raise describe_os_error(exc, out / "cache", "the embedding cache in") from None
    rows = _image_rows(study, scorers, caches, images)
    set_rows = _set_rows(scorers, caches, images, refs, n_boot, seed, report.notes) if refs else []
    report.notes = list(dict.fromkeys(report.notes))
    meta = _meta(study, scorers, images, refs, reference, n_boot, seed, report.notes)
    scores = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    sets = pd.DataFrame(set_rows, columns=SET_COLUMNS)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "set_scores.csv", sets.to_csv(index=False))
        write_text_atomic(out / "scores.csv", scores.to_csv(index=False))
        write_text_atomic(out / "scores.json", json.dumps(meta, indent=1, ensure_ascii=False))
    except OSError as exc:
        raise describe_os_error(exc, out, "the scores in") from None
    report.rows, report.set_rows = len(scores), len(sets)
    return report


def _embed_all(study: Study, scorers: list[Scorer], caches: dict[str, EmbeddingCache],
               images: list[ScoredImage], batch_size: int, progress: bool) -> int:
    """Embed every image a scorer's cache lacks, in batches; returns embeddings computed."""
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    todo = [im for im in dict((im.sha256, im) for im in images).values()
            if any(im.sha256 not in caches[s.cache_key] for s in scorers)]
    made = 0
    with tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not progress,
              desc=f"score {study.id}") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            pil = []
            for image in batch:
                try:
                    with Image.open(image.path) as opened:
                        pil.append(opened.convert("RGB"))
                except (OSError, UnidentifiedImageError) as exc:
                    raise ScoringError(f"{image.path}: unreadable image ({exc})") from None
            for scorer in scorers:
                cache = caches[scorer.cache_key]
                wanted = [i for i, im in enumerate(batch) if im.sha256 not in cache]
                if wanted:
                    features = scorer.embed([pil[i] for i in wanted])
                    cache.add([batch[i].sha256 for i in wanted], features)
                    made += len(wanted)
            bar.update(len(batch))
    return made


def _image_rows(study: Study, scorers: list[Scorer], caches: dict[str, EmbeddingCache],
                images: list[ScoredImage]) -> list[tuple]:
    rows = []
    prompt_ids = [im.prompt_id for im in images]
    for scorer in scorers:
        features = caches[scorer.cache_key].matrix([im.sha256 for im in images])
        for metric, values in scorer.image_metrics(study, prompt_ids, features).items():
            rows.extend((im.condition, im.prompt_id, im.index, metric, float(v))
                        for im, v in zip(images, values))
    return rows


def _set_rows(scorers: list[Scorer], caches: dict[str, EmbeddingCache], images: list[ScoredImage],
              refs: list[ScoredImage], n_boot: int, seed: int, notes: list[str]) -> list[dict]:
    """Each set metric per condition and style (and over all styles) against the reference
    images of that style."""
    rows = []
    conditions = list(dict.fromkeys(im.condition for im in images))
    styles = list(dict.fromkeys(im.style for im in images))
    for scorer in scorers:
        cache = caches[scorer.cache_key]
        for metric, function in scorer.set_metrics().items():
            for condition in conditions:
                for style in [*styles, ALL_STYLES]:
                    fake = [im.sha256 for im in images if im.condition == condition
                            and style in (ALL_STYLES, im.style)]
                    real = [im.sha256 for im in refs if style in (ALL_STYLES, im.style)]
                    if min(len(fake), len(real)) < MIN_SET_SIZE:
                        if fake:
                            notes.append(f"{condition}/{style}: {len(real)} reference and "
                                         f"{len(fake)} generated image(s); set metrics need "
                                         f"{MIN_SET_SIZE} of each")
                        continue
                    value, low, high = bootstrap_set_metric(function, cache.matrix(real),
                                                            cache.matrix(fake), n_boot, seed)
                    rows.append({"condition": condition, "style": style, "metric": metric,
                                 "value": value, "ci_low": low, "ci_high": high,
                                 "n_images": len(fake), "n_reference": len(real),
                                 "n_boot": n_boot, "seed": seed})
    return rows


def _meta(study: Study, scorers: list[Scorer], images: list[ScoredImage], refs: list[ScoredImage],
          reference: Path | None, n_boot: int, seed: int, notes: list[str]) -> dict:
    from glidemed.clipmodels import library_versions

    def listing(items: list[ScoredImage]) -> list[dict]:
        return [{"condition": im.condition, "prompt_id": im.prompt_id, "index": im.index,
                 "file": im.file, "sha256": im.sha256} for im in items]

    return {
        "schema": SCORES_SCHEMA,
        "study_id": study.id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "glidemed": __version__,
        "models": [s.identity for s in scorers],
        "options": {"reference": str(reference) if reference else None, "bootstrap": n_boot,
                    "seed": seed},
        "versions": library_versions("torch", "numpy", "open_clip_torch", "transformers",
                                     "torchmetrics"),
        "notes": notes,
        "images": listing(images),
        "reference_images": listing(refs),
    }
