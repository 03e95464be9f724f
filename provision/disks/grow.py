"""Grow a partition to the free space after it, then what is on it (cloud-init's growpart
and resize_rootfs; Ignition has no equivalent).

For one target — a mount point (its filesystem's device) or a device path:

1. the partition is extended to the end of the free space that follows it
   (sfdisk ``-N`` with ``, +``; a GPT whose backup header is not at the end
   of a disk that grew is relocated first), and the kernel is told the new
   size with ``partx --update`` (works while the partition is mounted);
2. what the partition holds is grown: ext2/3/4 with resize2fs (mounted or
   not), XFS with xfs_growfs and btrfs with ``btrfs filesystem resize max``
   (both need it mounted), an LVM physical volume with pvresize.

Nothing to grow (already filling its space) is not an error and changes
nothing, so a second boot or a rerun is a no-op. A device that is not a
partition (a whole disk, a RAID array, a LUKS or LVM volume) is left as it
is and said so: growing through those layers is not supported.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from provision.disks.devices import SYS_BLOCK, kernel_name
from provision.disks.probe import probe
from provision.errors import ProvisionError
from provision.run import run

log = logging.getLogger(__name__)

_C_LOCALE = {"LC_ALL": "C"}
# growpart leaves less than this unclaimed rather than move a partition's end by a few sectors.
MIN_GROWTH_SECTORS = 2048


@dataclass(frozen=True)
class MountedFs:
    device: str
    mountpoint: str
    fstype: str


@dataclass(frozen=True)
class GrowResult:
    device: str
    partition_grown: bool
    contents: str  # what was grown on it: "ext4", "xfs", "btrfs", "LVM2_member", "" for nothing

    @property
    def changed(self) -> bool:
        return self.partition_grown or bool(self.contents)


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (``\\040`` for a space)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_of(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> MountedFs | None:
    """The filesystem mounted at ``path`` itself (not above it), or None."""
    wanted = os.path.realpath(path)
    found = None
    for line in mountinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 2 and _unescape(fields[4]) == wanted:
            found = MountedFs(_unescape(tail[1]), wanted, tail[0])  # the last mount wins
    return found


def _partition_of(device: str) -> tuple[str, int] | None:
    """(disk node, partition number) when ``device`` is a partition; None otherwise."""
    name = kernel_name(device)
    try:
        number = int((SYS_BLOCK / name / "partition").read_text())
    except (OSError, ValueError):
        return None
    disk = (SYS_BLOCK / name).resolve().parent.name
    return f"/dev/{disk}", number


def _sectors(disk: str) -> int:
    return int((SYS_BLOCK / kernel_name(disk) / "size").read_text())  # 512-byte units


def _table(disk: str) -> dict[str, object]:
    done = run("sfdisk", ["--json", disk], env=_C_LOCALE)
    table: dict[str, object] = json.loads(done.stdout)["partitiontable"]
    return table


def _free_after(disk: str, number: int) -> tuple[int, bool]:
    """(sectors free after partition ``number``, the GPT backup header is misplaced)."""
    table = _table(disk)
    sector = int(str(table.get("sectorsize", 512)))
    total = _sectors(disk) * 512 // sector
    parts = table.get("partitions") or []
    assert isinstance(parts, list)
    mine = next((p for p in parts if p["node"].endswith(str(number)) and
                 _node_number(p["node"]) == number), None)
    if mine is None:
        raise ProvisionError(f"{disk}: no partition {number} in its table")
    end = int(mine["start"]) + int(mine["size"])
    starts = [int(p["start"]) for p in parts if int(p["start"]) >= end]
    if table.get("label") == "gpt":
        # The backup GPT takes the last 33 sectors; while it sits where the disk
        # used to end, the space behind it is not usable until it is relocated.
        last_usable = int(str(table.get("lastlba", total - 34)))
        limit, misplaced = last_usable + 1, last_usable < total - 34
    else:
        limit, misplaced = total, False
    if mine.get("type") in ("5", "f", "85"):  # an MBR extended partition is not grown
        return 0, False
    return (min([*starts, limit]) - end), misplaced


def _node_number(node: str) -> int:
    digits = ""
    for char in reversed(node):
        if not char.isdigit():
            break
        digits = char + digits
    return int(digits) if digits else -1


def grow_partition(device: str) -> bool:
    """Extend partition ``device`` over the free space after it; False when there is none."""
    where = _partition_of(device)
    if where is None:
        raise ProvisionError(f"{device} is not a partition; only partitions are grown")
    disk, number = where
    free, misplaced = _free_after(disk, number)
    if misplaced:
        run("sfdisk", ["--relocate", "gpt-bak-std", disk], env=_C_LOCALE)
        free, _ = _free_after(disk, number)
    if free < MIN_GROWTH_SECTORS:
        log.info("%s fills its space already", device)
        return False
    # --no-reread/--no-tell-kernel: the partition may be mounted; partx tells the kernel.
    run("sfdisk", ["--no-reread", "--no-tell-kernel", "-N", str(number), disk],
        input=", +\n", env=_C_LOCALE)
    run("partx", ["--update", "--nr", str(number), disk])
    return True


def grow_contents(device: str, mountpoint: str | None) -> str:
    """Grow what ``device`` holds to its size; returns its type ("" when nothing was done)."""
    kind = probe(device).type or ""
    if kind in ("ext2", "ext3", "ext4"):
        if mountpoint is None:
            # Offline, resize2fs insists on a freshly checked filesystem; -p
            # repairs only what is safe and fails (exit >= 4) otherwise.
            checked = run("e2fsck", ["-f", "-p", device], check=False)
            if checked.status >= 4:
                raise ProvisionError(f"{device}: e2fsck found problems it cannot fix safely: "
                                     f"{checked.stderr.strip() or checked.stdout.strip()}")
        run("resize2fs", [device])
    elif kind == "xfs":
        if mountpoint is None:
            raise ProvisionError(f"{device}: XFS grows only while mounted")
        run("xfs_growfs", [mountpoint])
    elif kind == "btrfs":
        if mountpoint is None:
            raise ProvisionError(f"{device}: btrfs grows only while mounted")
        run("btrfs", ["filesystem", "resize", "max", mountpoint])
    elif kind == "LVM2_member":
        run("pvresize", [device])
    elif kind:
        log.info("%s holds %s, which is not grown", device, kind)
        return ""
    return kind


def grow(device: str, mountpoint: str | None, *, resize_contents: bool = True) -> GrowResult:
    """Grow the partition ``device`` and (unless told not to) what it holds."""
    grown = grow_partition(device)
    # Always: a run killed between the partition and the filesystem converges;
    # each tool does nothing when the filesystem already fills its device.
    contents = grow_contents(device, mountpoint) if resize_contents else ""
    return GrowResult(device, grown, contents)


def growable_device(device: str) -> bool:
    return _partition_of(device) is not None


def device_of(path: str) -> str:
    """A device path, with /dev/disk/by-* links resolved."""
    resolved = os.path.realpath(path)
    if not Path(resolved).exists():
        raise ProvisionError(f"{path} does not exist")
    return resolved
