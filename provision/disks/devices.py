"""Block devices by path: sysfs lookups, kernel names and udev-style link names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provision.errors import ProvisionError

SYS_BLOCK = Path("/sys/class/block")


def udev_running() -> bool:
    """True when a udev daemon manages /dev (its control socket exists)."""
    return Path("/run/udev/control").exists()


def device_number(device: str) -> tuple[int, int]:
    """(major, minor) of a block device node; ProvisionError if it is not one."""
    try:
        st = os.stat(device)
    except FileNotFoundError:
        raise ProvisionError(f"device {device} does not exist") from None
    except OSError as exc:
        raise ProvisionError(f"cannot inspect {device}: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise ProvisionError(f"{device} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def sysfs_dir(device: str) -> Path:
    """The sysfs directory of a block device node (follows /dev/disk/by-* links)."""
    major, minor = device_number(device)
    return Path(f"/sys/dev/block/{major}:{minor}").resolve()


def kernel_name(device: str) -> str:
    return sysfs_dir(device).name


def is_partition(name: str) -> bool:
    return (SYS_BLOCK / name / "partition").exists()


def partitions_of(disk_name: str) -> dict[int, str]:
    """Partition number -> kernel name, as the kernel currently sees the disk."""
    out = {}
    base = SYS_BLOCK / disk_name
    try:
        children = list(base.iterdir())
    except OSError:
        return {}
    for child in children:
        number_file = child / "partition"
        try:
            out[int(number_file.read_text())] = child.name
        except (OSError, ValueError):
            continue
    return out


def partition_node_name(disk_name: str, number: int) -> str:
    """The kernel's name for partition ``number`` of ``disk_name`` (sda1, loop0p1, nvme0n1p1)."""
    return f"{disk_name}p{number}" if disk_name[-1:].isdigit() else f"{disk_name}{number}"


def loop_without_partscan(disk_name: str) -> bool:
    """A loop device attached without ``losetup -P`` cannot carry partitions."""
    flag = SYS_BLOCK / disk_name / "loop" / "partscan"
    try:
        return flag.read_text().strip() == "0"
    except OSError:
        return False


# Characters udev leaves alone in link names; anything else becomes \xNN.
_LINK_SAFE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#+-.:=@_")


def encode_link_name(text: str) -> str:
    """Encode a label the way udev does for /dev/disk/by-label and by-partlabel."""
    out = []
    for ch in text:
        if ch in _LINK_SAFE or (ord(ch) > 127):
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}")
    return "".join(out)
