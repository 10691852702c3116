"""The blinding audit: does anything in the built survey give away a panel's condition?

It looks for condition names and labels, generator names, generation parameter values
(text values; numbers where they differ between conditions), image seeds, the study's
master seed (when it has four or more digits), source file names and the key's image
paths, as whole words, in:

- every file name under the survey folder;
- the page (its HTML, the JSON data block, inlined or separate JS and CSS);
- every image, which must be free of metadata (no EXIF, XMP, ICC, comments or PNG text
  chunks: only the segments needed to decode the pixels), whose text outside the pixel
  data is searched too (printable runs, for terms of 4 characters or more; the JPEG
  format's own 'JFIF' name excepted), and which must all share one format and size; real (control) images must also share
  the generated ones' encoding (JPEG frame, sampling and quantisation tables, PNG depth
  and colour type, WebP chunk kind).

A page exactly as glidemed renders it from its data block is glidemed's text plus the
study's settings (images per panel, repeats, post_url), which are compared with the
study rather than searched; so conditions named '1', '2' or 'glidemed' are no leak by
themselves. A forbidden term that occurs in glidemed's own page text or file names
(a condition named 'survey') cannot be told from a coincidence there: the problem then
says which name to change.

Texts the study shows raters by design (title, instructions, scales, prompts) are not
leaks: the audit checks that such fields hold exactly the study's own text and skips
them. Words of glidemed's own page code (survey.js, survey.css, the template) are
skipped only where that code is unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from glidemed import outside_json
from glidemed.errors import SurveyError
from glidemed.generate.manifest import load_manifest
from glidemed.paths import images_dir, key_dir, survey_dir
from glidemed.study import Study
from glidemed.survey.key import KEY_FILENAME, TOKEN_RE, SurveyKey, load_key
from glidemed.survey.render import (ASSETS, PAGE_SCHEMA, PUBLIC_FIELDS, TEMPLATE, asset_text,
                                    public_strings, reading_settings, render_page, survey_context,
                                    template_dir)
from glidemed.survey.encoding import encoding_problems

DATA_OPEN = '<script type="application/json" id="survey-data">'
INLINE = {"survey.js": ('<script id="survey-js">', "</script>"),
          "survey.css": ('<style id="survey-css">', "</style>")}
MIN_IMAGE_TERM = 4
IMAGE_NAME = re.compile(r"^assets/([A-Za-z0-9_-]{4,64})\.(jpg|png|webp)$")


@dataclass(frozen=True)
class Term:
    """Something that must not appear: its lower-case text and what it is."""

    text: str
    what: str


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    images: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def forbidden_terms(study: Study, records: dict, key_files=()) -> list[Term]:
    """Condition names and labels, generators, parameter values, seeds, and ``key_files``
    (the image files of the key)."""
    terms: dict[str, str] = {}

    def add(value, what: str, min_len: int = 3) -> None:
        text = str(value).strip().lower()
        if len(text) >= min_len and text not in terms:
            terms[text] = what

    for cond in study.conditions:
        add(cond.name, "condition name", 1)
        add(cond.label, "condition label")
        add(cond.generator, "generator name", 1)
    param_values: dict[str, set[str]] = {}
    for params in [c.params for c in study.conditions] + [r.get("params", {}) for r in records.values()]:
        for name, value in flat_params(params):
            param_values.setdefault(name, set()).add(json.dumps(value))
            if isinstance(value, str):
                add(value, f"parameter value ({name})")
                add(Path(value).name, f"parameter value ({name})")
    for cond in study.conditions:  # numbers only where they tell conditions apart
        for name, value in flat_params(cond.params):
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and len(param_values.get(name, ())) > 1:
                add(value, f"parameter value ({name})")
    if len(str(study.seed)) >= 4:
        add(study.seed, "study seed")
    for record in records.values():
        add(record.get("generator", ""), "generator name", 1)
        add(record.get("seed", ""), "image seed")
        if record.get("source"):
            add(Path(record["source"]).name, "source file name", 5)
    for file in key_files:
        add(file, "image file of the key")
    return [Term(text, what) for text, what in terms.items()]


def flat_params(params: dict, prefix: str = ""):
    """(dotted name, value) of every leaf of nested parameter tables (e.g. clip_guidance.clip)."""
    for name, value in params.items():
        if isinstance(value, dict):
            yield from flat_params(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            for item in value:
                yield f"{prefix}{name}", item
        else:
            yield f"{prefix}{name}", value


class Scanner:
    """Finds terms in texts as whole words (not inside a longer word or number)."""

    def __init__(self, terms: list[Term]):
        self.words = {t.text: t for t in terms if re.fullmatch(r"[a-z0-9]+", t.text)}
        # other terms, indexed by their first word: only texts holding it are searched
        self.phrases: dict[str, list[Term]] = {}
        for term in terms:
            if term.text not in self.words:
                first = (re.findall(r"[a-z0-9]+", term.text) or [""])[0]
                self.phrases.setdefault(first, []).append(term)

    def find(self, text: str, exempt: str = "") -> list[Term]:
        low = text.lower()
        exempt = exempt.lower()
        words = set(re.findall(r"[a-z0-9]+", low))
        hits = [self.words[w] for w in words if w in self.words]
        for first in words | {""}:
            for term in self.phrases.get(first, ()):
                if term.text in low and re.search(
                        r"(?<![a-z0-9.])" + re.escape(term.text) + r"(?![a-z0-9]|\.[0-9])", low):
                    hits.append(term)
        return [t for t in hits if not (exempt and re.search(
            r"(?<![a-z0-9])" + re.escape(t.text) + r"(?![a-z0-9])", exempt))]


Shape = tuple[str, int, int]  # format, width, height


def image_problems(data: bytes) -> tuple[list[str], bytes]:
    """Metadata found in an image's container, and its non-pixel bytes (to search)."""
    problems, header, _ = image_structure(data)
    return problems, header


