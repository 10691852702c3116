"""The generation runner: every prompt x condition x image index, resumable and shardable."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import io
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from glidemed import __version__
from glidemed.errors import GenerationError
from glidemed.fileio import describe_os_error, sha256_bytes, sha256_file, write_bytes_atomic
from glidemed.generate.base import GeneratorContext, ImageJob, chunked
from glidemed.generate.manifest import Key, ManifestWriter, load_manifest
from glidemed.generate.registry import generator_class
from glidemed.study import Study


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based), e.g. ``Shard(2, 4)`` for ``--shard 2/4``."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise GenerationError(f"--shard: expected I/N such as 2/4, got {text!r}") from None
        if not 1 <= index <= count:
            raise GenerationError(f"--shard: expected 1 <= I <= N, got {text!r}")
        return cls(index, count)

    @property
    def tag(self) -> str:
        return "all" if self.count == 1 else f"shard-{self.index}-of-{self.count}"


@dataclass
class RunReport:
    planned: int = 0  # jobs selected by the filters and the shard
    skipped: int = 0  # already present and verified
    made: int = 0
    remade: list[str] = field(default_factory=list)  # recorded, but missing or corrupt on disk
    blanked: list[str] = field(default_factory=list)  # replaced by a model's safety checker
    out_dir: Path = Path()


def image_seed(master_seed: int, condition: str, prompt_id: str, index: int) -> int:
    """A 63-bit seed that depends only on these four values, so any image can be re-made alone."""
    text = f"{master_seed}:{condition}:{prompt_id}:{index}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def plan_jobs(study: Study, conditions: list[str] | None = None, only: list[str] | None = None,
              shard: Shard = Shard()) -> list[ImageJob]:
    """Jobs in study order, grouped by (condition, prompt); a shard takes every Nth group."""
    unknown = sorted(set(conditions or []) - {c.name for c in study.conditions})
    if unknown:
        raise GenerationError(f"--condition: unknown condition(s) {', '.join(unknown)} in "
                              f"{study.path} (known: {', '.join(c.name for c in study.conditions)})")
    prompts = study.prompts()
    jobs = []
    group = 0
    for condition in study.conditions:
        for prompt in prompts:
            in_shard = group % shard.count == shard.index - 1
            group += 1
            if not in_shard or (conditions and condition.name not in conditions):
                continue
            if only and not any(fnmatch.fnmatchcase(prompt.id, pattern) for pattern in only):
                continue
            for index in range(study.images_per_prompt):
                # the variants of a prompt share their seeds: they differ in their text only
                seed = image_seed(study.seed, condition.name, prompt.seed_id or prompt.id, index)
                jobs.append(ImageJob(prompt, condition, index, seed))
    return jobs


def is_verified(record: dict | None, out_dir: Path) -> bool:
    """True when the manifest record's file exists and still has its recorded hash."""
    if record is None:
        return False
    path = out_dir / record["file"]
    try:
        return path.is_file() and sha256_file(path) == record["sha256"]
    except OSError:
        return False


def software_versions() -> dict:
    import PIL

    return {"python": platform.python_version(), "glidemed": __version__, "pillow": PIL.__version__}


def encode_png(image) -> bytes:
    """PNG bytes without metadata, identical for identical pixels."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue()


def run_generation(study: Study, out_dir: Path, *, conditions: list[str] | None = None,
                   only: list[str] | None = None, limit: int | None = None,
                   shard: Shard = Shard(), context: GeneratorContext | None = None,
                   progress: bool = True) -> RunReport:
    """Render every selected image not already present and verified; return counts.

    Images are written to a temporary file and renamed, then recorded in this shard's
    manifest file, so an interrupted run leaves only complete images and records.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    context = context or GeneratorContext(study=study)
    jobs = plan_jobs(study, conditions, only, shard)
    report = RunReport(planned=len(jobs), out_dir=out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = load_manifest(out_dir)
    except OSError as exc:
        raise describe_os_error(exc, out_dir, "the images folder") from None
    todo = [job for job in jobs if not is_verified(manifest.get(job.key), out_dir)]
    report.skipped = len(jobs) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    report.remade = [manifest[job.key]["file"] for job in todo if job.key in manifest]
    if not todo:
        return report
    base_versions = software_versions()
    try:
        writer = ManifestWriter(out_dir, shard.tag)
    except OSError as exc:
        raise describe_os_error(exc, out_dir, "the manifest in") from None
    with writer, tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not progress,
                      desc=f"generate {study.id}") as bar:
        by_condition: dict[str, list[ImageJob]] = {}
        for job in todo:
            by_condition.setdefault(job.condition.name, []).append(job)
        for condition_jobs in by_condition.values():
            condition = condition_jobs[0].condition
            generator = generator_class(condition.generator)(condition, context)
            described = generator.describe()
            versions = {**base_versions, **described.get("versions", {})}
            for batch in chunked(condition_jobs, generator.batch_size):
                started = time.perf_counter()
                for job, image, info in generator.render(batch):
                    seconds = time.perf_counter() - started
                    _save(job, image, info, out_dir, writer, described, versions, seconds)
                    if info.get("blanked"):
                        report.blanked.append(job.relpath)
                    started = time.perf_counter()
                    report.made += 1
                    bar.update(1)
                writer.sync()
    return report


def _save(job: ImageJob, image, info: dict, out_dir: Path, writer: ManifestWriter,
          described: dict, versions: dict, seconds: float) -> None:
    path = out_dir / job.relpath
    data = encode_png(image)
    try:
        write_bytes_atomic(path, data)
        record = {
            "prompt_id": job.prompt.id,
            "text": job.prompt.text,
            **({"negative": job.prompt.negative} if job.prompt.negative else {}),
            "condition": job.condition.name,
            "index": job.index,
            "seed": job.seed,
            "generator": job.condition.generator,
            "params": described.get("params", {}),
            "file": job.relpath,
            "sha256": sha256_bytes(data),
            "width": image.width,
            "height": image.height,
            "seconds": round(seconds, 4),
            "versions": versions,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        record.update(info)
        writer.append(record)
    except OSError as exc:
        raise describe_os_error(exc, path, "image") from None


def verified_images(images_dir: Path) -> dict[Key, dict]:
    """Manifest records whose files are present and intact, for later stages."""
    return {key: rec for key, rec in load_manifest(images_dir).items()
            if is_verified(rec, images_dir)}
