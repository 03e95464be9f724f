"""``storage.trees``: a local directory embedded as Ignition files and links, as Butane does it.

Butane's rules (base/v0_*/translate.go, ``processTrees``): each regular
file becomes a file entry (mode 0755 if any execute bit is set locally, else
0644) and each symlink a link with the same target, not followed;
directories get no entries of their own. A file entry the config already
has at that path *without* contents is completed (contents, and the mode if
it has none) — that is how a tree file gets an owner; any other node
already at the path is an error. Sockets, FIFOs and devices are errors.

The tree root is resolved like every ``local`` path: it must lie inside the
files directory after following symlinks, so a tree cannot be a link to
``/etc``.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.human.context import MAX_LOCAL_BYTES, Context

NODE_EXISTS = "matching filesystem node has existing contents or different type"
FILE_TYPE = "trees may only contain files, directories, and symlinks"


class _Nodes:
    """Where each path already is among the config's files, directories and links."""

    def __init__(self, storage: dict[str, Any]) -> None:
        self.storage = storage
        self.where: dict[str, tuple[str, int]] = {}
        for kind in ("files", "directories", "links"):
            for i, node in enumerate(storage.get(kind) or []):
                if isinstance(node, dict) and isinstance(node.get("path"), str):
                    self.where.setdefault(node["path"], (kind, i))

    def add(self, kind: str, entry: dict[str, Any]) -> int:
        entries = self.storage.get(kind)
        if not isinstance(entries, list):
            entries = self.storage[kind] = []
        entries.append(entry)
        self.where[entry["path"]] = (kind, len(entries) - 1)
        return len(entries) - 1


class _Options:
    """How one tree's nodes are made: where, and (base 7, fcos 1.7) owners and modes."""

    def __init__(self, dest: str, owner: dict[str, Any], file_mode: int | None, dir_mode: int | None) -> None:
        self.dest = dest
        self.owner = owner  # {"user": {...}, "group": {...}} as given
        self.file_mode = file_mode
        self.dir_mode = dir_mode

    @property
    def wants_directories(self) -> bool:
        return self.dir_mode is not None or bool(self.owner)


def _tree_options(tree: dict[str, Any], at: ConfigPath, ctx: Context, base: int) -> _Options | None:
    keys = ("local", "path", "user", "group", "file_mode", "dir_mode") if base >= 7 else ("local", "path")
    ok = True
    for key in tree:
        if key not in keys:
            ctx.bad(f"unknown key {key!r}", (*at, key), "known keys here: " + ", ".join(keys), at_key=True)
            ok = False
    if not tree.get("local"):
        ctx.bad("local is required", at)
        return None
    dest = tree.get("path") or "/"
    if not isinstance(dest, str):
        ctx.bad("a tree's path must be a string", (*at, "path"))
        return None
    owner: dict[str, Any] = {}
    for key in ("user", "group"):
        value = tree.get(key)
        if value is None:
            continue
        if not isinstance(value, dict) or not set(value) <= {"id", "name"}:
            ctx.bad(f"{key} must be a mapping with id or name", (*at, key))
            ok = False
        elif value:
            owner[key] = dict(value)
    modes: list[int | None] = []
    for key in ("file_mode", "dir_mode"):
        value = tree.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            ctx.bad(f"{key} must be an integer mode", (*at, key))
            ok = False
            value = None
        modes.append(value)
    return _Options(dest, owner, modes[0], modes[1]) if ok else None


def embed_trees(trees: object, ign: dict[str, Any], ctx: Context, base: int) -> None:
    """Add every tree's files and links to ``ign`` (recording their origin at the tree's entry)."""
    if trees is None:
        return
    if not isinstance(trees, list):
        ctx.bad("trees must be a list", ("storage", "trees"))
        return
    storage = ign.setdefault("storage", {})
    if not isinstance(storage, dict):
        return
    nodes = _Nodes(storage)
    total = 0
    for i, tree in enumerate(trees):
        at: ConfigPath = ("storage", "trees", i)
        if not isinstance(tree, dict):
            ctx.bad("a tree is a mapping with local (and optionally path)", at)
            continue
        options = _tree_options(tree, at, ctx, base)
        if options is None:
            continue
        root = ctx.local_path(tree["local"], (*at, "local"), want_dir=True)
        if root is not None:
            total = _embed(root, options, at, nodes, ctx, total)