def image_structure(data: bytes) -> tuple[list[str], bytes, Shape | None]:
    """Metadata problems, non-pixel bytes and shape, read from the container alone."""
    try:
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        return ["truncated or broken image structure"], b"", None
    return ["not a JPEG, PNG or WebP image"], b"", None


def _jpeg(data: bytes) -> tuple[list[str], bytes, Shape | None]:
    allowed = {0xDB, 0xC0, 0xC1, 0xC2, 0xC4, 0xDD}
    problems, header, i, shape = [], bytearray(), 2, None
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return problems + [f"broken JPEG structure at byte {i}"], bytes(header), shape
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        body = data[i + 4:i + 2 + length]
        header += body
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", body[1:5])
            shape = ("JPEG", width, height)
        if marker == 0xDA:  # start of scan: pixel data follows
            return problems, bytes(header), shape
        if marker == 0xE0 and body.startswith(b"JFIF\0"):
            header[len(header) - len(body):] = body[5:]  # the format's fixed name is no leak
        elif marker not in allowed:
            name = "comment" if marker == 0xFE else f"APP{marker - 0xE0}" if 0xE0 <= marker <= 0xEF \
                else f"marker 0x{marker:02X}"
            problems.append(f"JPEG metadata segment ({name})")
        i += 2 + length
    return problems + ["JPEG without image data"], bytes(header), shape


def _png(data: bytes) -> tuple[list[str], bytes, Shape | None]:
    problems, header, i = [], bytearray(), 8
    shape = ("PNG", *struct.unpack(">II", data[16:24]))
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind not in (b"IHDR", b"PLTE", b"IDAT", b"IEND"):
            problems.append(f"PNG metadata chunk ({kind.decode('latin-1')})")
        if kind != b"IDAT":
            header += data[i + 8:i + 8 + length]
        i += 12 + length
    return problems, bytes(header), shape


