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
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema
import pandas as pd

from glidemed import outside_json
from glidemed.responses import schema_where
from glidemed.analysis.ratings_table import problems_message, short
from glidemed.errors import GenerationError, ScoringError
from glidemed.outside_json import OutsideJSONError
from glidemed.study import Condition, Study

SCORES_SCHEMA = "glidemed-scores/1"
SCORE_COLUMNS = ["condition", "prompt_id", "index", "metric", "value"]
SET_COLUMNS = ["condition", "style", "metric", "value", "ci_low", "ci_high", "n_images",
               "n_reference", "n_boot", "seed"]
REFERENCE_MAPPING = "images.csv"
MAX_META_BYTES = 1 << 30


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

    Refused with one line: a description that does not match its schema, a file of another
    study, images that are not the study's current ones (``images_dir``: every image of its
    manifest listed with the same SHA-256, and no other), and a table with any bad row (every
    problem at once, with row numbers).
    """
    path = Path(path)
    meta = read_scores_meta(path.with_suffix(".json"))
    if meta["study_id"] != study.id:
        raise ScoringError(f"{path}: scores of study {meta['study_id']!r}, not {study.id!r}")
    if images_dir is not None:
        _check_hashes(study, meta, images_dir, path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ScoringError(f"{path}: scores file not found (run glidemed score first)") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ScoringError(f"{path}: cannot read the scores table ({exc})") from None
    missing = [c for c in SCORE_COLUMNS if c not in raw.columns]
    if missing:
        raise ScoringError(f"{path}: missing column(s) {', '.join(missing)}")
    problems = score_problems(raw, study, meta)
    if problems:
        raise ScoringError(problems_message(path, problems))
    scores = raw[SCORE_COLUMNS].copy()
    scores["index"] = scores["index"].astype(int)
    scores["value"] = [float(v) if v.strip() else math.nan for v in scores["value"]]
    return ScoresFile(scores, meta, path)


def read_scores_meta(meta_path: Path) -> dict:
    """``scores.json`` decoded as outside JSON and checked against its schema."""
    try:
        meta = outside_json.load_file(meta_path, MAX_META_BYTES)
    except OutsideJSONError as exc:
        if not meta_path.exists():
            raise ScoringError(f"{meta_path}: missing; a scores file is read with its "
                               "scores.json (written by glidemed score)") from None
        raise ScoringError(f"not a readable scores description: {exc}") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCORES_SCHEMA:
        raise ScoringError(f"{meta_path}: not a glidemed scores description (schema "
                           f"{short(meta.get('schema') if isinstance(meta, dict) else None)})")
    errors = sorted(_meta_validator().iter_errors(meta), key=lambda e: list(e.absolute_path))
    if errors:
        shown = "; ".join(f"{schema_where(e)}: {e.message[:120]}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ScoringError(f"{meta_path}: does not match the scores schema: {shown}{more}; run "
                           "glidemed score again")
    return meta


def score_problems(raw: pd.DataFrame, study: Study, meta: dict) -> list[str]:
    """Every problem of ``scores.csv`` read as text, in row order (the header is row 1): an
    image that is not one of scores.json (so not a scored image of the study), a metric
    given twice for an image, a value that is neither empty (no value) nor a finite number."""
    conditions = {c.name for c in study.conditions}
    prompts = {p.id for p in study.prompts()}
    listed = {(i["condition"], i["prompt_id"], str(i["index"])) for i in meta["images"]}
    problems, seen = [], {}
    for i, row in enumerate(raw[SCORE_COLUMNS].to_dict(orient="records")):
        number = i + 2
        where = f"row {number}: "
        condition, prompt_id, index = row["condition"], row["prompt_id"], row["index"]
        if condition not in conditions:
            problems.append(f"{where}unknown condition {short(condition)}")
        elif prompt_id not in prompts:
            problems.append(f"{where}unknown prompt_id {short(prompt_id)}")
        elif not (index.isascii() and index.isdigit() and len(index) <= 9):
            problems.append(f"{where}index {short(index)} is not a whole number >= 0")
        elif (condition, prompt_id, str(int(index))) not in listed:
            problems.append(f"{where}image {condition}/{prompt_id}/{index} is not among the "
                            "scored images of scores.json")
        if not row["metric"].strip():
            problems.append(f"{where}empty metric")
        value = row["value"].strip()
        if value and not _finite(value):
            problems.append(f"{where}value {short(value)} is not a finite number")
        ident = (condition, prompt_id, index.lstrip("0") or "0", row["metric"])
        if ident in seen:
            problems.append(f"{where}the same image and metric as row {seen[ident]}")
        else:
            seen[ident] = number
    return problems


def read_set_scores(study: Study, path: Path) -> pd.DataFrame:
    """``set_scores.csv`` (SET_COLUMNS), checked row by row like scores.csv; an empty table
    when there is none."""
    if not path.is_file():
        return pd.DataFrame(columns=SET_COLUMNS)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ScoringError(f"{path}: cannot read the set scores table ({exc})") from None
    missing = [c for c in SET_COLUMNS if c not in raw.columns]
    if missing:
        raise ScoringError(f"{path}: missing column(s) {', '.join(missing)}")
    conditions = {c.name for c in study.conditions}
    styles = {s.key for s in study.styles} | {"all"}
    problems = []
    for i, row in enumerate(raw[SET_COLUMNS].to_dict(orient="records")):
        where = f"row {i + 2}: "
        if row["condition"] not in conditions:
            problems.append(f"{where}unknown condition {short(row['condition'])}")
        if row["style"] not in styles:
            problems.append(f"{where}unknown style {short(row['style'])}")
        if not row["metric"].strip():
            problems.append(f"{where}empty metric")
        for column in ("value", "ci_low", "ci_high"):
            if row[column].strip() and not _finite(row[column]):
                problems.append(f"{where}{column} {short(row[column])} is not a finite number")
        for column in ("n_images", "n_reference", "n_boot", "seed"):
            if not (row[column].isascii() and row[column].isdigit() and len(row[column]) <= 20):
                problems.append(f"{where}{column} {short(row[column])} is not a whole number >= 0")
    if problems:
        raise ScoringError(problems_message(path, problems))
    sets = raw[SET_COLUMNS].copy()
    for column in ("value", "ci_low", "ci_high"):
        sets[column] = [float(v) if v.strip() else math.nan for v in sets[column]]
    for column in ("n_images", "n_reference", "n_boot", "seed"):
        sets[column] = sets[column].astype(int)
    return sets


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


@lru_cache(maxsize=1)
def _meta_validator() -> jsonschema.protocols.Validator:
    text = resources.files("glidemed").joinpath("schemas/scores.schema.json").read_text("utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def _check_hashes(study: Study, meta: dict, images_dir: Path, path: Path) -> None:
    """The scored images must be the manifest's images of the study's prompts, each with the
    same SHA-256: none changed, none missing, none added."""
    from glidemed.generate.manifest import load_manifest

    prompts = {p.id for p in study.prompts()}
    manifest = {(r["condition"], r["prompt_id"], int(r["index"])): r["sha256"]
                for r in load_manifest(images_dir).values() if r["prompt_id"] in prompts}
    scored = {(i["condition"], i["prompt_id"], i["index"]): i["sha256"] for i in meta["images"]}
    changed = [f"{k[0]}/{k[1]}/{k[2]}" + ("" if k in manifest else " (not in the manifest)")
               for k, sha256 in scored.items() if manifest.get(k) != sha256]
    unscored = [f"{k[0]}/{k[1]}/{k[2]}" for k in manifest if k not in scored]
    if changed:
        raise ScoringError(f"{path}: {len(changed)} scored image(s) differ from the manifest in "
                           f"{images_dir}, e.g. {changed[0]}; these scores are of older images: "
                           "run glidemed score again")
    if unscored:
        raise ScoringError(f"{path}: {len(unscored)} image(s) of the manifest in {images_dir} "
                           f"are not among the scored images, e.g. {unscored[0]}; these scores "
                           "are of an older set of images: run glidemed score again")
