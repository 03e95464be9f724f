"""Locate data shipped with the package: JSON Schemas and datasource entries.

In a wheel or zipapp they live in ``provision/_data/``; in a source checkout
they are the top-level ``schemas/`` and ``datasources/`` folders.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

_CHECKOUT = Path(__file__).resolve().parent.parent


def data_dir(kind: str) -> Traversable:
    """``kind`` is ``schemas`` or ``datasources``."""
    packaged = resources.files("provision").joinpath("_data", kind)
    if packaged.is_dir():
        return packaged
    return _CHECKOUT / kind


@cache
def load_json(kind: str, name: str) -> Any:
    return json.loads(data_dir(kind).joinpath(name).read_text(encoding="utf-8"))


def list_names(kind: str, suffix: str = ".json") -> list[str]:
    return sorted(p.name for p in data_dir(kind).iterdir() if p.name.endswith(suffix))
