"""Locate data shipped with the package: JSON Schemas and datasource entries.

In a wheel or zipapp they live in ``provision/_data/``; in a source checkout
they are the top-level ``schemas/`` and ``datasources/`` folders.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Traversable

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def data_dir(kind: str) -> Traversable:
    """``kind`` is ``schemas`` or ``datasources``."""
    # Plain paths first: importlib.resources costs start-up time, and is only
    # needed when the package is not on a filesystem (a zipapp).
    installed = _PACKAGE / "_data" / kind
    if installed.is_dir():
        return installed
    if (_CHECKOUT / kind).is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT / kind
    from importlib import resources

    return resources.files("provision").joinpath("_data", kind)


@cache
def load_json(kind: str, name: str) -> Any:
    return json.loads(data_dir(kind).joinpath(name).read_text(encoding="utf-8"))


def list_names(kind: str, suffix: str = ".json") -> list[str]:
    return sorted(p.name for p in data_dir(kind).iterdir() if p.name.endswith(suffix))
