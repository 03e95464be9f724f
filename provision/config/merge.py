"""Merge two newest-spec config dicts the way Ignition merges ``config.merge`` references.

The child overrides the parent:

- objects merge key by key, recursively; a value set in the child wins;
- keyed lists merge entry by entry on their key (files, directories and links
  by ``path`` — one shared namespace, so a child's link replaces a parent's
  file at the same path —, units, drop-ins, users, groups, RAID, LUKS,
  containers by ``name``, disks and filesystems by ``device``, partitions by
  ``number`` when non-zero else ``label``, resources by ``source``, HTTP
  headers by ``name``, registries by ``registry``); parent entries keep their
  order, new child entries are appended in theirs;
- lists of plain values (SSH keys, groups, options) are unions in order;
  a kernel argument the child wants present is dropped from the parent's
  ``shouldNotExist`` and vice versa;
- any other list is replaced by the child's.

Written by the fetching work as a minimal implementation; the transpile work
owns this module and may extend it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Spec = dict[str, Any]
_Key = Callable[[dict[str, Any]], object]


def _field(name: str) -> _Key:
    return lambda entry: entry.get(name)


def _partition_key(entry: dict[str, Any]) -> object:
    number = entry.get("number") or 0
    return ("number", number) if number else ("label", entry.get("label"))


# List location (keys only, indices dropped) -> how its entries are identified.
_KEYS: dict[tuple[str, ...], _Key] = {
    ("storage", "disks"): _field("device"),
    ("storage", "disks", "partitions"): _partition_key,
    ("storage", "raid"): _field("name"),
    ("storage", "luks"): _field("name"),
    ("storage", "filesystems"): _field("device"),
    ("storage", "filesystems", "subvolumes"): _field("name"),
    ("storage", "files"): _field("path"),
    ("storage", "directories"): _field("path"),
    ("storage", "links"): _field("path"),
    ("storage", "files", "append"): _field("source"),
    ("systemd", "units"): _field("name"),
    ("systemd", "units", "dropins"): _field("name"),
    ("passwd", "users"): _field("name"),
    ("passwd", "groups"): _field("name"),
    ("containers", "containers"): _field("name"),
    ("containers", "containers", "volumes"): _field("target"),
    ("containers", "volumes"): _field("name"),
    ("containers", "networks"): _field("name"),
    ("containers", "registries", "mirrors"): _field("registry"),
    ("containers", "registries", "credentials"): _field("registry"),
    ("containers", "preload"): _field("source"),
    ("provision", "config", "merge"): _field("source"),
    ("provision", "security", "tls", "certificateAuthorities"): _field("source"),
}
_NODE_LISTS = ("files", "directories", "links")


def merge_specs(parent: Spec, child: Spec) -> Spec:
    """A new spec dict: ``child`` merged over ``parent``. Neither input is modified."""
    merged: Spec = _merge_value(copy.deepcopy(parent), copy.deepcopy(child), ())
    _drop_shadowed_nodes(merged, parent, child)
    _reconcile_kernel_arguments(merged, child)
    return merged


def _merge_value(parent: Any, child: Any, where: tuple[str, ...]) -> Any:
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for key, value in child.items():
            out[key] = _merge_value(parent[key], value, (*where, key)) if key in parent else value
        return out
    if isinstance(parent, list) and isinstance(child, list):
        return _merge_list(parent, child, where)
    return child


def _merge_list(parent: list[Any], child: list[Any], where: tuple[str, ...]) -> list[Any]:
    key_of = _KEYS.get(where) or (_field("name") if where[-1:] == ("httpHeaders",) else None)
    if key_of is None:
        if all(not isinstance(v, dict | list) for v in parent + child):
            return parent + [v for v in child if v not in parent]
        return child
    out = list(parent)
    index = {key_of(entry): i for i, entry in enumerate(out)}
    for entry in child:
        key = key_of(entry)
        if key in index:
            out[index[key]] = _merge_value(out[index[key]], entry, where)
        else:
            index[key] = len(out)
            out.append(entry)
    return out


def _drop_shadowed_nodes(merged: Spec, parent: Spec, child: Spec) -> None:
    """Files, directories and links share paths: a child's entry removes the parent's other kinds."""
    storage, child_storage = merged.get("storage"), child.get("storage")
    if not isinstance(storage, dict) or not isinstance(child_storage, dict):
        return
    for kind in _NODE_LISTS:
        child_paths = {e.get("path") for e in child_storage.get(kind, [])}
        for other in _NODE_LISTS:
            if other != kind and other in storage:
                storage[other] = [
                    e for e in storage[other]
                    if e.get("path") not in child_paths
                    or e.get("path") in {c.get("path") for c in child_storage.get(other, [])}
                ]


def _reconcile_kernel_arguments(merged: Spec, child: Spec) -> None:
    args, child_args = merged.get("kernelArguments"), child.get("kernelArguments")
    if not isinstance(args, dict) or not isinstance(child_args, dict):
        return
    for wanted, unwanted in (("shouldExist", "shouldNotExist"), ("shouldNotExist", "shouldExist")):
        chosen = set(child_args.get(wanted, []))
        if unwanted in args:
            args[unwanted] = [a for a in args[unwanted] if a not in chosen or a in child_args.get(unwanted, [])]
