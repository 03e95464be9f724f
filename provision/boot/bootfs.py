"""The target's boot filesystems, mounted before the root is, for the kargs stage.

Kernel arguments live in the boot loader's files: on the root's /boot, or on
a separate /boot, ESP (/efi, /boot/efi) that the root's /etc/fstab lists.
The disks stage runs before initramfs-tools or systemd mount the root, so
this mounts the root device (``root=``) read-write on a private mount point,
then those fstab entries below it, and unmounts everything again afterwards.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from provision.boot.rootpeek import resolve_device
from provision.errors import ProvisionError
from provision.run import run

log = logging.getLogger(__name__)

# Mount points a boot loader's files may be under, outermost first.
BOOT_MOUNT_POINTS = ("/boot", "/efi", "/boot/efi")


def boot_entries_from_fstab(text: str) -> list[tuple[str, str, str]]:
    """(device spec, mount point, type) of the fstab lines for boot filesystems."""
    found = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        # noauto lines too: the loader reads its files whether or not the
        # booted system mounts the partition.
        if len(fields) >= 3 and fields[1].rstrip("/") in BOOT_MOUNT_POINTS:
            found.append((fields[0], fields[1].rstrip("/"), fields[2]))
    return sorted(found, key=lambda entry: BOOT_MOUNT_POINTS.index(entry[1]))


def _mount(device: str, where: Path, fstype: str = "auto") -> None:
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    args = ["-o", "rw"] + (["-t", fstype] if fstype not in ("auto", "") else []) + [device, str(where)]
    run("mount", args, timeout=60)


@contextlib.contextmanager
def mounted_boot_filesystems(root_spec: str | None, mount_point: Path) -> Iterator[Path]:
    """The root device mounted at ``mount_point`` with its boot filesystems below it."""
    if root_spec is None:
        raise ProvisionError("no root= on the kernel command line: cannot find the boot loader's files")
    device = resolve_device(root_spec)
    if device is None:
        raise ProvisionError(f"root device {root_spec} not found: cannot edit the boot loader's files")
    mounted: list[Path] = []
    try:
        _mount(device, mount_point)
        mounted.append(mount_point)
        try:
            fstab = (mount_point / "etc/fstab").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            fstab = ""
        for spec, path, fstype in boot_entries_from_fstab(fstab):
            boot_device = resolve_device(spec)
            if boot_device is None:
                raise ProvisionError(f"{path} ({spec} in the root's /etc/fstab) not found: "
                                     "cannot edit the boot loader's files")
            target = mount_point / path.lstrip("/")
            _mount(boot_device, target, fstype)
            mounted.append(target)
        yield mount_point
    finally:
        for where in reversed(mounted):
            done = run("umount", [str(where)], check=False, timeout=60)
            if done.status != 0:
                log.warning("unmounting %s failed: %s", where, done.stderr.strip())
