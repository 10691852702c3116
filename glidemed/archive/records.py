"""The archive's own records (crate entities, the analysis options) are outside data when
``verify`` reads them: each is checked against a JSON Schema with bounds before use."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jsonschema


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files("glidemed").joinpath(f"schemas/{name}.schema.json")
                        .read_text("utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def record_problems(value, schema: str, label: str) -> list[str]:
    """One line per problem of ``value`` against ``glidemed/schemas/<schema>.schema.json``,
    each naming ``label`` and where in it."""
    problems = []
    for error in sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"{label}: {where}: {error.message[:200]}")
    return problems
