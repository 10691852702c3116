"""Contact sheets and paper figures from generated images, for the investigator only.

Works for any generator: it reads the images and their manifest records. Writes PNGs
under ``build/<study>/sheets/`` (never into the survey):

- ``contact/<condition>/<prompt id>.png``: all images of one prompt under one condition;
- ``overview-<condition>.png``: one image per style x topic (like Kather et al., Fig. 1);
- ``compare/<prompt id>.png``: the conditions side by side for one prompt (Fig. 2B-E).

Every sheet carries a caption with its prompt and condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from glidemed.errors import GlidemedError
from glidemed.fileio import describe_os_error, write_bytes_atomic
from glidemed.generate.runner import encode_png, verified_images
from glidemed.study import Study

CELL = 256  # largest thumbnail edge in pixels
GAP = 6
MARGIN = 10
LABEL_WIDTH = 150  # row labels of the overview and comparison sheets
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MAX_COLUMNS = 8


@dataclass
class SheetReport:
    sheets: list[tuple[Path, str]] = field(default_factory=list)  # (file, caption)
    out_dir: Path = Path()


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, font, width: int) -> list[str]:
    """Lines of ``text`` no wider than ``width`` pixels (long words are kept whole)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if line and font.getlength(trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def _caption_band(text: str, width: int, size: int = 15) -> Image.Image:
    font = _font(size)
    lines = _wrap(text, font, width - 2 * MARGIN)
    line_height = size + 5
    band = Image.new("RGB", (width, MARGIN * 2 + line_height * len(lines)), BACKGROUND)
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + i * line_height), line, fill=INK, font=font)
    return band


def _thumb(path: Path, cell: int) -> Image.Image:
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except OSError as exc:
        raise GlidemedError(f"cannot read image {path}: {exc}") from None
    if max(image.size) > cell:
        image.thumbnail((cell, cell))
    return image


def _grid(rows: list[tuple[str, list[Image.Image | None]]], cell: int,
          column_labels: list[str] | None = None) -> Image.Image:
    """Rows of thumbnails with optional row labels (left) and column labels (top)."""
    label_width = LABEL_WIDTH if any(label for label, _ in rows) else 0
    columns = max(len(images) for _, images in rows)
    small = _font(12)
    header = 0
    if column_labels:
        header = max(len(_wrap(label, small, cell)) for label in column_labels) * 16 + GAP
    width = MARGIN * 2 + label_width + columns * (cell + GAP) - GAP
    height = MARGIN * 2 + header + len(rows) * (cell + GAP) - GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(column_labels or []):
        x = MARGIN + label_width + c * (cell + GAP)
        for i, line in enumerate(_wrap(label, small, cell)):
            draw.text((x, MARGIN + i * 16), line, fill=INK, font=small)
    for r, (label, images) in enumerate(rows):
        y = MARGIN + header + r * (cell + GAP)
        for i, line in enumerate(_wrap(label, small, label_width - GAP)):
            draw.text((MARGIN, y + i * 16), line, fill=INK, font=small)
        for c, image in enumerate(images):
            x = MARGIN + label_width + c * (cell + GAP)
            if image is None:
                draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=(180, 180, 180))
                draw.text((x + 6, y + 6), "no image", fill=(150, 150, 150), font=small)
            else:
                sheet.paste(image, (x + (cell - image.width) // 2, y + (cell - image.height) // 2))
    return sheet


def _captioned(grid: Image.Image, caption: str) -> Image.Image:
    band = _caption_band(caption, grid.width)
    sheet = Image.new("RGB", (grid.width, band.height + grid.height), BACKGROUND)
    sheet.paste(band, (0, 0))
    sheet.paste(grid, (0, band.height))
    return sheet


def make_sheets(study: Study, images_dir: Path, out_dir: Path, *, cell: int = CELL) -> SheetReport:
    """Write contact sheets, style x topic overviews and condition comparisons as PNG."""
    records = verified_images(Path(images_dir))
    if not records:
        raise GlidemedError(f"no generated images in {images_dir}: run `glidemed generate "
                            f"{study.id}` first")
    report = SheetReport(out_dir=Path(out_dir))
    prompts = study.prompts()
    conditions = [c for c in study.conditions if any(k[0] == c.name for k in records)]

    by_prompt: dict[tuple[str, str], list[Path]] = {}
    for key in sorted(records):
        by_prompt.setdefault(key[:2], []).append(Path(images_dir) / records[key]["file"])

    def label(condition) -> str:
        return f"{condition.name} ({condition.label})" if condition.label else condition.name

    def save(image: Image.Image, relpath: str, caption: str) -> None:
        path = report.out_dir / relpath
        try:
            write_bytes_atomic(path, encode_png(image))
        except OSError as exc:
            raise describe_os_error(exc, path, "sheet") from None
        report.sheets.append((path, caption))

    # Each prompt's images are read once, for its contact sheets and its comparison.
    for prompt in prompts:
        thumbs: dict[str, list[Image.Image]] = {}
        for condition in conditions:
            paths = by_prompt.get((condition.name, prompt.id), [])
            if not paths:
                continue
            thumbs[condition.name] = [_thumb(p, cell) for p in paths]
            rows = [("", thumbs[condition.name][i:i + MAX_COLUMNS])
                    for i in range(0, len(paths), MAX_COLUMNS)]
            caption = (f"Prompt {prompt.id}: \"{prompt.text}\"\nCondition: {label(condition)}; "
                       f"{len(paths)} image(s)")
            save(_captioned(_grid(rows, cell), caption),
                 f"contact/{condition.name}/{prompt.id}.png", caption)
        if len(thumbs) < 2:
            continue  # nothing to compare
        rows = [(label(c), thumbs.get(c.name, [None])[:MAX_COLUMNS]) for c in conditions]
        caption = (f"Prompt {prompt.id}: \"{prompt.text}\"\nConditions side by side: "
                   + "; ".join(label(c) for c in conditions))
        save(_captioned(_grid(rows, cell), caption), f"compare/{prompt.id}.png", caption)

    # Overview: the first prompt (in study order) of each style x topic that has an image.
    for condition in conditions:
        first: dict[tuple[str, str], Path] = {}
        for prompt in prompts:
            paths = by_prompt.get((condition.name, prompt.id))
            if paths:
                first.setdefault((prompt.style, prompt.topic), paths[0])
        rows = []
        for style in study.styles:
            row = []
            for topic in study.topics:
                found = first.get((style.key, topic.key))
                row.append(_thumb(found, cell // 2) if found else None)
            rows.append((style.label or style.key, row))
        caption = (f"Overview, condition: {label(condition)}. One image per style (rows) x "
                   "topic (columns): the first image of the first prompt of each pair")
        grid = _grid(rows, cell // 2, column_labels=[t.short or t.key for t in study.topics])
        save(_captioned(grid, caption), f"overview-{condition.name}.png", caption)
    return report
