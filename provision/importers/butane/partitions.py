"""Fedora CoreOS's warnings about partitions of its own boot disk (fcos and openshift variants).

Butane warns (config/fcos/v1_*/translate.go, validate.go) when a partition
takes a label the OS image reserves without its number (a new partition
would be made instead of the existing one being matched), when the root
partition is too small or cannot grow, and — from fcos 1.6 — when a
partition is to be reused by label alone, which Ignition cannot do.
"""

from __future__ import annotations

from typing import Any

from provision.importers.butane.bootdevice import ROOT_DISK
from provision.importers.butane.variants import Variant
from provision.importers.human.context import Context

_RESERVED_NUMBERS = {"BIOS-BOOT": 1, "PowerPC-PReP-boot": 1, "EFI-SYSTEM": 2, "boot": 3, "root": 4}
WRONG_NUMBER = "incorrect partition number; a new partition will be created using reserved label"
ROOT_TOO_SMALL = "root should have 8GiB of space assigned"
ROOT_CONSTRAINED = ("root partition cannot expand; it is set to fill available space but is followed by "
                    "an auto-positioned partition")
REUSE_BY_LABEL = ("partitions cannot be reused by label; number must be specified except on boot disk "
                  "(/dev/disk/by-id/coreos-boot-disk) or when wipe_table is true")


def warn(ign: dict[str, Any], variant: Variant, ctx: Context, mirror_devices: list[str]) -> None:
    if variant.name not in ("fcos", "openshift"):
        return
    storage = ign.get("storage")
    disks = storage.get("disks") if isinstance(storage, dict) else None
    for i, disk in enumerate(disks if isinstance(disks, list) else []):
        if not isinstance(disk, dict):
            continue
        listed = disk.get("partitions")
        partitions = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
        for j, part in enumerate(partitions):
            def at(field: str, i: int = i, j: int = j) -> tuple[str | int, ...]:
                return ctx.origins.source_path(("storage", "disks", i, "partitions", j, field)) or ()

            label, number = part.get("label"), part.get("number") or 0
            if variant.fcos >= 6 and disk.get("device") not in (ROOT_DISK, *mirror_devices) \
                    and disk.get("wipeTable") is not True and number == 0 and label is not None:
                ctx.warn(REUSE_BY_LABEL, at("number"))
            if not isinstance(label, str):
                continue
            if label == "root" and variant.fcos >= 3:
                size = part.get("sizeMiB") or 0
                if size == 0:
                    if any(not (other.get("startMiB") or 0) for k, other in enumerate(partitions) if k != j):
                        ctx.warn(ROOT_CONSTRAINED, at("label"))
                elif size < 8192:
                    ctx.warn(ROOT_TOO_SMALL, at("sizeMiB"))
            if disk.get("wipeTable") is not True and label in _RESERVED_NUMBERS and number != _RESERVED_NUMBERS[label]:
                ctx.warn(WRONG_NUMBER, at("label"))