def _webp(data: bytes) -> tuple[list[str], bytes, Shape | None]:
    problems, header, i, shape = [], bytearray(), 12, None
    while i + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[i:i + 8])
        body = data[i + 8:i + 8 + length]
        if kind == b"VP8X":
            w, h = int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1
            shape = ("WEBP", w, h)
        elif kind == b"VP8 " and shape is None:
            w, h = struct.unpack("<HH", body[6:10])
            shape = ("WEBP", w & 0x3FFF, h & 0x3FFF)
        elif kind == b"VP8L" and shape is None:
            bits = int.from_bytes(body[1:5], "little")
            shape = ("WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        if kind not in (b"VP8 ", b"VP8L", b"VP8X", b"ALPH"):
            problems.append(f"WebP metadata chunk ({kind.decode('latin-1').strip()})")
            header += data[i + 8:i + 8 + length]
        elif kind == b"VP8X" and data[i + 8] & 0b00101100:
            problems.append("WebP header announces ICC, EXIF or XMP metadata")
        i += 8 + length + (length & 1)
    return problems, bytes(header), shape


def header_text(header: bytes) -> str:
    """The runs of printable text (4 characters or more) in an image's non-pixel bytes:
    where a name written into the file would be; the binary tables between them hold
    short 'words' by chance."""
    return "\n".join(run.decode("ascii") for run in re.findall(rb"[\x20-\x7e]{4,}", header))


def _own_text() -> str:
    """glidemed's own page text and file names: a condition name found in them is too
    common to tell a leak from a coincidence."""
    from glidemed.survey.texts import languages, page_texts

    return "\n".join([(template_dir() / TEMPLATE).read_text(encoding="utf-8"),
                      *(asset_text(a) for a in ASSETS), PAGE_SCHEMA, "index.html",
                      *(f"assets/{a}" for a in ASSETS),
                      *(text for code in languages() for text in page_texts(code).values())]).lower()


def _structural(study: Study) -> dict:
    """Page data fields that hold the study's settings, not text: compared, not searched."""
    return {"schema": PAGE_SCHEMA, **reading_settings(study)}


def _decode_data_uri(uri: str) -> bytes | None:
    match = re.fullmatch(r"data:image/(jpeg|png|webp);base64,([A-Za-z0-9+/=]+)", uri)
    if not match:
        return None
    try:
        return base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        return None


def _between(text: str, start: str, end: str) -> tuple[str | None, str]:
    """The text between markers and the text with that part removed."""
    i = text.find(start)
    if i < 0:
        return None, text
    j = text.find(end, i + len(start))
    if j < 0:
        return None, text
    return text[i + len(start):j], text[:i] + text[j + len(end):]


def audit_survey(study: Study, survey_dir: Path, key: SurveyKey | dict, records: dict) -> AuditReport:
    """Audit a built survey folder against the study, its key and its manifest records."""
    key = SurveyKey.of(key)
    survey_dir = Path(survey_dir)
    report = AuditReport()
    terms = forbidden_terms(study, records, [f for p in key.panels.values() for f in p.images.values()])
    scanner = Scanner(terms)
    # Image bytes: only terms of MIN_IMAGE_TERM characters or more are searched; shorter
    # ones turn up by chance in the binary tables, and every segment that can carry text
    # (EXIF, XMP, comments, PNG text) is a problem of its own.
    image_scanner = Scanner([t for t in terms if len(t.text) >= MIN_IMAGE_TERM])
    own = _own_text()
    common = {t.text for t in terms if Scanner([t]).find(own)}

    def leak(where: str, hits: list[Term]) -> None:
        for term in hits:
            hint = ""
            if term.text in common:
                what = "condition" if term.what == "condition name" else term.what
                hint = (f" ({term.text!r} is too common to tell from glidemed's own text: "
                        f"rename {what} {term.text!r} in the study file)")
            report.problems.append(f"{where}: contains {term.what} {term.text!r}{hint}")

    index = survey_dir / "index.html"
    if not index.is_file():
        return AuditReport([f"{index}: missing"])
    files = sorted(p for p in survey_dir.rglob("*") if p.is_file())
    shipped = {name: asset_text(name) for name in ASSETS}
    report.files = len(files)
    asset_images: dict[str, bytes] = {}
    for path in files:
        rel = path.relative_to(survey_dir).as_posix()
        leak(f"file name {rel}", scanner.find(rel))
        if rel == "index.html":
            continue
        if rel in (f"assets/{a}" for a in ASSETS):
            original = shipped[rel.split("/")[1]]
            text = path.read_text(encoding="utf-8", errors="replace")
            if text != original:
                leak(rel, scanner.find(text, exempt=original))
        elif IMAGE_NAME.match(rel):
            asset_images[rel] = path.read_bytes()
        else:
            report.problems.append(f"{rel}: unexpected file in the survey folder")

    html = index.read_text(encoding="utf-8", errors="replace")
    data_text, chrome = _between(html, DATA_OPEN, "</script>")
    single_file = False
    for name, (start, end) in INLINE.items():
        inline, chrome = _between(chrome, start, end)
        single_file = single_file or inline is not None
        if inline is not None and inline != shipped[name]:
            leak(f"index.html (inline {name})", scanner.find(inline, exempt=shipped[name]))
    if not _rendered_by_glidemed(html, data_text, single_file):
        template = (template_dir() / TEMPLATE).read_text(encoding="utf-8")
        leak("index.html", scanner.find(chrome, exempt=template))
    if re.search(r"data:[a-z]+/[a-z0-9.+-]+[;,]", chrome, re.IGNORECASE):
        report.problems.append("index.html: embedded data outside the survey's data block")
    if data_text is None:
        report.problems.append("index.html: no survey data block found")
        return report
    try:
        data = outside_json.loads(data_text)
    except outside_json.OutsideJSONError as exc:
        report.problems.append(f"index.html: survey data block is not usable JSON ({exc})")
        return report
    if not _page_shaped(data):
        report.problems.append("index.html: survey data block is not shaped like glidemed's "
                               "(an object with a list of panel objects and image sources as text)")
        return report

    prompt_texts = [p.text for p in study.prompts()]
    public = public_strings(study, prompt_texts)
    public |= {t.strip() for t in public}
    public_numbers = {e.level for e in study.survey.examples}
    for name, expected in _structural(study).items():
        if name in data and data[name] != expected:
            report.problems.append(f"index.html (data.{name}): {str(data[name])[:80]!r} is not "
                                   f"the study's {str(expected)[:80]!r}")
    report.problems += _block_number_problems(study, key, data.get("blocks"))
    strings: list[tuple[str, str]] = []  # (where, text) to scan
    _collect({k: v for k, v in data.items()
              if not (k in _structural(study) and v == _structural(study)[k])},
             "data", strings, public, report, public_numbers)
    for where, text in strings:
        leak(f"index.html ({where})", scanner.find(text))

    if data.get("build_hash") != key.build_hash:
        report.problems.append("index.html: build hash differs from the key's (stale build?)")
    key_images = {t for p in key.panels.values() for t in p.images}
    page_panels = data.get("panels", [])
    if {p.get("token") for p in page_panels} != set(key.panels):
        report.problems.append("index.html: panel tokens differ from the key's")
    for panel in page_panels:
        extra = set(panel) - {"token", "text", "images"}
        if extra:
            report.problems.append(f"index.html: panel {panel.get('token')} has extra fields {sorted(extra)}")
        if not TOKEN_RE.match(str(panel.get("token", ""))):
            report.problems.append(f"index.html: panel token {panel.get('token')!r} is not opaque")

    shapes: dict[tuple, list[str]] = {}
    shown: dict[str, bytes] = {}
    for token, src in data.get("images", {}).items():
        where = f"image {token}"
        if not TOKEN_RE.match(token):
            report.problems.append(f"index.html: image token {token!r} is not opaque")
        if src.startswith("data:"):
            image = _decode_data_uri(src)
            if image is None:
                report.problems.append(f"{where}: not a base64 JPEG, PNG or WebP data URI")
                continue
        elif src in asset_images:
            image = asset_images.pop(src)
        else:
            report.problems.append(f"{where}: {src!r} is neither embedded nor in assets/")
            continue
        report.images += 1
        shown[token] = image
        problems, header, shape = image_structure(image)
        report.problems += [f"{where}: {p}" for p in problems]
        leak(where, image_scanner.find(header_text(header)))
        if token in key_images:
            shapes.setdefault(shape, []).append(token)
    if len(shapes) > 1:
        summary = ", ".join(f"{s[0]} {s[1]}x{s[2]} ({len(t)})" if s else f"unreadable ({len(t)})"
                            for s, t in shapes.items())
        report.problems.append(f"panel images differ in format or size: {summary}")
    for rel in asset_images:
        report.problems.append(f"{rel}: image not used by the page")
    report.problems += encoding_problems(key, shown)
    return report


def _page_shaped(data) -> bool:
    """Whether page data has the structure the audit walks (a hand-edited page may not)."""
    if not isinstance(data, dict):
        return False
    panels, images = data.get("panels", []), data.get("images", {})
    return (isinstance(panels, list) and all(isinstance(p, dict) for p in panels)
            and isinstance(images, dict) and all(isinstance(s, str) for s in images.values()))


def _rendered_by_glidemed(html: str, data_text: str | None, single_file: bool) -> bool:
    """Whether the page is exactly what glidemed renders from its own data block: then its
    text outside that block is glidemed's and the study's settings, not a leak."""
    if data_text is None:
        return False
    try:
        data = outside_json.loads(data_text)
        return render_page(survey_context(data, single_file=single_file)) == html
    except (ValueError, KeyError, TypeError, AttributeError, SurveyError):
        return False


def _collect(value, where: str, out: list, public: set[str], report: AuditReport,
             public_numbers: set = frozenset()) -> None:
    """Strings and numbers of the page data to scan; public fields are checked, not scanned."""
    if isinstance(value, dict):
        for name, item in value.items():
            if where == "data" and name == "images":
                continue  # audited as images
            if where == "data" and name in PUBLIC_FIELDS:
                _public(item, name, PUBLIC_FIELDS[name], out, public, report, public_numbers)
            else:
                _collect(item, f"{where}.{name}", out, public, report, public_numbers)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _collect(item, f"{where}[{i}]", out, public, report, public_numbers)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        out.append((where, str(value)))


BLOCK_NUMBERS = ("first_value", "images_per_panel", "panels", "per_prompt", "groups")


def _block_number_problems(study: Study, key: SurveyKey, blocks) -> list[str]:
    """The page's blocks against the study and the key: their number and how their panels
    are drawn (those numbers are compared here, not searched for names)."""
    from glidemed.tasks import block_views

    views = block_views(study)
    if not isinstance(blocks, list) or len(blocks) != len(views):
        return [f"index.html (data.blocks): not the study's {len(views)} block(s)"]
    problems = []
    for i, (block, view, keyed) in enumerate(zip(blocks, views, key.blocks)):
        expected = {"first_value": view.first_value, "images_per_panel": view.images_per_panel,
                    "panels": len(keyed.tokens), "per_prompt": keyed.per_prompt,
                    "groups": keyed.groups(key) if keyed.per_prompt else []}
        for name, value in expected.items():
            given = block.get(name) if isinstance(block, dict) else None
            if given != value:
                problems.append(f"index.html (data.blocks[{i}].{name}): {str(given)[:80]!r} is "
                                f"not the study's {str(value)[:80]!r}")
    return problems


def _whole_numbers(value) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _public(item, name: str, subkeys, out: list, public: set[str], report: AuditReport,
            public_numbers: set = frozenset()) -> None:
    def check(text, where: str) -> None:
        if isinstance(text, str) and text and text.strip() not in public:
            report.problems.append(f"index.html ({where}): text not from the study: {text[:80]!r}")
            out.append((where, text))
        elif not isinstance(text, str):
            _collect(text, where, out, public, report)

    if subkeys is None:
        check(item, f"data.{name}")
        return
    for i, entry in enumerate(item if isinstance(item, list) else []):
        where = f"data.{name}[{i}]"
        if not isinstance(entry, dict):
            _collect(entry, where, out, public, report)
            continue
        for sub, value in entry.items():
            if sub in subkeys:
                for text in value if isinstance(value, list) else [value]:
                    check(text, f"{where}.{sub}")
            elif name == "blocks" and sub in ("aspects", "flags"):
                _public(value, sub, PUBLIC_FIELDS[sub], out, public, report, public_numbers)
            elif name == "blocks" and sub in BLOCK_NUMBERS and _whole_numbers(value):
                continue  # how the block's panels are drawn: settings, not text
            elif name == "examples" and sub == "level" and value in public_numbers:
                continue  # the scale level an example shows: the study's own setting
            elif name == "examples" and sub == "image" and TOKEN_RE.match(str(value)):
                continue  # an opaque token
            else:
                _collect(value, f"{where}.{sub}", out, public, report)


def audit_blinding(study: Study) -> AuditReport:
    """Audit build/<study>/survey/ with the key and manifest; raise SurveyError on any leak."""
    folder = survey_dir(study)
    if not (folder / "index.html").is_file():
        raise SurveyError(f"{folder}: no built survey; run `glidemed build {study.id}` first")
    key = load_key(key_dir(study) / KEY_FILENAME)
    report = audit_survey(study, folder, key, load_manifest(images_dir(study)))
    raise_on_problems(folder, report)
    return report


def raise_on_problems(folder: Path, report: AuditReport) -> None:
    if report.problems:
        shown = "; ".join(report.problems[:30])
        more = f"; ... and {len(report.problems) - 30} more" if len(report.problems) > 30 else ""
        raise SurveyError(f"{folder}: blinding audit failed, {len(report.problems)} problem(s): "
                          f"{shown}{more}")
