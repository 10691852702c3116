"""The 'folder' generator: import images made elsewhere (another model, real references).

Parameters: ``folder`` (relative to the study file) and ``mapping``, a CSV inside or
beside it with columns ``file,prompt_id`` and optionally ``condition`` and ``index``.
Rows whose condition differs from this condition's name are ignored; without an
index column, images are numbered per prompt in row order. Missing, extra, unreadable
and unmapped files are all reported by name before anything is imported.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from glidemed.errors import GenerationError
from glidemed.fileio import sha256_file
from glidemed.generate.base import GeneratorContext, ImageJob
from glidemed.generate.registry import unknown_or_mistyped
from glidemed.study import Condition

PARAMS = {"folder": str, "mapping": str, "partial": bool}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


class FolderGenerator:
    batch_size = 32

    def __init__(self, condition: Condition, context: GeneratorContext):
        study = context.study
        self.condition = condition
        self.folder = (study.folder / condition.params["folder"]).resolve()
        self.mapping_path = self.folder / condition.params.get("mapping", "images.csv")
        # partial: prompts may have fewer images than images_per_prompt (e.g. controls)
        self.partial = bool(condition.params.get("partial", False))
        self.files = self._read_mapping({p.id for p in study.prompts()},
                                        study.images_per_prompt)

    @staticmethod
    def check_params(params: dict) -> list[str]:
        problems = unknown_or_mistyped(params, PARAMS)
        if "folder" not in params:
            problems.append("folder: missing; expected the folder of images to import")
        return problems

    def describe(self) -> dict:
        return {"params": {"folder": str(self.folder), "mapping": str(self.mapping_path),
                           "partial": self.partial},
                "versions": {}}

    def _read_mapping(self, prompt_ids: set[str], per_prompt: int) -> dict[tuple[str, int], Path]:
        where = self.mapping_path
        if not where.is_file():
            raise GenerationError(f"{where}: mapping CSV not found for condition "
                                  f"{self.condition.name!r} (columns: file,prompt_id[,condition,index])")
        try:
            with open(where, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                columns = set(reader.fieldnames or [])
                rows = [(reader.line_num, row) for row in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise GenerationError(f"{where}: cannot read the mapping CSV: {exc}") from None
        missing_cols = {"file", "prompt_id"} - columns
        if missing_cols:
            raise GenerationError(f"{where}: missing column(s) {', '.join(sorted(missing_cols))}")
        problems: list[str] = []
        files: dict[tuple[str, int], Path] = {}
        mapped: set[Path] = set()
        counters: dict[str, int] = {}
        for line, row in rows:
            # A short row leaves its last cells None.
            name = (row["file"] or "").strip()
            path = (self.folder / name).resolve()
            if name:
                mapped.add(path)
            condition = (row.get("condition") or "").strip()
            if condition and condition != self.condition.name:
                continue
            if not name:
                problems.append(f"line {line}: no file given")
                continue
            prompt_id = (row["prompt_id"] or "").strip()
            if prompt_id not in prompt_ids:
                problems.append(f"line {line}: unknown prompt id {prompt_id!r}")
                continue
            index_text = (row.get("index") or "").strip()
            if index_text:
                try:
                    index = int(index_text)
                except ValueError:
                    problems.append(f"line {line}: index {index_text!r} is not an integer")
                    continue
            else:
                index = counters.get(prompt_id, 0)
            counters[prompt_id] = max(counters.get(prompt_id, 0), index + 1)
            if not 0 <= index < per_prompt:
                problems.append(f"line {line}: index {index} outside 0..{per_prompt - 1}")
            elif (prompt_id, index) in files:
                problems.append(f"line {line}: second image for {prompt_id} index {index}")
            elif not path.is_file():
                problems.append(f"line {line}: missing file {name}")
            else:
                files[(prompt_id, index)] = path
        for path in files.values():
            try:
                with Image.open(path) as image:
                    image.verify()
            except (OSError, UnidentifiedImageError, SyntaxError) as exc:
                problems.append(f"unreadable image {self._name(path)} ({exc})")
        extra = sorted(self._name(p) for p in self.folder.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in mapped)
        if extra:
            problems.append(f"files not in the mapping: {', '.join(extra)}")
        if problems:
            raise GenerationError(f"{where}: {len(problems)} problem(s) importing condition "
                                  f"{self.condition.name!r}: " + "; ".join(problems))
        return files

    def _name(self, path: Path) -> str:
        """A file as the mapping names it: relative to the folder."""
        return Path(os.path.relpath(path, self.folder)).as_posix()

    def render(self, jobs: list[ImageJob]):
        absent = [f"{j.prompt.id} index {j.index}" for j in jobs
                  if (j.prompt.id, j.index) not in self.files]
        if absent and not self.partial:
            raise GenerationError(f"{self.mapping_path}: no image mapped for "
                                  f"{', '.join(absent)} (set partial = true in the condition's "
                                  "params if these prompts have no images on purpose)")
        for job in jobs:
            path = self.files.get((job.prompt.id, job.index))
            if path is None:
                continue
            try:
                with Image.open(path) as image:
                    image.load()
                    rgb = image.convert("RGB")
            except (OSError, UnidentifiedImageError) as exc:
                raise GenerationError(f"{path}: unreadable image ({exc})") from None
            yield job, rgb, {"source": str(path), "source_sha256": sha256_file(path)}
