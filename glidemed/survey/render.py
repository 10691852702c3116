"""Rendering the survey page: Jinja2 with autoescape, fed by one context function.

The page's study-specific content travels as one JSON block (``page_data``) that
survey.js writes into the page as text, never as HTML, so a prompt containing markup
shows as text and runs nothing.
"""

from __future__ import annotations

import json
from importlib import resources
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from glidemed.errors import SurveyError
from glidemed.study import Study
from glidemed.survey.texts import DEFAULT_LANGUAGE, page_texts

PAGE_SCHEMA = "glidemed-survey/1"
TEMPLATE = "index.html.j2"
ASSETS = ("survey.js", "survey.css")
# survey.js is these parts in this order: the core (hashing, canonical JSON, the rater
# plan; also loaded by Node in the tests), storage (this browser's copy of the answers),
# transport (saving to a server), the task widgets, the image viewer, then the page
# (state and screens).
SCRIPT_PARTS = ("js/core.js", "js/storage.js", "js/transport.js", "js/widgets.js", "js/viewer.js",
                "js/page.js")


def template_dir():
    return resources.files("glidemed.site_templates") / "survey"


def asset_text(name: str) -> str:
    """The shipped text of survey.js (its parts joined) or survey.css."""
    parts = SCRIPT_PARTS if name == "survey.js" else (name,)
    return "\n".join((template_dir() / part).read_text(encoding="utf-8") for part in parts)


def public_strings(study: Study, prompt_texts: list[str]) -> set[str]:
    """Texts the study shows raters by design (title, scales, prompts...): not leaks."""
    from glidemed.tasks import block_views

    texts = {study.id, study.title, study.instructions, study.consent, study.survey.contact,
             *prompt_texts}
    for view in block_views(study):
        texts.update([view.task, view.heading, view.instructions, *view.image_labels])
        for aspect in view.aspects:
            texts.update([aspect.key, aspect.label, aspect.question, *aspect.levels])
        for flag in view.flags:
            texts.update([flag.key, flag.label])
    for field in study.survey.profile:
        texts.update([field.key, field.label, *field.choices])
    for example in study.survey.examples:
        texts.update([example.aspect, example.caption])
    return texts


# Where page_data holds public texts: (top-level key, sub-keys of its items); the blocks'
# aspects and flags are public as the top-level ones are.
PUBLIC_FIELDS = {
    "study_id": None, "title": None, "instructions": None, "consent": None, "contact": None,
    "aspects": ("key", "label", "question", "levels"),
    "flags": ("key", "label"),
    "profile": ("key", "label", "choices"),
    "examples": ("aspect", "caption"),
    "panels": ("text",),
    "blocks": ("task", "heading", "instructions", "image_labels"),
}


def reading_settings(study: Study) -> dict:
    """The page's settings that are not text: how panels are drawn and shown, where the
    answers go (the blinding audit compares them with the study instead of searching them)."""
    settings = study.survey
    return {"repeat_panels": settings.repeat_panels, "post_url": settings.post_url,
            "theme": settings.theme, "scaling": settings.scaling,
            "max_upscale": settings.max_upscale, "require_answers": settings.require_answers,
            "seconds_per_panel": settings.seconds_per_panel, "break_every": settings.break_every,
            "language": settings.language, "ui": page_texts(settings.language)}


def page_block(view, panels: int, groups: list[int], per_prompt: int) -> dict:
    """One block of the page data: what its screens show and how its panels are drawn
    (``panels`` of the page's panels, in order; ``groups`` and ``per_prompt`` as
    :func:`glidemed.survey.randomize.rater_plan` takes them)."""
    return {
        "task": view.task, "heading": view.heading, "instructions": view.instructions.strip(),
        "first_value": view.first_value, "images_per_panel": view.images_per_panel,
        "image_labels": list(view.image_labels), "panels": panels,
        "aspects": [{"key": a.key, "label": a.label, "question": a.question,
                     "levels": list(a.levels)} for a in view.aspects],
        "flags": [{"key": f.key, "label": f.label} for f in view.flags],
        "per_prompt": per_prompt, "groups": groups if per_prompt else [],
    }


def page_data(study: Study, build_hash: str, blocks: list[dict], panels: list[dict],
              images: dict[str, str], examples: list[dict]) -> dict:
    """The JSON the page runs on.

    ``blocks``: :func:`page_block` of each block, in order; ``panels``: [{'token', 'text',
    'images': [image tokens]}], block by block, by token within a block;
    ``images``: image token -> src (a data: URI or a path under assets/);
    ``examples``: [{'aspect', 'level', 'caption', 'image': image token}].
    """
    return {
        "schema": PAGE_SCHEMA,
        "study_id": study.id,
        "build_hash": build_hash,
        "title": study.title,
        "instructions": study.instructions.strip(),
        "consent": study.consent.strip(),
        "contact": study.survey.contact.strip(),
        **reading_settings(study),
        "blocks": blocks,
        "profile": [{"key": p.key, "label": p.label, "choices": list(p.choices),
                     "required": p.required} for p in study.survey.profile],
        "examples": examples,
        "panels": panels,
        "images": images,
    }


def _csp(post_url: str, connect_src: str | None = None) -> str:
    """No request leaves the page except an optional POST to the study's address (or to
    ``connect_src``, e.g. ``'self'`` for the page served by `glidemed serve`)."""
    connect = connect_src or "'none'"
    if post_url and not connect_src:
        parts = urlsplit(post_url)
        connect = f"{parts.scheme}://{parts.netloc}"
    return ("default-src 'none'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' 'unsafe-inline'; connect-src {connect}; form-action 'none'; "
            "base-uri 'none'")


def _inline(text: str, closing: str) -> Markup:
    if closing in text.lower():
        raise SurveyError(f"a survey asset contains {closing!r} and cannot be inlined")
    return Markup(text)


def survey_context(data: dict, *, single_file: bool, connect_src: str | None = None) -> dict:
    """Everything index.html.j2 uses.

    - ``data_json``: page_data as JSON safe inside <script> (``<``, ``>``, ``&`` escaped);
    - ``inline_js`` / ``inline_css``: the assets' text for a single file, else None;
    - ``js_href`` / ``css_href``: asset paths for a hosted folder;
    - ``csp``: the page's Content-Security-Policy;
    - ``first_key`` / ``top_key``: the digit keys of the first block's lowest and highest
      level (the hint; the page updates it in each block).
    """
    first = data["blocks"][0]
    language = data.get("language", DEFAULT_LANGUAGE)
    data_json = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    data_json = (data_json.replace("<", "\\u003c").replace(">", "\\u003e")
                 .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return {
        "data_json": Markup(data_json),
        "inline_js": _inline(asset_text("survey.js"), "</script") if single_file else None,
        "inline_css": _inline(asset_text("survey.css"), "</style") if single_file else None,
        "js_href": "assets/survey.js",
        "css_href": "assets/survey.css",
        "csp": _csp(data.get("post_url", ""), connect_src),
        "language": language,
        "t": data.get("ui") or page_texts(language),
        "first_key": first["first_value"],
        "top_key": min(9, first["first_value"] + max(len(a["levels"]) for a in first["aspects"]) - 1),
    }


def render_page(context: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template(TEMPLATE).render(**context)
