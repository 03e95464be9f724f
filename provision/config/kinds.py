"""Config formats other than provision's own, and how to recognise them.

Each foreign format is an importer module exposing ``detect(document) -> bool``
and ``to_spec(document) -> Imported``; :data:`IMPORTERS` lists them in the
order they are tried. provision's own spec needs no importer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from provision.diagnostics import ConfigPath, Diagnostic

# name -> module. A module that does not exist yet is skipped.
IMPORTERS: dict[str, str] = {
    "ignition": "provision.importers.ignition",
    "cloud-config": "provision.importers.cloudconfig",
    "human": "provision.importers.human",
}


def _identity(path: ConfigPath) -> ConfigPath | None:
    return path


@dataclass
class Imported:
    """A foreign config translated to a provision spec dict of the newest version.

    ``diagnostics`` are about the source document and carry its paths;
    ``source_path`` maps a path in ``spec`` back to the source document so a
    diagnostic about the generated spec points at the line that produced it.
    """

    spec: dict[str, Any] | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source_path: Callable[[ConfigPath], ConfigPath | None] = _identity


def importer(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(IMPORTERS[name])
    except ModuleNotFoundError as exc:
        module = IMPORTERS[name]
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
