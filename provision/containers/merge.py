"""Overlaying our settings on the configuration an image already ships.

Tables merge key by key (ours win on a conflict), everything else is
replaced; lists that are sets of values (mirrors, insecure registries) are
unioned by the runtime modules themselves, keeping the image's entries first.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from typing import Any

from provision.errors import ProvisionError
from provision.target.tree import TargetTree


def overlay(base: Mapping[str, Any], ours: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in ours.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = overlay(out[key], value)
        else:
            out[key] = value
    return out


def union(existing: Any, added: list[Any]) -> list[Any]:
    """``existing`` (if a list) then the ``added`` values not already there."""
    items = list(existing) if isinstance(existing, list) else []
    for value in added:
        if value not in items:
            items.append(value)
    return items


def read_json(tree: TargetTree, path: str) -> dict[str, Any]:
    data = tree.read_bytes(path)
    if data is None or not data.strip():
        return {}
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ProvisionError(f"{path}: the image's file is not valid JSON ({exc}); not merging into it") from None
    if not isinstance(value, dict):
        raise ProvisionError(f"{path}: the image's file is not a JSON object; not merging into it")
    return value


def read_toml(tree: TargetTree, path: str) -> dict[str, Any]:
    data = tree.read_bytes(path)
    if data is None or not data.strip():
        return {}
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"{path}: the image's file is not valid TOML ({exc}); not merging into it") from None


def json_text(value: Mapping[str, Any]) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()
