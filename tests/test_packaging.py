"""The package list in pyproject.toml names every package, so a wheel carries all of them."""

from __future__ import annotations

import sys

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_every_package_is_listed():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "glidemed").rglob("__init__.py")}
    assert found <= declared, f"packages missing from pyproject.toml: {sorted(found - declared)}"
