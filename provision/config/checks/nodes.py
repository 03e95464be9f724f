"""Checks on files, directories and links other than their paths: modes,
overwrite, owners, link targets."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from provision.config import model
from provision.config.checks._common import check_path
from provision.diagnostics import ConfigPath, Diagnostic, error, warning

MAX_MODE = 0o7777


def _sensible(mode: int) -> bool:
    """Permission bits a person plausibly means: the owner can read, each class
    can do no more than the one before it, and nobody may write without reading."""
    owner, group, other = (mode >> 6) & 7, (mode >> 3) & 7, mode & 7
    if not owner & 4:
        return False
    if group & ~owner or other & ~group:
        return False
    return all(not (bits & 2) or bits & 4 for bits in (owner, group, other))


@cache  # a config repeats a few modes over many files
def decimal_meant(mode: int) -> str | None:
    """The octal digits a mode was probably meant as, when it looks like octal
    digits written as a decimal number (644 instead of 0o644 = 420)."""
    digits = str(mode)
    if not 3 <= len(digits) <= 4 or any(d in "89" for d in digits):
        return None
    meant = int(digits, 8)
    if not _sensible(meant) or (mode <= MAX_MODE and _sensible(mode)):
        return None
    return digits


def _mode_diagnostics(mode: int | None, where: ConfigPath) -> Iterator[Diagnostic]:
    if mode is None:
        return
    meant = decimal_meant(mode)
    hint = f"did you mean 0o{meant} = {int(meant, 8)}?" if meant else None
    if not 0 <= mode <= MAX_MODE:
        yield error(f"mode {mode} is out of range (0 to {MAX_MODE}, i.e. 0o7777)", where, hint)
    elif meant:
        yield warning(
            f"mode {mode} (0o{mode:o}) looks like octal {meant} written as a decimal number",
            where,
            hint + " (JSON has no octal numbers; YAML reads 0644 as octal.)" if hint else None,
        )


def check_modes(config: model.Config) -> Iterator[Diagnostic]:
    for i, f in enumerate(config.storage.files):
        yield from _mode_diagnostics(f.mode, ("storage", "files", i, "mode"))
    for i, d in enumerate(config.storage.directories):
        yield from _mode_diagnostics(d.mode, ("storage", "directories", i, "mode"))


def check_overwrite_needs_source(config: model.Config) -> Iterator[Diagnostic]:
    for i, f in enumerate(config.storage.files):
        # An empty source ("") is set: it means an empty file, as in Ignition.
        if f.overwrite and (f.contents is None or f.contents.source is None):
            yield error(
                "overwrite must be false if contents.source is unspecified",
                ("storage", "files", i, "overwrite"),
                "give the file contents, or drop overwrite to keep an existing file",
            )


def _owner_diagnostics(owner: model.NodeOwner, where: ConfigPath) -> Iterator[Diagnostic]:
    if owner.id is not None and owner.name:
        yield error("cannot set both id and name", where, "give the owner by id or by name")
    if owner.id is not None and owner.id >= 2**32 - 1:
        yield error(f"id {owner.id} is out of range (at most 4294967294)", (*where, "id"))


def check_owners(config: model.Config) -> Iterator[Diagnostic]:
    storage = config.storage
    owned: list[tuple[str, int, model.NodeOwner, model.NodeOwner]] = [
        *(("files", i, f.user, f.group) for i, f in enumerate(storage.files)),
        *(("directories", i, d.user, d.group) for i, d in enumerate(storage.directories)),
        *(("links", i, k.user, k.group) for i, k in enumerate(storage.links)),
    ]
    for kind, i, user, group in owned:
        yield from _owner_diagnostics(user, ("storage", kind, i, "user"))
        yield from _owner_diagnostics(group, ("storage", kind, i, "group"))


def check_links(config: model.Config) -> Iterator[Diagnostic]:
    directories = {d.path for d in config.storage.directories}
    for i, link in enumerate(config.storage.links):
        where: ConfigPath = ("storage", "links", i)
        if not link.target:
            yield error("link target is required", (*where, "target"))
            continue
        if not link.hard:
            continue
        yield from check_path(link.target, (*where, "target"))
        if link.target in directories:
            yield error("hard link target is a directory", (*where, "target"))
        for owner in ("user", "group"):
            value: model.NodeOwner = getattr(link, owner)
            if value.id is not None or value.name:
                yield warning(
                    f"{owner} is ignored for a hard link",
                    (*where, owner),
                    "a hard link shares its target's owner",
                )


CHECKS = (check_modes, check_overwrite_needs_source, check_owners, check_links)
