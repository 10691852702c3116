"""`glidemed build`: generated images -> blinded survey (build/<study>/survey/) + key (key/).

The survey is assembled in a temporary folder, audited for blinding, and only then
moved into place; a failed or interrupted build never leaves a survey that looks
complete, and the previous one stays until the new one is ready.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from glidemed import __version__, outside_json, paths
from glidemed.errors import SurveyError
from glidemed.fileio import (atomic_path, describe_os_error, sha256_bytes, sha256_file,
                             write_bytes_atomic, write_text_atomic)
from glidemed.generate.runner import verified_images
from glidemed.study import Study
from glidemed.survey.audit import AuditReport, audit_survey, raise_on_problems
from glidemed.survey.images import EXTENSION, MIME, Encoding, common_size, encode_all, encode_image
from glidemed.survey.key import KEY_FILENAME, KEY_SCHEMA, key_problems, key_text, load_key
from glidemed.survey.panels import PanelPlan
from glidemed.survey.randomize import prompt_groups
from glidemed.survey.render import ASSETS, asset_text, page_block, page_data, render_page, survey_context
from glidemed.tasks import get_task

SIZE_WARNING_BYTES = 20_000_000  # what most mail servers accept; the warning without a budget
MIN_QUALITY = 50  # max_file_mb never lowers the image quality below this
BUILD_FILENAME = "build.json"


@dataclass
class BuildReport:
    survey_dir: Path
    key_path: Path
    build_hash: str
    panels: int
    images: int
    size_bytes: int
    single_file: bool
    encoding: Encoding
    left_out: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audit: AuditReport | None = None


def build_survey(study: Study, *, single_file: bool = True, image_format: str | None = None,
                 image_quality: int | None = None, image_size: int | None = None,
                 leave_out_missing: bool = False, new_tokens: bool = False,
                 images_root: Path | None = None, out_dir: Path | None = None,
                 key_folder: Path | None = None, workers: int | None = None) -> BuildReport:
    """Build the survey of ``study`` from its verified images; return what was built.

    Defaults come from the study's [survey] table; the keyword options override them.
    Paths default to build/<study>/images, survey and key.
    """
    images_root = Path(images_root or paths.images_dir(study))
    out_dir = Path(out_dir or paths.survey_dir(study))
    key_folder = Path(key_folder or paths.key_dir(study))
    key_path = key_folder / KEY_FILENAME
    # the options first: a mistake there should not wait for every image to be hashed
    settings = study.survey
    fmt = image_format or settings.image_format
    if fmt not in MIME:
        raise SurveyError(f"image format {fmt!r}: expected jpeg, png or webp")
    quality = image_quality or settings.image_quality
    if not 1 <= quality <= 100:
        raise SurveyError(f"image quality {quality}: expected 1..100")
    if not images_root.is_dir():
        raise SurveyError(f"{images_root}: no images; run `glidemed generate {study.id}` first")
    records = verified_images(images_root)
    old_key = None
    if key_path.exists() and not new_tokens:
        old_key = load_key(key_path)
        if old_key.study_id != study.id:
            raise SurveyError(f"{key_path}: key of study {old_key.study_id!r}, not {study.id!r}")
    plans = []  # (block, its task, its plan), in the survey's order
    for i, block in enumerate(study.survey.blocks):
        task = get_task(block.task)
        old_panels = {t: p for t, p in old_key.panels.items() if p.block == i} if old_key else {}
        plans.append((block, task, task.plan(study, block, records, old_panels,
                                             leave_out_missing=leave_out_missing)))
    plan = _joined(plans)
    used = [im.record for panel in plan.panels for im in panel.images]
    encoding = Encoding(fmt, quality, common_size(used, image_size or settings.image_size))
    files = list(dict.fromkeys(record["file"] for record in used))
    sources = [images_root / f for f in files]
    encoded = encode_all(sources, encoding, workers)
    page = _page(study, plans, dict(zip(files, encoded)), encoding, single_file)
    budget = int(settings.max_file_mb * 1e6) if single_file else 0
    if budget and page.size > budget and fmt != "png":
        for lower in range(quality - 5, MIN_QUALITY - 1, -5):
            smaller = Encoding(fmt, lower, encoding.size)
            if not _may_fit(sources, encoded, smaller, budget, page, workers):
                continue
            fitted = _page(study, plans, dict(zip(files, encode_all(sources, smaller, workers))),
                           smaller, single_file)
            if fitted.size <= budget:
                page, encoding = fitted, smaller
                break
    html, build_hash, blocks, image_bytes = page.html, page.build_hash, page.blocks, page.images

    key = _key(study, plans, blocks, build_hash)
    problems = key_problems(key)
    if problems:  # a bug, not a user mistake; never write a bad key
        raise SurveyError(f"{key_path}: internal error, invalid key: {'; '.join(problems)}")
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    try:
        written = _write_folder(tmp, html, image_bytes, fmt, single_file)
        audit = audit_survey(study, tmp, key, records)
        raise_on_problems(out_dir, audit)
        size = sum(len(data) for data in written.values())
        kept = _keep_previous_key(key_path, build_hash)
        # the key is renamed into place right after the survey, so each matches the other
        with atomic_path(key_path) as key_tmp:
            key_tmp.write_text(key_text(key), encoding="utf-8")
            _swap(tmp, out_dir)
        report = BuildReport(out_dir, key_path, build_hash, len(plan.panels), len(image_bytes),
                             size, single_file, encoding, plan.left_out, audit=audit)
        if encoding.quality != quality:
            report.warnings.append(
                f"image quality lowered from {quality} to {encoding.quality} for every image "
                f"alike, to keep the single file under {settings.max_file_mb:g} MB "
                f"([survey] max_file_mb); host the survey with --folder to keep {quality}")
        if kept:
            report.warnings.append(f"the previous build's key was kept as {kept}: responses "
                                   "to that build need it")
        _write_build_manifest(key_folder / BUILD_FILENAME, study, report, written,
                              leave_out_missing, new_tokens)
    except OSError as exc:
        raise describe_os_error(exc, out_dir, "the survey") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    limit = budget or SIZE_WARNING_BYTES
    if single_file and size > limit:
        report.warnings.append(
            f"{out_dir / 'index.html'} is {size / 1e6:.1f} MB, more than [survey] max_file_mb "
            f"({limit / 1e6:g} MB) even at image quality {encoding.quality}: use --image-format "
            "webp, a smaller --image-size, or host the survey with --folder")
    return report


@dataclass
class _Page:
    html: str
    build_hash: str
    blocks: list[dict]
    images: dict[str, bytes]  # by token, the examples' too
    size: int  # bytes of index.html
    image_part: int  # of which the images' addresses


def _page(study: Study, plans: list, encoded: dict[str, bytes], encoding: Encoding,
          single_file: bool) -> _Page:
    """The survey page of ``plans`` with the images ``encoded`` (by file)."""
    image_bytes = {im.token: encoded[im.record["file"]]
                   for _b, _t, plan in plans for p in plan.panels for im in p.images}
    examples = []
    for example in study.survey.examples:
        data = encode_image(study.folder / example.file, encoding)
        token = "x" + sha256_bytes(data)[:15]
        image_bytes[token] = data
        examples.append({"aspect": example.aspect, "level": example.level,
                         "caption": example.caption, "image": token})
    panels, blocks = [], []
    for block, task, block_plan in plans:
        view = task.view(study, block)
        panels += [{"token": p.token, "text": task.panel_text(study, block, p),
                    "images": [im.token for im in p.images]} for p in block_plan.panels]
        blocks.append(page_block(view, len(block_plan.panels),
                                 prompt_groups([p.prompt.id for p in block_plan.panels]),
                                 task.panels_per_prompt(block)))
    hashed = page_data(study, "", blocks, panels, {t: sha256_bytes(b) for t, b in image_bytes.items()},
                       examples)
    build_hash = sha256_bytes(json.dumps(hashed, sort_keys=True, ensure_ascii=False).encode())
    fmt = encoding.format
    if single_file:
        sources = {t: f"data:{MIME[fmt]};base64,{base64.b64encode(b).decode('ascii')}"
                   for t, b in image_bytes.items()}
    else:
        sources = {t: f"assets/{t}.{EXTENSION[fmt]}" for t in image_bytes}
    data = page_data(study, build_hash, blocks, panels, sources, examples)
    html = render_page(survey_context(data, single_file=single_file))
    return _Page(html, build_hash, blocks, image_bytes, len(html.encode("utf-8")),
                 sum(map(len, sources.values())) if single_file else 0)


def _may_fit(paths: list[Path], encoded: list[bytes], smaller: Encoding,
             budget: int, page: _Page, workers: int | None) -> bool:
    """Whether ``page`` may fit ``budget`` with its images in ``smaller``: the images' part
    is scaled by the ratio of sizes on an even sample of 64 images (checked after)."""
    step = max(1, len(paths) // 64)
    ratio = (sum(map(len, encode_all(paths[::step], smaller, workers)))
             / max(1, sum(map(len, encoded[::step]))))
    return page.size - page.image_part + page.image_part * ratio <= budget * 1.01


def _key(study: Study, plans: list, blocks: list[dict], build_hash: str) -> dict:
    """The key of the build: ``plans`` (block, task, plan) and the page's ``blocks``."""
    panels = {}
    for i, (_block, _task, plan) in enumerate(plans):
        for p in plan.panels:
            entry = {"prompt_id": p.prompt.id, "control": p.control,
                     "images": {im.token: im.record["file"] for im in p.images}, "block": i}
            if p.condition:
                entry["condition"] = p.condition
            else:  # a panel of several conditions (pairwise): each image's
                entry["image_conditions"] = {im.token: im.record["condition"] for im in p.images}
            panels[p.token] = entry
    return {
        "schema": KEY_SCHEMA,
        "study_id": study.id,
        "build_hash": build_hash,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "study_sha256": sha256_file(study.path) if study.path.is_file() else "",
        "conditions": list(dict.fromkeys(c for _b, _t, plan in plans for c in plan.conditions)),
        "blocks": [{"task": b["task"], "images_per_panel": b["images_per_panel"],
                    "repeat_panels": study.survey.repeat_panels, "per_prompt": b["per_prompt"]}
                   for b in blocks],
        "panels": panels,
        "left_out": [x for _b, _t, plan in plans for x in plan.left_out],
    }


