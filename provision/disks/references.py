"""Config device references: a node path, a /dev/disk/by-* link, or something this run makes.

A filesystem may name a partition the same config creates
(``/dev/disk/by-partlabel/root``), an array (``/dev/md/data``) or an opened
LUKS volume (``/dev/mapper/secret``). Such references are known while
planning, before the device exists. Without udev nobody makes by-* links for
existing devices either, so those are looked up with ``blkid -t``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from provision.disks.devices import encode_link_name
from provision.disks.waiting import wait_for_block_device
from provision.errors import ProvisionError
from provision.run import run

# by-* link kind -> blkid tag
_LINK_TAGS = {
    "by-label": "LABEL",
    "by-uuid": "UUID",
    "by-partlabel": "PARTLABEL",
    "by-partuuid": "PARTUUID",
}


@dataclass(frozen=True)
class Planned:
    """A device this run creates or changes: ``kind`` partition, raid or luks."""

    kind: str
    key: str  # disk path for partitions, else the array/volume name
    number: int = 0
    changed: bool = True
    node: str = ""  # the kernel's node path, for partitions


@dataclass
class References:
    """Paths that name devices this run makes, mapped to what makes them."""

    planned: dict[str, Planned] = field(default_factory=dict)

    def add_partition(
        self, disk_path: str, node: str, number: int, label: str, guid: str, changed: bool
    ) -> None:
        entry = Planned("partition", disk_path, number, changed, node)
        self.planned[node] = entry
        if label:
            self.planned[f"/dev/disk/by-partlabel/{encode_link_name(label)}"] = entry
        if guid:
            self.planned[f"/dev/disk/by-partuuid/{guid.lower()}"] = entry

    def add_raid(self, name: str) -> None:
        self.planned[f"/dev/md/{name}"] = Planned("raid", name)

    def add_luks(self, name: str) -> None:
        entry = Planned("luks", name)
        self.planned[f"/dev/mapper/{name}"] = entry
        self.planned[f"/dev/disk/by-id/dm-name-{name}"] = entry

    def lookup(self, path: str) -> Planned | None:
        return self.planned.get(os.path.normpath(path))


def _decode_link_name(name: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def find_by_tag(path: str) -> str | None:
    """Resolve /dev/disk/by-{label,uuid,partlabel,partuuid}/X by probing (no udev needed)."""
    parts = os.path.normpath(path).split("/")
    if len(parts) != 5 or parts[:3] != ["", "dev", "disk"] or parts[3] not in _LINK_TAGS:
        return None
    tag = _LINK_TAGS[parts[3]]
    done = run("blkid", ["-l", "-o", "device", "-t", f"{tag}={_decode_link_name(parts[4])}"], check=False)
    found = done.stdout.strip()
    return found if done.status == 0 and found else None


def existing_device(path: str, timeout: float | None = None) -> str:
    """The real node of an existing device reference; wait for it, then fail naming it."""
    if os.path.exists(path):
        return os.path.realpath(path)
    found = find_by_tag(path)
    if found:
        return found
    try:
        return wait_for_block_device(path, timeout)
    except ProvisionError:
        raise ProvisionError(
            f"device {path} does not exist (waited {_seconds(timeout)}; no disk, "
            "partition, array or LUKS volume in the config makes it)"
        ) from None


def _seconds(timeout: float | None) -> str:
    from provision.disks.waiting import device_timeout

    return f"{device_timeout() if timeout is None else timeout:g} s"
