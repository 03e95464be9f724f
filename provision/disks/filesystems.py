"""Create or reuse a filesystem, with Ignition's reuse rules.

An existing filesystem is reused when ``wipeFilesystem`` is false and its
format matches, and so do its label and UUID where the config sets them.
Anything else already on the device is an error unless ``wipeFilesystem``,
in which case every signature is wiped (``wipefs -a``) and the filesystem
made anew with the requested label, UUID and mkfs options.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.config import model
from provision.disks.probe import Found
from provision.errors import ProvisionError
from provision.run import run

FORMATS = ("ext4", "xfs", "btrfs", "vfat", "swap", "none")


class FilesystemError(ProvisionError):
    """A device holds something else and wiping was not allowed."""


@dataclass(frozen=True)
class FilesystemAction:
    """``kind``: create, wipe-create, reuse, wipe, leave (format none, no wipe)."""

    kind: str
    reason: str = ""


def _canonical_uuid(fmt: str, uuid: str) -> str:
    # vfat volume ids are shown as ABCD-1234; compare them without the dash.
    text = uuid.strip().lower()
    return text.replace("-", "") if fmt == "vfat" else text


def decide(fs: model.Filesystem, found: Found) -> FilesystemAction:
    """What to do with ``fs.device`` given what blkid found there now."""
    fmt = fs.format or "none"
    if fmt not in FORMATS:
        raise FilesystemError(f"{fs.device}: unsupported filesystem format {fmt!r}")
    if fs.wipe_filesystem:
        if fmt == "none":
            return FilesystemAction("wipe", "wipeFilesystem with format none")
        return FilesystemAction("wipe-create", f"wipeFilesystem (found {found.describe()})")
    if found.ambivalent:
        raise FilesystemError(
            f"{fs.device} holds several conflicting signatures and wipeFilesystem is false"
        )
    if found.type is None:
        if fmt == "none":
            return FilesystemAction("leave", "format none")
        return FilesystemAction("create", "no filesystem found")
    if fs.format == "none":
        # As Ignition (filesystem.erase.block.device.invalidoptions): "none" asks for no
        # filesystem, and removing the one there needs wipeFilesystem.
        raise FilesystemError(
            f"{fs.device} holds {found.describe()}, the config's format is none and "
            "wipeFilesystem is false"
        )
    if fmt == "none":
        return FilesystemAction("leave", f"no format given; keeping {found.describe()}")
    problems = []
    if found.type != fmt:
        problems.append(f"format {found.type}, wanted {fmt}")
    if fs.label is not None and found.label != fs.label:
        problems.append(f"label {found.label!r}, wanted {fs.label!r}")
    if fs.uuid is not None and _canonical_uuid(fmt, found.uuid or "") != _canonical_uuid(
        fmt, fs.uuid
    ):
        problems.append(f"uuid {found.uuid}, wanted {fs.uuid}")
    if not problems:
        return FilesystemAction("reuse", f"existing {found.describe()} matches")
    raise FilesystemError(
        f"{fs.device} already holds {found.describe()} ({'; '.join(problems)}) and "
        "wipeFilesystem is false (Ignition reuses a filesystem only when format, label "
        "and uuid match)"
    )


def mkfs_command(fs: model.Filesystem, device: str) -> tuple[str, list[str]]:
    """(tool, args) creating ``fs`` on ``device`` with its label, uuid and options."""
    fmt = fs.format or "none"
    label, uuid = fs.label, fs.uuid
    args: list[str]
    if fmt == "ext4":
        tool, args = "mkfs.ext4", ["-F", "-q"]
        args += ["-L", label] if label is not None else []
        args += ["-U", uuid] if uuid is not None else []
    elif fmt == "btrfs":
        tool, args = "mkfs.btrfs", ["-f", "-q"]
        args += ["-L", label] if label is not None else []
        args += ["-U", uuid] if uuid is not None else []
    elif fmt == "xfs":
        tool, args = "mkfs.xfs", ["-f", "-q"]
        args += ["-L", label] if label is not None else []
        args += ["-m", f"uuid={uuid}"] if uuid is not None else []
    elif fmt == "vfat":
        tool, args = "mkfs.vfat", []
        args += ["-n", label] if label is not None else []
        args += ["-i", uuid.replace("-", "")] if uuid is not None else []
    elif fmt == "swap":
        tool, args = "mkswap", ["-f"]
        args += ["-L", label] if label is not None else []
        args += ["-U", uuid] if uuid is not None else []
    else:
        raise FilesystemError(f"{device}: cannot create a filesystem of format {fmt!r}")
    return tool, [*args, *fs.options, device]


def apply_filesystem(fs: model.Filesystem, device: str, action: FilesystemAction) -> None:
    """Carry out ``action`` on ``device`` (already resolved to a node)."""
    if action.kind in ("wipe", "wipe-create"):
        run("wipefs", ["-a", device])
    if action.kind in ("create", "wipe-create"):
        tool, args = mkfs_command(fs, device)
        run(tool, args)