def _joined(plans: list) -> PanelPlan:
    """Every block's panels in one plan (what is encoded and audited)."""
    return PanelPlan([p for _b, _t, plan in plans for p in plan.panels],
                     list(dict.fromkeys(c for _b, _t, plan in plans for c in plan.conditions)),
                     [x for _b, _t, plan in plans for x in plan.left_out])


def _keep_previous_key(key_path: Path, build_hash: str) -> Path | None:
    """Copy a key of another build to key/previous/ before it is replaced; never lose one."""
    if not key_path.is_file():
        return None
    data = key_path.read_bytes()
    try:
        old_hash = str(outside_json.loads(data).get("build_hash", ""))
    except (outside_json.OutsideJSONError, AttributeError):
        old_hash = ""
    if old_hash == build_hash:
        return None
    name = old_hash[:16] if re.fullmatch(r"[0-9a-f]{64}", old_hash) else sha256_bytes(data)[:16]
    target = key_path.parent / "previous" / f"key-{name}.json"
    if not target.exists():
        write_bytes_atomic(target, data)
    return target


def _write_folder(folder: Path, html: str, images: dict[str, bytes], fmt: str,
                  single_file: bool) -> dict[str, bytes]:
    """Write the survey into a fresh ``folder``; return its files' bytes by relative path.

    A single file embeds the images in the page; a folder gets them and the scripts in assets/.
    """
    files = {}
    if not single_file:
        files.update({f"assets/{name}": asset_text(name).encode("utf-8") for name in ASSETS})
        files.update({f"assets/{token}.{EXTENSION[fmt]}": data for token, data in images.items()})
    files["index.html"] = html.encode("utf-8")  # written last: it marks a complete folder
    shutil.rmtree(folder, ignore_errors=True)
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def _swap(new: Path, final: Path) -> None:
    """Replace ``final`` by ``new`` with renames only (the old one is removed last)."""
    old = final.with_name(f".{final.name}.{os.getpid()}.old")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _write_build_manifest(path: Path, study: Study, report: BuildReport, files: dict[str, bytes],
                          leave_out_missing: bool, new_tokens: bool) -> None:
    manifest = {
        "schema": "glidemed-build/1",
        "study_id": study.id,
        "build_hash": report.build_hash,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "glidemed": __version__,
        "options": {"single_file": report.single_file, "image_format": report.encoding.format,
                    "image_quality": report.encoding.quality, "image_size": report.encoding.size,
                    "leave_out_missing": leave_out_missing, "new_tokens": new_tokens},
        "panels": report.panels,
        "images": report.images,
        "size_bytes": report.size_bytes,
        "left_out": report.left_out,
        "files": {rel: sha256_bytes(data) for rel, data in files.items()},
    }
    write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

