"""Which boot loader a target uses, and the command-line edit as a plan.

Looked for in this order: an image-provided helper (the image builder's
explicit choice), Boot Loader Specification entries, GRUB. A target with
none of them cannot have its kernel arguments changed: that is an error, not
a silent skip. Planning only reads; :func:`write_edit` writes one file
atomically, keeping its owner and mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from provision.bootloader import bls, grub, helper
from provision.bootloader.cmdline import ArgChange
from provision.errors import ProvisionError
from provision.target.tree import TargetTree


@dataclass(frozen=True)
class FileEdit:
    path: str  # in the target
    content: bytes  # the whole new file
    what: str  # for the plan: "BLS entry", "GRUB defaults", ...


@dataclass(frozen=True)
class BootLoaderEdit:
    loader: str  # "helper", "bls" or "grub"
    change: ArgChange
    edits: tuple[FileEdit, ...] = ()  # files that change (none for a helper: it edits itself)
    unchanged: tuple[str, ...] = ()  # files that already say what the config asks


def _entries(tree: TargetTree) -> list[str]:
    found = []
    for directory in bls.ENTRY_DIRS:
        state = tree.state(directory)
        if state is None or state.kind != "directory":
            continue
        resolved = tree.resolve(directory)
        names = sorted(n for n in os.listdir(tree.host_path(resolved)) if n.endswith(".conf"))
        found += [f"{resolved}/{name}" for name in names]
    return list(dict.fromkeys(found))  # /boot/efi may be /efi through a link


def _read_text(tree: TargetTree, path: str) -> str:
    data = tree.read_bytes(path)
    if data is None:
        raise ProvisionError(f"{path}: not a readable file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProvisionError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _edits(loader: str, change: ArgChange, files: list[tuple[str, str, str, str]]) -> BootLoaderEdit:
    """``files``: (path, what, old text, new text)."""
    edits, unchanged = [], []
    for path, what, old, new in files:
        if new == old:
            unchanged.append(path)
        else:
            edits.append(FileEdit(path, new.encode("utf-8"), what))
    return BootLoaderEdit(loader, change, tuple(edits), tuple(unchanged))


def _grub_dropins(tree: TargetTree) -> list[str]:
    """/etc/default/grub.d/*.cfg in the order update-grub sources them."""
    if tree.state(grub.DROPINS) is None:
        return []
    resolved = tree.resolve(grub.DROPINS)
    state = tree.state(resolved)
    if state is None or state.kind != "directory":
        return []
    names = sorted(n for n in os.listdir(tree.host_path(resolved)) if n.endswith(".cfg"))
    return [f"{grub.DROPINS}/{name}" for name in names if _is_file(tree, f"{grub.DROPINS}/{name}")]


def _grub_files(tree: TargetTree, change: ArgChange) -> list[tuple[str, str, str, str]]:
    defaults = [p for p in [grub.DEFAULTS, *_grub_dropins(tree)] if _is_file(tree, p)]
    old = [(p, _read_text(tree, p)) for p in defaults]
    new = grub.edit_defaults_files(old, change)
    files = [(p, "GRUB defaults", text, edited) for (p, text), edited in zip(old, new, strict=True)]
    for path in grub.CONFIGS:
        if _is_file(tree, path):
            text = _read_text(tree, path)
            files.append((path, "GRUB config", text, grub.edit_config(text, change)))
    return files


def plan_edit(tree: TargetTree, change: ArgChange) -> BootLoaderEdit:
    if helper.available():
        return BootLoaderEdit("helper", change)
    entries = _entries(tree)
    if entries:
        return _edits("bls", change, [(p, "BLS entry", text, bls.edit_entry(text, change))
                                      for p, text in ((p, _read_text(tree, p)) for p in entries)])
    files = _grub_files(tree, change)
    if files:
        return _edits("grub", change, files)
    raise ProvisionError(
        "no boot loader configuration to edit in the target: no entries in "
        f"{', '.join(bls.ENTRY_DIRS)}, no {' or '.join(grub.CONFIGS)}, no {grub.DEFAULTS}, "
        f"and no {helper.TOOL} (see docs/embedding.md, 'Kernel arguments')"
    )


def _is_file(tree: TargetTree, path: str) -> bool:
    state = tree.state(path)
    if state is not None and state.kind == "link":
        state = tree.state(tree.resolve(path))
    return state is not None and state.kind == "file"


def write_edit(tree: TargetTree, edit: FileEdit) -> None:
    path = tree.resolve(edit.path)
    state = tree.state(path)
    mode, uid, gid = (state.mode, state.uid, state.gid) if state else (0o644, 0, 0)
    tree.write_file(path, [edit.content], mode=mode, uid=uid, gid=gid)
