"""The panel plan: one panel per prompt x condition, with opaque tokens that survive rebuilds.

A panel token stands for (prompt, condition) and an image token for one image file;
neither says anything about the condition. Tokens of an existing key are reused so that
responses already returned stay valid; ``new_tokens`` draws fresh ones.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from glidemed.errors import SurveyError
from glidemed.study import Prompt, Study

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 12


@dataclass(frozen=True)
class PlannedImage:
    token: str
    record: dict  # the generation manifest record of the image


@dataclass(frozen=True)
class PlannedPanel:
    token: str
    prompt: Prompt
    condition: str
    control: bool
    images: list[PlannedImage]  # sorted by token, so their order reveals nothing


@dataclass
class PanelPlan:
    panels: list[PlannedPanel]  # sorted by token
    conditions: list[str]
    left_out: list[dict] = field(default_factory=list)  # {prompt_id, condition, reason}


def survey_conditions(study: Study) -> list[str]:
    """The conditions rated in the survey: the chosen ones (default all) plus controls."""
    chosen = study.survey.conditions or [c.name for c in study.conditions]
    return list(dict.fromkeys([*chosen, *study.survey.controls]))


class TokenMaker:
    """Random opaque tokens, unique, never containing a forbidden word (e.g. a condition name)."""

    def __init__(self, taken: set[str], forbidden: list[str]):
        self.taken = set(taken)
        self.forbidden = [w.lower() for w in forbidden if w]

    def __call__(self) -> str:
        while True:
            token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
            if token not in self.taken and not any(w in token.lower() for w in self.forbidden):
                self.taken.add(token)
                return token


def plan_panels(study: Study, records: dict, old_panels: dict | None = None, *,
                leave_out_missing: bool = False) -> PanelPlan:
    """Match every prompt x survey condition with its verified images and give it tokens.

    ``records`` are verified manifest records by (condition, prompt_id, index). A panel
    of a rated condition needs all ``images_per_prompt`` images; a control condition gets
    a panel for each prompt that has at least one of its (real) images. Missing images
    raise one SurveyError listing all of them, unless ``leave_out_missing``, which leaves
    those panels out and reports them.
    """
    conditions = survey_conditions(study)
    old_panels = old_panels or {}  # KeyPanels of an earlier build, by token
    panel_tokens = {(p.prompt_id, p.condition): t for t, p in old_panels.items()}
    image_tokens = {f: t for p in old_panels.values() for t, f in p.images.items()}
    forbidden = [c.name for c in study.conditions] + [c.generator for c in study.conditions]
    make_token = TokenMaker(set(panel_tokens.values()) | set(image_tokens.values()), forbidden)

    panels, missing, left_out = [], [], []
    for condition in conditions:
        control = condition in study.survey.controls
        for prompt in study.prompts():
            found = [records[(condition, prompt.id, i)] for i in range(study.images_per_prompt)
                     if (condition, prompt.id, i) in records]
            absent = [i for i in range(study.images_per_prompt)
                      if (condition, prompt.id, i) not in records]
            if control and not found:
                continue  # real reference images exist for some prompts only
            if absent and not control:
                reason = f"image(s) {', '.join(map(str, absent))} missing or corrupt"
                missing.append(f"{condition}/{prompt.id}: {reason}")
                left_out.append({"prompt_id": prompt.id, "condition": condition, "reason": reason})
                continue
            token = panel_tokens.get((prompt.id, condition)) or make_token()
            images = sorted((PlannedImage(image_tokens.get(r["file"]) or make_token(), r)
                             for r in found), key=lambda im: im.token)
            panels.append(PlannedPanel(token, prompt, condition, control, images))
        if control and not any(p.condition == condition for p in panels):
            missing.append(f"{condition}: no control images at all")
            left_out.append({"prompt_id": "*", "condition": condition,
                             "reason": "no control images at all"})
    check_found(study, panels, missing, leave_out_missing)
    panels.sort(key=lambda p: p.token)
    return PanelPlan(panels, conditions, left_out)


def check_found(study: Study, panels: list, missing: list[str], leave_out_missing: bool) -> None:
    """One SurveyError listing every panel without its images (unless ``leave_out_missing``),
    or saying that no panel has them."""
    if missing and not leave_out_missing:
        shown = "; ".join(missing[:50]) + (f"; ... and {len(missing) - 50} more"
                                           if len(missing) > 50 else "")
        raise SurveyError(f"{study.path}: {len(missing)} panel(s) lack images (run `glidemed "
                          f"generate {study.id}` or build with --leave-out-missing): {shown}")
    if not panels:
        raise SurveyError(f"{study.path}: no panel has its images; run `glidemed generate "
                          f"{study.id}` first")
