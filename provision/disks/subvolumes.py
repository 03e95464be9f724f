"""Btrfs subvolumes: create the configured ones that are missing.

The filesystem is mounted on a private scratch directory for the duration;
a name that exists as a plain directory (not a subvolume) is an error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from provision.config import model
from provision.disks.state import state_dir
from provision.errors import ProvisionError
from provision.run import run

# Every btrfs subvolume's root directory has this inode number.
_SUBVOLUME_ROOT_INODE = 256


def check_name(name: str) -> str:
    """A subvolume name is a relative path without '..'; return it normalised."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise ProvisionError(f"invalid btrfs subvolume name {name!r}: use a relative path without '..'")
    return str(path)


@contextlib.contextmanager
def scratch_mount(device: str, fstype: str) -> Iterator[Path]:
    """Mount ``device`` on a private scratch directory; always unmounted after."""
    point = Path(tempfile.mkdtemp(prefix="mnt-", dir=state_dir()))
    try:
        run("mount", ["-t", fstype, device, str(point)])
        try:
            yield point
        finally:
            run("umount", [str(point)])
    finally:
        point.rmdir()


def missing_subvolumes(top: Path, names: Sequence[str]) -> list[str]:
    """Which ``names`` are not subvolumes under the mounted top level ``top``."""
    missing = []
    for name in names:
        path = top / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            missing.append(name)
            continue
        if st.st_ino != _SUBVOLUME_ROOT_INODE:
            raise ProvisionError(f"{name!r} exists on the btrfs filesystem but is not a subvolume")
    return missing


def create_subvolumes(device: str, subvolumes: Sequence[model.Subvolume]) -> list[str]:
    """Create the missing subvolumes on ``device``; return the names created."""
    names = sorted({check_name(s.name) for s in subvolumes}, key=lambda n: n.count("/"))
    if not names:
        return []
    with scratch_mount(device, "btrfs") as top:
        missing = missing_subvolumes(top, names)
        for name in missing:
            run("btrfs", ["subvolume", "create", str(top / name)])
    return missing
