"""The unblinding key (build/<study>/key/key.json): panel token -> prompt, condition, images.

Format "glidemed-key/1"::

    {"schema": "glidemed-key/1", "study_id": ..., "build_hash": <64 hex>, "created": ...,
     "study_sha256": ..., "conditions": [...],
     "blocks": [{"task", "images_per_panel", "repeat_panels", "per_prompt"}],  (the page's
         blocks in order; older keys have one block's "images_per_panel", "repeat_panels"
         and "task" at the top, or nothing)
     "panels": {<panel token>: {"prompt_id", "condition", "control", "block": index,
                                "images": {<image token>: <file under images/>}}},
         (a panel of several conditions, e.g. pairwise, has "image_conditions":
          {<image token>: condition} instead of "condition")
     "left_out": [{"prompt_id", "condition", "reason"}]}

The key stays with the investigator; it never enters the survey folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from glidemed import outside_json
from glidemed.errors import SurveyError
from glidemed.fileio import write_text_atomic

KEY_SCHEMA = "glidemed-key/1"
KEY_FILENAME = "key.json"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def write_key(path: str | Path, key: dict) -> None:
    """Write ``key`` atomically after checking it (a bad key must never be written)."""
    problems = key_problems(key)
    if problems:
        raise SurveyError(f"{path}: refusing to write an invalid key: {'; '.join(problems)}")
    write_text_atomic(path, key_text(key))


def key_text(key: dict) -> str:
    """The key as written to key.json."""
    return json.dumps(key, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def key_problems(key: object) -> list[str]:
    """Everything wrong with a key's structure; empty when valid."""
    if not isinstance(key, dict):
        return ["expected a JSON object"]
    problems = []
    if key.get("schema") != KEY_SCHEMA:
        problems.append(f"schema: expected {KEY_SCHEMA!r}, got {key.get('schema')!r}")
    for name in ("study_id", "created", "study_sha256"):
        if not isinstance(key.get(name), str):
            problems.append(f"{name}: expected a string")
    if not isinstance(key.get("build_hash"), str) or not HASH_RE.match(key["build_hash"]):
        problems.append("build_hash: expected 64 lower-case hex digits")
    for name in ("images_per_panel", "repeat_panels"):
        value = key.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"{name}: expected a whole number >= 0")
    blocks = key.get("blocks", [{}])
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        problems.append("blocks: expected a list of block objects")
        blocks = [{}]
    for i, block in enumerate(blocks):
        for name in ("images_per_panel", "repeat_panels", "per_prompt"):
            value = block.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"blocks[{i}].{name}: expected a whole number >= 0")
    conditions = key.get("conditions")
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        problems.append("conditions: expected a list of names")
        conditions = []
    panels = key.get("panels")
    if not isinstance(panels, dict):
        return problems + ["panels: expected an object"]
    seen_images: set[str] = set()
    for token, panel in panels.items():
        where = f"panels.{token}"
        if not TOKEN_RE.match(token):
            problems.append(f"{where}: not a valid token")
        if not isinstance(panel, dict):
            problems.append(f"{where}: expected an object")
            continue
        if not isinstance(panel.get("prompt_id"), str):
            problems.append(f"{where}.prompt_id: expected a string")
        by_image = panel.get("image_conditions")
        if by_image is None and panel.get("condition") not in conditions:
            problems.append(f"{where}.condition: {panel.get('condition')!r} not in conditions")
        elif by_image is not None and (not isinstance(by_image, dict) or any(
                c not in conditions for c in by_image.values())
                or set(by_image) != set(panel.get("images") or {})):
            problems.append(f"{where}.image_conditions: expected each image's condition")
        block = panel.get("block", 0)
        if not isinstance(block, int) or isinstance(block, bool) or not 0 <= block < len(blocks):
            problems.append(f"{where}.block: expected a block index 0..{len(blocks) - 1}")
        if not isinstance(panel.get("control"), bool):
            problems.append(f"{where}.control: expected true or false")
        images = panel.get("images")
        if not isinstance(images, dict) or not images:
            problems.append(f"{where}.images: expected a non-empty object")
            continue
        for image_token, file in images.items():
            if not TOKEN_RE.match(image_token) or not isinstance(file, str):
                problems.append(f"{where}.images.{image_token}: expected token -> file name")
            elif image_token in seen_images or image_token in panels:
                problems.append(f"{where}.images.{image_token}: token used twice")
            seen_images.add(image_token)
    left_out = key.get("left_out")
    if not isinstance(left_out, list) or not all(
            isinstance(x, dict) and {"prompt_id", "condition", "reason"} <= set(x) for x in left_out):
        problems.append("left_out: expected a list of {prompt_id, condition, reason}")
    return problems


def load_key(path: str | Path) -> dict:
    """Read and validate a key file; raise SurveyError naming the file and every problem."""
    path = Path(path)
    try:
        key = outside_json.loads(path.read_bytes())
    except FileNotFoundError:
        raise SurveyError(f"{path}: key not found; build the survey first (glidemed build)") from None
    except OSError as exc:
        raise SurveyError(f"{path}: cannot read the key: {exc.strerror or exc}") from None
    except outside_json.OutsideJSONError as exc:
        raise SurveyError(f"{path}: cannot read the key: {exc}") from None
    problems = key_problems(key)
    if problems:
        shown = "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else "")
        raise SurveyError(f"{path}: invalid key, {len(problems)} problem(s): {shown}")
    return key
