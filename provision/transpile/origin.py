"""Which input, and which line of it, a path of the merged output came from.

Resolved lazily, only for diagnostics: the node at the output path is looked
up in each input by the merge's own identity rules (keyed lists by key,
lists of plain values by value, other lists by index). The last input that
holds the deepest part of the path is the one whose value won.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provision.config.merge import list_key
from provision.diagnostics import ConfigPath
from provision.transpile.inputs import Input


def corresponding(path: ConfigPath, merged: Any, spec: Any) -> ConfigPath:
    """The longest prefix of ``path`` (in ``merged``) that exists in ``spec``, in ``spec``'s indices."""
    found: list[str | int] = []
    where: list[str] = []
    for part in path:
        if isinstance(part, str):
            if not (isinstance(merged, dict) and isinstance(spec, dict) and part in spec and part in merged):
                break
            merged, spec = merged[part], spec[part]
            where.append(part)
            found.append(part)
            continue
        if not (isinstance(merged, list) and isinstance(spec, list) and 0 <= part < len(merged)):
            break
        index = _find(merged[part], part, spec, tuple(where))
        if index is None:
            break
        merged, spec = merged[part], spec[index]
        found.append(index)
    return tuple(found)


def _find(entry: Any, position: int, entries: list[Any], where: tuple[str, ...]) -> int | None:
    if position < len(entries) and entries[position] == entry:
        return position  # the same entry at the same place (always so for a single input)
    key_of = list_key(where)
    if key_of is not None and isinstance(entry, dict):
        key = key_of(entry)
        return next((i for i, e in enumerate(entries) if isinstance(e, dict) and key_of(e) == key), None)
    if not isinstance(entry, dict | list):
        return entries.index(entry) if entry in entries else None
    return position if position < len(entries) else None


def resolve(path: ConfigPath, merged: Any, inputs: Sequence[Input]) -> tuple[Input, ConfigPath] | None:
    """(input, path in its spec) that produced ``path`` of the merged spec."""
    best: tuple[Input, ConfigPath] | None = None
    for item in inputs:
        if item.spec is None:
            continue
        found = corresponding(path, merged, item.spec)
        if best is None or len(found) >= len(best[1]):
            best = (item, found)
    return best
