"""Has this root been provisioned already? Asked before the root is mounted.

The disks stage runs before the root filesystem is mounted, so the result
record inside the root cannot simply be read. We find the root device from
``root=`` on the kernel command line (or ``--root-device``), mount it
read-only on a private mount point, read the record and unmount. No device
(yet), no filesystem, or no record all mean "not provisioned".
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from provision.apply.result import ResultRecord, read_result
from provision.errors import ProvisionError
from provision.platforms.cmdline import split_cmdline
from provision.run import have_tool, run
from provision.target.tree import TargetTree

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


def provisioned_record(device: str, mount_point: Path) -> ResultRecord | None:
    """The result record on ``device`` if it says the root was provisioned."""
    mount_point.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        done = run("mount", ["-o", "ro", device, str(mount_point)], check=False, timeout=60)
    except ProvisionError as exc:  # no mount tool: cannot tell
        log.warning("cannot look into %s: %s", device, exc)
        return None
    if done.status != 0:
        log.info("root device %s does not mount (%s): not provisioned", device, done.stderr.strip())
        return None
    try:
        record = read_record(mount_point)
    finally:
        run("umount", [str(mount_point)], check=False, timeout=60)
    if record is not None and record.status == SUCCEEDED:
        return record
    return None
