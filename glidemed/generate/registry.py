"""Generator names and where their code lives, imported only when used (torch stays lazy)."""

from __future__ import annotations

import importlib
import math

from glidemed.errors import GenerationError

# name -> "module:Class". The class has a ``check_params(params) -> list[str]`` static
# method that must not import heavy dependencies, so study validation stays fast.
GENERATORS = {
    "placeholder": "glidemed.generate.placeholder:PlaceholderGenerator",
    "folder": "glidemed.generate.folder:FolderGenerator",
    "glide": "glidemed.generate.glide:GlideGenerator",
    "diffusers": "glidemed.generate.diffusers_pipeline:DiffusersGenerator",
}

# Upper bounds of generator parameters, checked with the study: far beyond them a value is a
# typo that would run out of memory or time at generation. Guidance scales of diffusion
# models are single or low double digits; samplers are trained on 1000 steps.
MAX_GUIDANCE_SCALE = 100
MAX_STEPS = 1000
MAX_SIDE = 4096  # pixels
MAX_BATCH_SIZE = 1024


def generator_class(name: str) -> type:
    if name not in GENERATORS:
        raise GenerationError(f"unknown generator {name!r} (known: {', '.join(sorted(GENERATORS))})")
    module_name, class_name = GENERATORS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def above_problem(key: str, value, high) -> str | None:
    """'key: expected at most HIGH, got value' when a set ``value`` is above ``high``."""
    if value is not None and value > high:
        return f"{key}: expected at most {high}, got {value}"
    return None


def check_params(name: str, params: dict) -> list[str]:
    """Problems with a condition's parameters, each as 'key: what is wrong'."""
    return generator_class(name).check_params(params)


def unknown_or_mistyped(params: dict, allowed: dict) -> list[str]:
    """Problems for keys of ``params`` that are not in ``allowed`` or have the wrong type."""
    problems = []
    for key, value in params.items():
        if key not in allowed:
            problems.append(f"{key}: unknown parameter (allowed: {', '.join(sorted(allowed))})")
        elif problem := type_problem(key, value, allowed[key]):
            problems.append(problem)
    return problems


def type_problem(key: str, value, types) -> str | None:
    """'key: expected T, got value' when ``value`` is not of ``types`` (a bool is no number;
    TOML's nan and inf are no numbers either)."""
    allowed = types if isinstance(types, tuple) else (types,)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key}: expected a finite number, got {value}"
    if isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool)):
        return None
    return f"{key}: expected {' or '.join(t.__name__ for t in allowed)}, got {value!r}"