def _embed(root: Path, options: _Options, at: ConfigPath, nodes: _Nodes, ctx: Context, total: int) -> int:
    if options.wants_directories:  # fcos 1.7: the tree's own top directory is an entry too
        _directory(options.dest, options, at, nodes, ctx)
    for entry, rel in _walk(root):
        target = posixpath.join(options.dest, rel)
        info = entry.lstat()
        if stat.S_ISDIR(info.st_mode):
            if options.wants_directories:
                _directory(target, options, at, nodes, ctx)
            continue
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
            if total > MAX_LOCAL_BYTES:
                ctx.bad(f"trees hold more than {MAX_LOCAL_BYTES // (1024 * 1024)} MiB", at,
                        "fetch large contents by URL instead of embedding them")
                return total
            _file(target, entry, info.st_mode, options, at, nodes, ctx)
        elif stat.S_ISLNK(info.st_mode):
            _link(target, os.readlink(entry), options, at, nodes, ctx)
        else:
            ctx.bad(FILE_TYPE, at, f"{rel!r} is a socket, FIFO or device node")
    return total


def _directory(path: str, options: _Options, at: ConfigPath, nodes: _Nodes, ctx: Context) -> None:
    if path in nodes.where:
        ctx.bad(NODE_EXISTS, at, f"{path} is already in the config")
        return
    index = nodes.add("directories", {"path": path, **options.owner, "mode": 0o755 if options.dir_mode is None else options.dir_mode})
    ctx.origins.record(("storage", "directories", index), at)


def _existing(kind: str, path: str, nodes: _Nodes, at: ConfigPath, ctx: Context) -> int | None:
    """Index of an entry of ``kind`` still to be filled in, -1 for none, None after reporting a clash."""
    found = nodes.where.get(path)
    if found is None:
        return -1
    found_kind, index = found
    entry = nodes.storage[found_kind][index]
    contents = entry.get("contents")
    filled = (contents.get("source") if isinstance(contents, dict) else None) if kind == "files" else entry.get("target")
    if found_kind != kind or filled:
        ctx.bad(NODE_EXISTS, at, f"{path} is already in the config")
        return None
    return index


def _file(path: str, local: Path, mode: int, options: _Options, at: ConfigPath, nodes: _Nodes,
          ctx: Context) -> None:
    index = _existing("files", path, nodes, at, ctx)
    if index is None:
        return
    if index < 0:
        index = nodes.add("files", {"path": path, **options.owner})
        ctx.origins.record(("storage", "files", index), at)
    entry = nodes.storage["files"][index]
    contents = entry.get("contents") if isinstance(entry.get("contents"), dict) else {}
    given = contents.get("compression")
    encoded = encode_resource(local.read_bytes(), allow_gzip=given in (None, ""))
    entry["contents"] = {**contents, **encoded}
    ctx.origins.record(("storage", "files", index, "contents"), at)
    if entry.get("mode") is None:
        default = 0o755 if mode & 0o111 else 0o644
        entry["mode"] = options.file_mode if options.file_mode is not None else default
        ctx.origins.record(("storage", "files", index, "mode"), at)


def _link(path: str, target: str, options: _Options, at: ConfigPath, nodes: _Nodes, ctx: Context) -> None:
    index = _existing("links", path, nodes, at, ctx)
    if index is None:
        return
    if index < 0:
        index = nodes.add("links", {"path": path, **options.owner})
        ctx.origins.record(("storage", "links", index), at)
    nodes.storage["links"][index]["target"] = target
    ctx.origins.record(("storage", "links", index, "target"), at)


def _walk(root: Path) -> list[tuple[Path, str]]:
    """Every entry under ``root`` in lexical order, as Go's filepath.Walk visits them."""
    found: list[tuple[Path, str]] = []

    def visit(folder: Path, prefix: str) -> None:
        for child in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = prefix + child.name
            found.append((Path(child.path), rel))
            if child.is_dir(follow_symlinks=False):
                visit(Path(child.path), rel + "/")

    visit(root, "")
    return found
