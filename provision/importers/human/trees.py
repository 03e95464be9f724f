"""``storage.trees``: embed a local directory as files, directories and links.

Each regular file becomes a ``files`` entry with its contents inlined
(executable files mode 0755, others 0644; ``executable_mode`` and
``file_mode`` override), each subdirectory a ``directories`` entry, and each
symlink a ``links`` entry with the same target, not followed — so a link may
point anywhere on the target machine without transpile reading outside the
files directory. Sockets, FIFOs and device nodes are errors.

Trees are often laid over existing system directories (``etc/ssl/private``),
so directory entries carry no mode unless ``directory_mode`` is given (a new
directory gets 0755, an existing one keeps its mode and owner) and never
``overwrite`` (which would replace a directory and everything in it); the
tree's own top directory gets no entry at all.
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
from provision.importers.human.modes import parse_mode

_KEYS = ("local", "path", "file_mode", "executable_mode", "directory_mode", "overwrite")
_DEFAULT_MODES: dict[str, int | None] = {"file_mode": 0o644, "executable_mode": 0o755, "directory_mode": None}


def storage(value: dict[str, Any], src: ConfigPath, ctx: Context) -> tuple[dict[str, Any], dict[str, ConfigPath]]:
    if "trees" not in value:
        return value, {}
    out = {k: v for k, v in value.items() if k != "trees"}
    trees = value["trees"]
    if not isinstance(trees, list):
        ctx.bad("trees must be a list", (*src, "trees"))
        return out, {}
    for i, tree in enumerate(trees):
        _embed(tree, (*src, "trees", i), ctx)
    return out, {}


def _options(tree: object, at: ConfigPath, ctx: Context) -> dict[str, Any] | None:
    if not isinstance(tree, dict):
        ctx.bad("a tree is a mapping with local (and optionally path)", at)
        return None
    unknown = [k for k in tree if k not in _KEYS]
    for key in unknown:
        ctx.bad(f"unknown key {key!r}", (*at, key), "known keys here: " + ", ".join(_KEYS), at_key=True)
    if "local" not in tree:
        ctx.bad("missing required key 'local'", at)
        return None
    dest = tree.get("path", "/")
    if not isinstance(dest, str) or not dest.startswith("/"):
        ctx.bad("a tree's path must be an absolute path", (*at, "path"))
        return None
    options: dict[str, Any] = {"path": posixpath.normpath(dest)}
    for key, default in _DEFAULT_MODES.items():
        mode = parse_mode(tree.get(key, default), (*at, key), ctx)
        if mode is None and default is None:
            options[key] = None
            continue
        if not isinstance(mode, int) or isinstance(mode, bool):
            ctx.bad(f"{key} must be an octal string such as \"0644\"", (*at, key))
            return None
        options[key] = mode
    overwrite = tree.get("overwrite")
    if overwrite is not None and not isinstance(overwrite, bool):
        ctx.bad("overwrite must be true or false", (*at, "overwrite"))
        return None
    options["overwrite"] = overwrite
    return None if unknown else options


def _embed(tree: object, at: ConfigPath, ctx: Context) -> None:
    options = _options(tree, at, ctx)
    if options is None:
        return
    assert isinstance(tree, dict)
    root = ctx.local_path(tree["local"], (*at, "local"), want_dir=True)
    if root is None:
        return
    total = 0
    for entry, rel in _walk(root):
        target = posixpath.join(options["path"], rel)
        common: dict[str, Any] = {"path": target}
        if options["overwrite"] is not None:
            common["overwrite"] = options["overwrite"]
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            ctx.generate(("storage", "links"), {**common, "target": os.readlink(entry)}, at)
        elif stat.S_ISDIR(info.st_mode):
            directory: dict[str, Any] = {"path": target}
            if options["directory_mode"] is not None:
                directory["mode"] = options["directory_mode"]
            ctx.generate(("storage", "directories"), directory, at)
        elif stat.S_ISREG(info.st_mode):
            total += info.st_size
            if total > MAX_LOCAL_BYTES:
                ctx.bad(f"tree {tree['local']!r} holds more than {MAX_LOCAL_BYTES // (1024 * 1024)} MiB",
                        (*at, "local"), "fetch large contents by URL instead of embedding them")
                return
            executable = info.st_mode & 0o111
            mode = options["executable_mode" if executable else "file_mode"]
            ctx.generate(("storage", "files"),
                         {**common, "contents": encode_resource(entry.read_bytes()), "mode": mode}, at)
        else:
            ctx.bad(f"{rel!r} in tree {tree['local']!r} is not a regular file, directory or symlink",
                    (*at, "local"), "sockets, FIFOs and device nodes cannot be embedded")
            return


def _walk(root: Path) -> list[tuple[Path, str]]:
    """Every entry under ``root`` (not root itself), parents before children, sorted by name."""
    found: list[tuple[Path, str]] = []
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        children = sorted(os.scandir(folder), key=lambda e: e.name)
        for child in children:
            rel = f"{prefix}{child.name}"
            found.append((Path(child.path), rel))
        for child in reversed(children):
            if child.is_dir(follow_symlinks=False):
                pending.append((Path(child.path), f"{prefix}{child.name}/"))
    found.sort(key=lambda item: item[1].split("/"))
    return found
