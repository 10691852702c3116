"""Generator names and where their code lives, imported only when used (torch stays lazy)."""

from __future__ import annotations

import importlib

from glidemed.errors import GenerationError

# name -> "module:Class". The class has a ``check_params(params) -> list[str]`` static
# method that must not import heavy dependencies, so study validation stays fast.
GENERATORS = {
    "placeholder": "glidemed.generate.placeholder:PlaceholderGenerator",
    "folder": "glidemed.generate.folder:FolderGenerator",
    "glide": "glidemed.generate.glide:GlideGenerator",
}


def generator_class(name: str) -> type:
    if name not in GENERATORS:
        raise GenerationError(f"unknown generator {name!r} (known: {', '.join(sorted(GENERATORS))})")
    module_name, class_name = GENERATORS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def check_params(name: str, params: dict) -> list[str]:
    """Problems with a condition's parameters, each as 'key: what is wrong'."""
    return generator_class(name).check_params(params)


def unknown_params(params: dict, allowed: dict) -> list[str]:
    """Problems for keys of ``params`` that are not in ``allowed`` or have the wrong type."""
    problems = []
    for key, value in params.items():
        if key not in allowed:
            problems.append(f"{key}: unknown parameter (allowed: {', '.join(sorted(allowed))})")
        elif not isinstance(value, allowed[key]) or (isinstance(value, bool)
                                                      and bool not in _as_tuple(allowed[key])):
            problems.append(f"{key}: expected {_names(allowed[key])}, got {value!r}")
    return problems


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _names(types) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(types))
