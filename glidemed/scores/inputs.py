"""What ``glidemed score`` reads and writes: scored images, the reference set, the scores files.

``scores.csv`` holds one row per image and metric (``condition, prompt_id, index, metric,
value``); ``set_scores.csv`` one row per set-level metric, condition and style; and
``scores.json`` the identity of every model, the options and the SHA-256 of every scored
image, so that scores of images that have since changed are never joined to ratings.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glidemed.errors import GenerationError, ScoringError
from glidemed.study import Condition, Study

SCORES_SCHEMA = "glidemed-scores/1"
SCORE_COLUMNS = ["condition", "prompt_id", "index", "metric", "value"]
SET_COLUMNS = ["condition", "style", "metric", "value", "ci_low", "ci_high", "n_images",
               "n_reference", "n_boot", "seed"]
REFERENCE_MAPPING = "images.csv"


@dataclass(frozen=True)
class ScoredImage:
    """One image to score: where it is, what it shows, and its SHA-256."""

    condition: str
    prompt_id: str
    index: int
    style: str
    path: Path
    file: str  # as the manifest (or the reference mapping) names it
    sha256: str


def study_images(study: Study, images_dir: Path) -> tuple[list[ScoredImage], list[str]]:
    """The verified images of the manifest in study order, and notes on what was left out."""
    from glidemed.generate.runner import verified_images

    prompts = {p.id: p for p in study.prompts()}
    records = verified_images(images_dir)
    if not records:
        raise ScoringError(f"{images_dir}: no generated images with a manifest; run glidemed "
                           "generate first (or give the folder with --images)")
    order = {p: i for i, p in enumerate(prompts)}
    conditions = {c.name: i for i, c in enumerate(study.conditions)}
    images, unknown = [], []
    for (condition, prompt_id, index), record in records.items():
        if prompt_id not in prompts:
            unknown.append(f"{condition}/{prompt_id}/{index}")
            continue
        images.append(ScoredImage(condition, prompt_id, index, prompts[prompt_id].style,
                                  images_dir / record["file"], record["file"], record["sha256"]))
    images.sort(key=lambda im: (conditions.get(im.condition, 1 << 30), im.condition,
                                order[im.prompt_id], im.index))
    notes = [f"{len(unknown)} image(s) of prompts no longer in the study left out, e.g. "
             f"{unknown[0]}"] if unknown else []
    return images, notes


def reference_images(study: Study, folder: Path) -> list[ScoredImage]:
    """Real images of ``folder``, mapped to prompts by its ``images.csv`` exactly as the
    ``folder`` generator reads it (columns ``file,prompt_id[,condition,index]``); any number of
    images per prompt. Unknown prompts, missing or unreadable files: one error naming them."""
    from glidemed.fileio import sha256_file
    from glidemed.generate.base import GeneratorContext
    from glidemed.generate.folder import FolderGenerator

    folder = Path(folder).resolve()
    mapping = folder / REFERENCE_MAPPING
    if not folder.is_dir():
        raise ScoringError(f"{folder}: reference folder not found")
    if not mapping.is_file():
        raise ScoringError(f"{mapping}: no mapping CSV in the reference folder (columns: "
                           "file,prompt_id[,condition,index], as for the folder generator)")
    name = _single_condition(mapping)
    condition = Condition(name=name, generator="folder",
                          params={"folder": str(folder), "mapping": REFERENCE_MAPPING,
                                  "partial": True})
    unlimited = dataclasses.replace(study, images_per_prompt=1 << 30)
    try:
        files = FolderGenerator(condition, GeneratorContext(study=unlimited)).files
    except GenerationError as exc:
        raise ScoringError(f"reference: {exc.message}") from None
    styles = {p.id: p.style for p in study.prompts()}
    return [ScoredImage("reference", prompt_id, index, styles[prompt_id], path,
                        path.relative_to(folder).as_posix(), sha256_file(path))
            for (prompt_id, index), path in sorted(files.items())]


def _single_condition(mapping: Path) -> str:
    """The mapping's one condition name (every row is used), or 'reference' without one."""
    try:
        with open(mapping, newline="", encoding="utf-8-sig") as handle:
            names = {(row.get("condition") or "").strip() for row in csv.DictReader(handle)}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScoringError(f"{mapping}: cannot read the mapping CSV: {exc}") from None
    names.discard("")
    if len(names) > 1:
        raise ScoringError(f"{mapping}: the reference mapping names {len(names)} conditions "
                           f"({', '.join(sorted(names))}); a reference folder holds one set")
    return names.pop() if names else "reference"


@dataclass
class ScoresFile:
    """scores.csv read back with its scores.json, checked against the study."""

    scores: pd.DataFrame  # SCORE_COLUMNS
    meta: dict
    path: Path


def read_scores(study: Study, path: str | Path, images_dir: Path | None = None) -> ScoresFile:
    """Read ``scores.csv`` (and ``scores.json`` beside it) for ``study``.

    Refused with one line: a file of another study, and a file whose images' SHA-256 differ
    from the study's current manifest (``images_dir``), since those scores are of old images.
    """
    path = Path(path)
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoringError(f"{meta_path}: missing; a scores file is read with its scores.json "
                           "(written by glidemed score)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ScoringError(f"{meta_path}: not a readable scores description ({exc})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCORES_SCHEMA:
        raise ScoringError(f"{meta_path}: not a glidemed scores description (schema "
                           f"{meta.get('schema') if isinstance(meta, dict) else None!r})")
    if meta.get("study_id") != study.id:
        raise ScoringError(f"{path}: scores of study {meta.get('study_id')!r}, not {study.id!r}")
    try:
        scores = pd.read_csv(path, dtype={"condition": str, "prompt_id": str, "metric": str})
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ScoringError(f"{path}: cannot read the scores table ({exc})") from None
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ScoringError(f"{path}: missing column(s) {', '.join(missing)}")
    if images_dir is not None:
        _check_hashes(meta, images_dir, path)
    return ScoresFile(scores[SCORE_COLUMNS], meta, path)


def _check_hashes(meta: dict, images_dir: Path, path: Path) -> None:
    from glidemed.generate.manifest import load_manifest

    manifest = {(r["condition"], r["prompt_id"], int(r["index"])): r["sha256"]
                for r in load_manifest(images_dir).values()}
    images = meta.get("images")
    try:
        keys = [((i["condition"], i["prompt_id"], int(i["index"])), i["sha256"], i["file"])
                for i in images]
    except (TypeError, KeyError, ValueError):
        raise ScoringError(f"{path.with_suffix('.json')}: its list of scored images is missing "
                           "or malformed; run glidemed score again") from None
    changed = []
    for key, sha256, _ in keys:
        if key not in manifest:
            changed.append(f"{key[0]}/{key[1]}/{key[2]} (no longer in the manifest)")
        elif manifest[key] != sha256:
            changed.append(f"{key[0]}/{key[1]}/{key[2]}")
    if changed:
        raise ScoringError(f"{path}: {len(changed)} scored image(s) differ from the manifest in "
                           f"{images_dir}, e.g. {changed[0]}; these scores are of older images: "
                           "run glidemed score again")
