"""Refuse to write to a device that is in use.

A device is busy when it, or one of its partitions, is mounted, is active
swap, is held by another block device (RAID member, LUKS/LVM backing device),
or carries the running root filesystem. Reading /proc and /sys only.
"""

from __future__ import annotations

import os
from pathlib import Path

from provision.disks.devices import SYS_BLOCK, device_number, partitions_of
from provision.errors import ProvisionError


class DeviceBusyError(ProvisionError):
    """The device is mounted, swapped on, held, or holds the running root."""


def _majmin(name: str) -> str | None:
    try:
        return (SYS_BLOCK / name / "dev").read_text().strip()
    except OSError:
        return None


def _family(name: str) -> dict[str, str]:
    """major:minor -> kernel name, for a device and its partitions."""
    names = [name, *partitions_of(name).values()]
    return {mm: n for n in names if (mm := _majmin(n))}


def _mounts() -> list[tuple[str, str]]:
    """(major:minor, mount point) of every mount in this namespace.

    Both the superblock's number and the mount source's are listed: btrfs
    reports an anonymous 0:N device number, so only the source names the disk.
    """
    out: list[tuple[str, str]] = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or "-" not in fields:
            continue
        mount_point = fields[4].replace("\\040", " ")
        out.append((fields[2], mount_point))
        sep = fields.index("-")
        source = fields[sep + 2] if len(fields) > sep + 2 else ""
        if source.startswith("/dev/"):
            try:
                st = os.stat(source)
            except OSError:
                continue
            out.append((f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}", mount_point))
    return out


def _swaps() -> list[str]:
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return []
    return [line.split()[0] for line in lines if line.split()]


def _lower_devices(majmin: str, seen: set[str] | None = None) -> set[str]:
    """major:minor of a device and everything it is built on (slaves, parent disk)."""
    seen = set() if seen is None else seen
    if majmin in seen:
        return seen
    seen.add(majmin)
    node = Path("/sys/dev/block", majmin)
    try:
        real = node.resolve()
    except OSError:
        return seen
    if (real / "partition").exists():
        parent_dev = real.parent / "dev"
        if parent_dev.exists():
            _lower_devices(parent_dev.read_text().strip(), seen)
    slaves = real / "slaves"
    if slaves.is_dir():
        for slave in slaves.iterdir():
            dev_file = slave / "dev"
            if dev_file.exists():
                _lower_devices(dev_file.read_text().strip(), seen)
    return seen


def busy_reason(device: str) -> str | None:
    """Why ``device`` must not be written to, or None if it is free."""
    major, minor = device_number(device)
    name = Path(f"/sys/dev/block/{major}:{minor}").resolve().name
    family = _family(name)

    root = os.stat("/").st_dev
    root_mm = f"{os.major(root)}:{os.minor(root)}"
    for mm in _lower_devices(root_mm) & family.keys():
        return f"/dev/{family[mm]} holds the running root filesystem"

    for mm, mount_point in _mounts():
        if mm in family:
            return f"/dev/{family[mm]} is mounted at {mount_point}"

    for swap in _swaps():
        try:
            st = os.stat(swap)
        except OSError:
            continue
        mm = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        if mm in family:
            return f"/dev/{family[mm]} is in use as swap"

    for member in family.values():
        holders = SYS_BLOCK / member / "holders"
        try:
            held_by = sorted(p.name for p in holders.iterdir())
        except OSError:
            continue
        if held_by:
            return f"/dev/{member} is in use by {', '.join(held_by)} (RAID, LUKS or LVM)"
    return None


def refuse_if_busy(device: str, purpose: str) -> None:
    reason = busy_reason(device)
    if reason:
        raise DeviceBusyError(f"refusing to {purpose} {device}: {reason}")
