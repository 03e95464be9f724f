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

A *conflict* is the same scalar field (or a replaced list) set to different
values by parent and child, or a child's node replacing a parent's node of
another kind at the same path. The child still wins, as in Ignition; a caller
that wants to hear about it passes ``on_conflict(parent_path, child_path)``
(paths into the parent and the child dicts). ``provision transpile`` turns
them into warnings naming both source lines.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from provision.diagnostics import ConfigPath

Spec = dict[str, Any]
_Key = Callable[[dict[str, Any]], object]
ConflictHandler = Callable[[ConfigPath, ConfigPath], None]


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


def list_key(where: tuple[str, ...]) -> _Key | None:
    """How entries of the list at ``where`` (keys only, no indices) are identified; None: not keyed."""
    return _KEYS.get(where) or (_field("name") if where[-1:] == ("httpHeaders",) else None)


def merge_specs(parent: Spec, child: Spec, on_conflict: ConflictHandler | None = None) -> Spec:
    """A new spec dict: ``child`` merged over ``parent``. Neither input is modified."""
    merger = _Merger(on_conflict)
    merged: Spec = merger.value(copy.deepcopy(parent), copy.deepcopy(child), (), (), ())
    _drop_shadowed_nodes(merged, parent, child, merger.conflict)
    _reconcile_kernel_arguments(merged, child)
    return merged


class _Merger:
    def __init__(self, on_conflict: ConflictHandler | None) -> None:
        self.on_conflict = on_conflict

    def conflict(self, parent_path: ConfigPath, child_path: ConfigPath) -> None:
        if self.on_conflict is not None:
            self.on_conflict(parent_path, child_path)

    def value(self, parent: Any, child: Any, where: tuple[str, ...], ppath: ConfigPath, cpath: ConfigPath) -> Any:
        if isinstance(parent, dict) and isinstance(child, dict):
            out = dict(parent)
            for key, value in child.items():
                if key in parent:
                    out[key] = self.value(parent[key], value, (*where, key), (*ppath, key), (*cpath, key))
                else:
                    out[key] = value
            return out
        if isinstance(parent, list) and isinstance(child, list):
            return self.list(parent, child, where, ppath, cpath)
        if parent != child or type(parent) is not type(child):
            self.conflict(ppath, cpath)
        return child

    def list(self, parent: list[Any], child: list[Any], where: tuple[str, ...],
             ppath: ConfigPath, cpath: ConfigPath) -> list[Any]:
        key_of = list_key(where)
        if key_of is None:
            if all(not isinstance(v, dict | list) for v in parent + child):
                return parent + [v for v in child if v not in parent]
            if parent and parent != child:
                self.conflict(ppath, cpath)
            return child
        out = list(parent)
        index = {key_of(entry): i for i, entry in enumerate(out)}
        for j, entry in enumerate(child):
            key = key_of(entry)
            if key in index:
                i = index[key]
                out[i] = self.value(out[i], entry, where, (*ppath, i), (*cpath, j))
            else:
                index[key] = len(out)
                out.append(entry)
        return out


def _drop_shadowed_nodes(merged: Spec, parent: Spec, child: Spec, conflict: ConflictHandler) -> None:
    """Files, directories and links share paths: a child's entry removes the parent's other kinds."""
    storage, child_storage = merged.get("storage"), child.get("storage")
    if not isinstance(storage, dict) or not isinstance(child_storage, dict):
        return
    def paths(storage: Any, kind: str) -> dict[Any, int]:
        entries = storage.get(kind, []) if isinstance(storage, dict) else []
        return {e.get("path"): j for j, e in enumerate(entries) if isinstance(e, dict)}

    child_paths = {kind: paths(child_storage, kind) for kind in _NODE_LISTS}
    parent_paths = {kind: paths(parent.get("storage"), kind) for kind in _NODE_LISTS}
    for kind in _NODE_LISTS:
        for other in _NODE_LISTS:
            if other == kind or other not in storage:
                continue
            kept = []
            for entry in storage[other]:
                path = entry.get("path")
                if path in child_paths[kind] and path not in child_paths[other]:
                    # Only parent entries reach here: the child's own are in child_paths[other].
                    conflict(("storage", other, parent_paths[other].get(path, 0)),
                             ("storage", kind, child_paths[kind][path]))
                else:
                    kept.append(entry)
            storage[other] = kept


def _reconcile_kernel_arguments(merged: Spec, child: Spec) -> None:
    args, child_args = merged.get("kernelArguments"), child.get("kernelArguments")
    if not isinstance(args, dict) or not isinstance(child_args, dict):
        return
    for wanted, unwanted in (("shouldExist", "shouldNotExist"), ("shouldNotExist", "shouldExist")):
        chosen = set(child_args.get(wanted, []))
        if unwanted in args:
            args[unwanted] = [a for a in args[unwanted] if a not in chosen or a in child_args.get(unwanted, [])]
