"""Locate data shipped with the package: JSON Schemas and datasource entries.

In a wheel or zipapp they live in ``provision/_data/``; in a source checkout
they are the top-level ``schemas/`` and ``datasources/`` folders.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Traversable

# os.path, not pathlib: validating a config needs only load_json, and
# importing pathlib costs start-up time on every run.
_PACKAGE = os.path.dirname(os.path.realpath(__file__))
_CHECKOUT = os.path.dirname(_PACKAGE)


def _data_path(kind: str) -> str | None:
    """The folder holding ``kind`` data on the filesystem, or None (a zipapp)."""
    installed = os.path.join(_PACKAGE, "_data", kind)
    if os.path.isdir(installed):
        return installed
    if os.path.isdir(os.path.join(_CHECKOUT, kind)) and os.path.isfile(os.path.join(_CHECKOUT, "pyproject.toml")):
        return os.path.join(_CHECKOUT, kind)
    return None


def data_dir(kind: str) -> Traversable:
    """``kind`` is ``schemas`` or ``datasources``."""
    # Plain paths first: importlib.resources costs start-up time, and is only
    # needed when the package is not on a filesystem (a zipapp).
    path = _data_path(kind)
    if path is not None:
        from pathlib import Path

        return Path(path)
    from importlib import resources

    return resources.files("provision").joinpath("_data", kind)


@cache
def load_json(kind: str, name: str) -> Any:
    path = _data_path(kind)
    if path is None:
        return json.loads(data_dir(kind).joinpath(name).read_text(encoding="utf-8"))
    with open(os.path.join(path, name), encoding="utf-8") as f:
        return json.loads(f.read())


def list_names(kind: str, suffix: str = ".json") -> list[str]:
    return sorted(p.name for p in data_dir(kind).iterdir() if p.name.endswith(suffix))
