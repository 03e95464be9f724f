"""Checks on filesystems and btrfs subvolumes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import GUID_HINT, check_path, duplicate_errors, is_guid
from provision.diagnostics import ConfigPath, Diagnostic, error, warning

# Longest label each format's mkfs accepts, in bytes (as Ignition measures).
MAX_LABEL = {"ext4": 16, "xfs": 12, "vfat": 11, "swap": 15, "btrfs": 256}
# vfat has a 32-bit volume id, written XXXX-XXXX (the dash optional).
_VFAT_ID_PATTERN = r"^[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}$"


def _fs(config: model.Config) -> Iterator[tuple[model.Filesystem, ConfigPath]]:
    for i, fs in enumerate(config.storage.filesystems):
        yield fs, ("storage", "filesystems", i)


def check_filesystem_fields(config: model.Config) -> Iterator[Diagnostic]:
    for fs, where in _fs(config):
        yield from check_path(fs.device, (*where, "device"))
        if fs.path is not None:
            yield from check_path(fs.path, (*where, "path"))
        if fs.format is None:
            yield from _without_format(fs, where)
            continue
        limit = MAX_LABEL.get(fs.format)
        if fs.label is not None and limit is not None and len(fs.label.encode()) > limit:
            yield error(
                f"filesystem labels cannot be longer than {limit} characters when using {fs.format}",
                (*where, "label"),
            )
        if fs.uuid:
            yield from _check_uuid(fs.format, fs.uuid, (*where, "uuid"))
        if fs.path and fs.format in ("swap", "none"):
            # Ignition accepts the path and does not mount (its test filesystem.create.swap.wipe)
            yield warning(f"a {fs.format} filesystem is not mounted; its path is ignored", (*where, "path"))


def _without_format(fs: model.Filesystem, where: ConfigPath) -> Iterator[Diagnostic]:
    if fs.label is not None:
        yield error("filesystem must specify format if label is specified", (*where, "label"))
    given = [
        key
        for key, is_set in (
            ("path", fs.path is not None),
            ("uuid", fs.uuid is not None),
            ("wipeFilesystem", fs.wipe_filesystem),
            ("options", bool(fs.options)),
            ("mountOptions", bool(fs.mount_options)),
            ("subvolumes", bool(fs.subvolumes)),
        )
        if is_set
    ]
    if given:
        yield error(
            "format cannot be empty when " + ", ".join(given) + " is specified",
            (*where, "device"),
            'set "format" (ext4, xfs, btrfs, vfat, swap or none)',
        )


def _check_uuid(fmt: str, uuid: str, where: ConfigPath) -> Iterator[Diagnostic]:
    if fmt == "vfat":
        if not re.fullmatch(_VFAT_ID_PATTERN, uuid):
            yield error("vfat volume id must be 8 hex digits, e.g. 1A2B-3C4D", where)
    elif fmt != "none" and not is_guid(uuid):
        yield error(f"{fmt} filesystem uuid is not a UUID", where, GUID_HINT)


def check_subvolumes(config: model.Config) -> Iterator[Diagnostic]:
    for fs, where in _fs(config):
        if fs.subvolumes and fs.format != "btrfs":
            yield error("subvolumes are only supported on btrfs", (*where, "subvolumes"))
            continue
        for j, sub in enumerate(fs.subvolumes):
            swhere = (*where, "subvolumes", j)
            parts = sub.name.split("/")
            if sub.name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                yield error(
                    "subvolume name must be a normalised relative path (no leading /, no . or ..)",
                    (*swhere, "name"),
                )
            if sub.path is not None:
                yield from check_path(sub.path, (*swhere, "path"))
        yield from duplicate_errors(
            ((s.name, (*where, "subvolumes", j, "name")) for j, s in enumerate(fs.subvolumes)),
            "subvolume name",
        )


def check_filesystem_duplicates(config: model.Config) -> Iterator[Diagnostic]:
    yield from duplicate_errors(
        ((fs.device, (*w, "device")) for fs, w in _fs(config)), "filesystem device"
    )
    mounts: list[tuple[str, ConfigPath]] = []
    for fs, where in _fs(config):
        if fs.path:
            mounts.append((fs.path, (*where, "path")))
        for j, sub in enumerate(fs.subvolumes):
            if sub.path:
                mounts.append((sub.path, (*where, "subvolumes", j, "path")))
    yield from duplicate_errors(mounts, "mount path")


def check_filesystems_on_disks(config: model.Config) -> Iterator[Diagnostic]:
    disks = {d.device: d for d in config.storage.disks}
    for fs, where in _fs(config):
        disk = disks.get(fs.device)
        if disk is None:
            continue
        if disk.partitions:
            yield error("filesystem overwrites partitioned device", (*where, "device"))
        elif disk.wipe_table and not fs.wipe_filesystem:
            yield warning(
                "device matches disk with wipeTable enabled; filesystem will be wiped",
                (*where, "device"),
            )


CHECKS = (
    check_filesystem_fields,
    check_subvolumes,
    check_filesystem_duplicates,
    check_filesystems_on_disks,
)
