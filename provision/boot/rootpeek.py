"""Has this root been provisioned already? Asked before the root is mounted.

The disks stage runs before the root filesystem is mounted, so the result
record inside the root cannot simply be read. We find the root device from
``root=`` on the kernel command line (or ``--root-device``), mount it
read-only on a private mount point, read the record and unmount. No device
(yet), no filesystem, or no record all mean "not provisioned".

The disks phase looks the same way at what its plan must know about the
image (:func:`image_facts`: the systemd version that will unlock volumes
enrolled with systemd-cryptenroll), and unmounts before any disk changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from provision.apply.result import ResultRecord, read_result
from provision.errors import ProvisionError
from provision.platforms.cmdline import split_cmdline
from provision.run import have_tool, run
from provision.target.tree import TargetTree

if TYPE_CHECKING:
    from provision.stages.base import RootFacts

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
_TAGS = ("LABEL", "UUID", "PARTUUID", "PARTLABEL")


def root_spec_from_cmdline(cmdline: str) -> str | None:
    """The value of the last ``root=`` on the kernel command line."""
    found = None
    for word in split_cmdline(cmdline):
        if word == "--":
            break
        if word.startswith("root="):
            found = word[len("root="):] or None
    return found


def resolve_device(spec: str) -> str | None:
    """A device node for ``spec`` (/dev/..., LABEL=, UUID=, PARTUUID=, PARTLABEL=), if present."""
    spec = spec.removeprefix("block:")
    if spec.startswith("/dev/"):
        return spec if os.path.exists(spec) else None
    tag, sep, value = spec.partition("=")
    if not sep or tag.upper() not in _TAGS:
        return None
    link = Path("/dev/disk", f"by-{tag.lower()}", value)
    if link.exists():
        return str(link)
    if not have_tool("blkid"):
        return None
    done = run("blkid", ["-l", "-o", "device", "-t", f"{tag.upper()}={value}"], check=False)
    device = done.stdout.strip()
    return device or None


def read_record(root: Path) -> ResultRecord | None:
    with TargetTree(root) as tree:
        return read_result(tree)


@contextlib.contextmanager
def _mounted_read_only(device: str, mount_point: Path) -> Iterator[Path | str]:
    """``device`` mounted read-only at ``mount_point`` for the block; yields the mount
    point, or why it could not be mounted (a string)."""
    mount_point.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        done = run("mount", ["-o", "ro", device, str(mount_point)], check=False, timeout=60)
    except ProvisionError as exc:  # no mount tool: cannot tell
        yield str(exc)
        return
    if done.status != 0:
        yield f"it does not mount: {done.stderr.strip() or f'mount exited {done.status}'}"
        return
    try:
        yield mount_point
    finally:
        run("umount", [str(mount_point)], check=False, timeout=60)


def provisioned_record(device: str, mount_point: Path) -> ResultRecord | None:
    """The result record on ``device`` if it says the root was provisioned."""
    with _mounted_read_only(device, mount_point) as mounted:
        if isinstance(mounted, str):
            log.info("root device %s: not provisioned (%s)", device, mounted)
            return None
        record = read_record(mounted)
    if record is not None and record.status == SUCCEEDED:
        return record
    return None


def image_facts(spec: str | None, mount_point: Path) -> RootFacts:
    """What the disks phase must know about the image, read from the root device ``spec``
    (mounted read-only and unmounted again, before any disk changes)."""
    from provision.disks.cryptenroll import systemd_version
    from provision.stages.base import RootFacts

    if spec is None:
        return RootFacts("the root filesystem", unreadable="no root= on the kernel command line")
    device = resolve_device(spec)
    if device is None:
        return RootFacts(f"root device {spec}", unreadable="the device is not present")
    where = f"root device {spec}" + (f" ({device})" if device != spec else "")
    with _mounted_read_only(device, mount_point) as mounted:
        if isinstance(mounted, str):
            return RootFacts(where, unreadable=mounted)
        return RootFacts(where, systemd=systemd_version(mounted))
