"""The visual Turing test task: one image per screen, real (controls) or generated.

A Turing survey is built by the rating survey's machinery: every shown image is a panel
of one image, the question is the panel text, and the confidence scale ("definitely
real" ... "definitely generated") is the only aspect. So randomisation per rater,
autosave, keyboard, download and the hash chain are the rating survey's own.
:func:`page_study` gives that view of the study; :func:`plan_turing` chooses the images.

Which images: ``images_per_condition`` generated images of every generated condition
(0: all), and real images from the control conditions so that they are ``real_share`` of
all screens. The choice is seeded by the study seed and stable across rebuilds (tokens of
an existing key are kept).
"""

from __future__ import annotations

import dataclasses
import random

from glidemed.errors import SurveyError
from glidemed.study import Aspect, Flag, Study
from glidemed.survey.panels import PanelPlan, PlannedImage, PlannedPanel, TokenMaker, survey_conditions

ASPECT_KEY = "realness"
FLAG_KEY = "flagged"


def is_turing(study: Study) -> bool:
    return study.survey.task == "turing"


def page_study(study: Study) -> Study:
    """The study as the survey page and the response files see it (unchanged unless turing)."""
    if not is_turing(study):
        return study
    turing = study.survey.turing
    aspect = Aspect(ASPECT_KEY, "Real or generated?", turing.question, list(turing.levels))
    return dataclasses.replace(study, aspects=[aspect], flags=[Flag(FLAG_KEY, turing.flag)],
                               images_per_prompt=1, images_per_panel=1)


def plan_turing(study: Study, records: dict, old_key: dict | None = None) -> PanelPlan:
    """One single-image panel per chosen image (see the module docstring)."""
    turing = study.survey.turing
    conditions = survey_conditions(study)
    controls = [c for c in conditions if c in study.survey.controls]
    generated = [c for c in conditions if c not in controls]
    by_condition: dict[str, list[dict]] = {c: [] for c in conditions}
    for (condition, _prompt, _index), record in sorted(records.items()):
        if condition in by_condition:
            by_condition[condition].append(record)
    rng = random.Random(f"{study.seed}/turing")
    chosen: dict[str, list[dict]] = {}
    short = []
    for condition in generated:
        pool = by_condition[condition]
        n = turing.images_per_condition or len(pool)
        if len(pool) < max(n, 1):
            short.append(f"condition {condition} has {len(pool)} image(s), {n or 1} wanted")
            continue
        chosen[condition] = rng.sample(pool, n)
    n_generated = sum(len(v) for v in chosen.values())
    n_real = max(1, round(n_generated * turing.real_share / (1 - turing.real_share)))
    real_pool = [(c, r) for c in controls for r in by_condition[c]]
    if len(real_pool) < n_real:
        short.append(f"the controls ({', '.join(controls)}) have {len(real_pool)} real image(s), "
                     f"{n_real} wanted for real_share {turing.real_share:g}")
    if short:
        raise SurveyError(f"{study.path}: not enough images for the turing task: {'; '.join(short)} "
                          f"(generate more, or lower survey.turing.images_per_condition or real_share)")
    for condition, record in rng.sample(real_pool, n_real):
        chosen.setdefault(condition, []).append(record)

    old_panels = (old_key or {}).get("panels", {})
    old_by_file = {file: (token, image) for token, p in old_panels.items()
                   for image, file in p["images"].items()}
    forbidden = [c.name for c in study.conditions] + [c.generator for c in study.conditions]
    taken = set(old_panels) | {i for p in old_panels.values() for i in p["images"]}
    make_token = TokenMaker(taken, forbidden)
    prompts = {p.id: p for p in study.prompts()}
    panels = []
    for condition, records_ in chosen.items():
        for record in records_:
            panel_token, image_token = old_by_file.get(record["file"]) or (make_token(), make_token())
            panels.append(PlannedPanel(panel_token, prompts[record["prompt_id"]], condition,
                                       condition in controls, [PlannedImage(image_token, record)]))
    panels.sort(key=lambda p: p.token)
    return PanelPlan(panels, conditions)


def panel_text(study: Study) -> str:
    """What the page shows above the image: the question, never the prompt."""
    return study.survey.turing.question


# --------------------------------------------------------------------------- the blinding audit

def encoding_signature(data: bytes) -> tuple:
    """What an encoder leaves in a file besides the pixels: format, and for JPEG the frame
    type, component sampling and quantisation tables; for PNG bit depth, colour type and
    interlacing; for WebP the chunk kind (lossy, lossless, extended) and its flags."""
    if data[:2] == b"\xff\xd8":
        frame, tables, i = None, [], 2
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2:i + 4], "big")
            body = data[i + 4:i + 2 + length]
            if marker == 0xDB:
                tables.append(body)
            elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                n = body[5] if len(body) > 5 else 0
                frame = (marker, body[0], tuple(body[6 + 3 * k + 1] for k in range(n)))
            elif marker == 0xDA:
                break
            i += 2 + length
        return ("jpeg", frame, tuple(tables))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ("png", data[24:25], data[25:26], data[28:29])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        return ("webp", kind, data[20:21] if kind == b"VP8X" else b"")
    return ("unknown",)


def encoding_problems(key: dict, images: dict[str, bytes]) -> list[str]:
    """Real (control) images encoded differently from generated ones, a give-away in the file.

    ``images``: image token -> the bytes the page shows.
    """
    groups: dict[bool, dict[tuple, int]] = {True: {}, False: {}}
    for panel in key.get("panels", {}).values():
        for token in panel["images"]:
            if token in images:
                signature = encoding_signature(images[token])
                kind = groups[bool(panel.get("control"))]
                kind[signature] = kind.get(signature, 0) + 1
    if not groups[True] or not groups[False] or set(groups[True]) == set(groups[False]):
        return []
    only_real = sum(n for s, n in groups[True].items() if s not in groups[False])
    only_generated = sum(n for s, n in groups[False].items() if s not in groups[True])
    return [f"real (control) images are encoded differently from generated ones: {only_real} real "
            f"and {only_generated} generated image(s) have an encoding (format, frame, sampling, "
            f"quantisation) the other kind lacks"]

