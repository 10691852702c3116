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
from dataclasses import dataclass, field
from pathlib import Path

from glidemed import outside_json
from glidemed.errors import SurveyError
from glidemed.fileio import write_text_atomic

KEY_SCHEMA = "glidemed-key/1"
KEY_FILENAME = "key.json"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class KeyPanel:
    """One panel of the key: its prompt, its images (token -> file under images/) and
    their conditions."""

    token: str
    prompt_id: str
    images: dict[str, str]
    condition: str = ""  # the panel's one condition; "" for a panel of several (pairwise)
    control: bool = False
    block: int = 0
    image_conditions: dict[str, str] = field(default_factory=dict)

    def condition_of(self, image: str) -> str:
        """The condition of one of the panel's image tokens."""
        return self.image_conditions.get(image, self.condition)


@dataclass(frozen=True)
class KeyBlock:
    """One block of the survey as the key records it, with its panels in the page's order."""

    task: str
    images_per_panel: int
    repeat_panels: int
    per_prompt: int  # panels of one prompt each rater sees (0: all)
    tokens: list[str]  # the block's panels, in the page's order (by token)

    def panel_images(self, key: "SurveyKey") -> list[list[str]]:
        return [sorted(key.panels[t].images) for t in self.tokens]

    def groups(self, key: "SurveyKey") -> list[int]:
        """Each panel's prompt, numbered by first appearance (what per_prompt limits)."""
        from glidemed.survey.randomize import prompt_groups

        return prompt_groups([key.panels[t].prompt_id for t in self.tokens])


@dataclass(frozen=True)
class SurveyKey:
    """The unblinding key of one build, typed (the module docstring gives its file form)."""

    study_id: str
    build_hash: str
    created: str
    study_sha256: str
    conditions: list[str]
    blocks: list[KeyBlock]
    panels: dict[str, KeyPanel]
    left_out: list[dict]
    data: dict = field(repr=False, compare=False)  # as read or written

    @classmethod
    def of(cls, key: "SurveyKey | dict", images_per_panel: int = 1, repeat_panels: int = 0) -> "SurveyKey":
        """``key`` as a record; a dict must be a valid key (see :func:`key_problems`). Keys
        written before blocks (one block) take ``images_per_panel`` and ``repeat_panels``
        from the key, else from the arguments."""
        if isinstance(key, SurveyKey):
            return key
        panels = {t: KeyPanel(t, p["prompt_id"], dict(p["images"]), p.get("condition", ""),
                              bool(p.get("control", False)), p.get("block", 0),
                              dict(p.get("image_conditions", {})))
                  for t, p in key["panels"].items()}
        described = key.get("blocks") or [{
            "task": key.get("task", "ratings"),
            "images_per_panel": key.get("images_per_panel", images_per_panel),
            "repeat_panels": key.get("repeat_panels", repeat_panels)}]
        blocks = [KeyBlock(b.get("task", "ratings"), b.get("images_per_panel", images_per_panel),
                           b.get("repeat_panels", repeat_panels), b.get("per_prompt", 0),
                           sorted(t for t, p in panels.items() if p.block == i))
                  for i, b in enumerate(described)]
        return cls(key.get("study_id", ""), key["build_hash"], key.get("created", ""),
                   key.get("study_sha256", ""), list(key.get("conditions", [])), blocks, panels,
                   list(key.get("left_out", [])), key)

    @property
    def tasks(self) -> list[str]:
        return [b.task for b in self.blocks]

    @property
    def page_tokens(self) -> list[str]:
        """Every panel token in the page's order: block by block, by token within a block."""
        return [t for b in self.blocks for t in b.tokens]

    def block_of(self, token: str) -> int:
        return self.panels[token].block

    def plan(self, rater: str) -> list[dict]:
        """The order, images and repeats the page gives ``rater``: [{'token', 'repeat',
        'images'}] (:func:`glidemed.survey.randomize.blocks_plan`)."""
        from glidemed.survey.randomize import blocks_plan

        tokens = self.page_tokens
        plan = blocks_plan(self.build_hash, rater, [
            {"panel_images": b.panel_images(self), "images_per_panel": b.images_per_panel,
             "repeat_panels": b.repeat_panels, "groups": b.groups(self), "per_group": b.per_prompt}
            for b in self.blocks])
        return [{"token": tokens[p["panel"]], "repeat": p["repeat"], "images": p["images"]}
                for p in plan]


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


def load_key(path: str | Path) -> SurveyKey:
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
    return SurveyKey.of(key)
