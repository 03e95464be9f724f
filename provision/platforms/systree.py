"""Read the facts detection needs from /sys and /dev, below the settings' sys root.

Only file reads (and, when udev has not made /dev/disk/by-label, one
``blkid`` probe of the local block devices): nothing here touches the network
or waits, so detection stays in the millisecond range on every platform.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from provision.platforms.settings import Settings
from provision.run import have_tool, run

log = logging.getLogger(__name__)

DMI_FIELDS = ("sys_vendor", "product_name", "product_uuid", "product_serial", "chassis_asset_tag")
DMI_DIR = "/sys/class/dmi/id"
HYPERVISOR_UUID = "/sys/hypervisor/uuid"
BY_LABEL = "/dev/disk/by-label"

_UDEV_SAFE = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#+-.:=@_")


def read_text(settings: Settings, path: str) -> str | None:
    """The stripped contents of ``path`` below the sys root, or None if unreadable."""
    try:
        return settings.host_path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def machine_facts(settings: Settings) -> dict[str, str]:
    """DMI fields plus ``hypervisor_uuid``; fields that are absent are left out."""
    facts: dict[str, str] = {}
    for name in DMI_FIELDS:
        value = read_text(settings, f"{DMI_DIR}/{name}")
        if value:
            facts[name] = value
    value = read_text(settings, HYPERVISOR_UUID)
    if value:
        facts["hypervisor_uuid"] = value
    return facts


def udev_label_name(label: str) -> str:
    """How udev spells a label in /dev/disk/by-label (unsafe bytes as \\xNN)."""
    return "".join(
        ch if ch in _UDEV_SAFE else "".join(f"\\x{b:02x}" for b in ch.encode()) for ch in label
    )


def _resolve_link(settings: Settings, link: Path) -> str:
    target = os.readlink(link)
    if os.path.isabs(target):
        return target  # a fake tree names the real device directly
    # udev's links are relative (../../sdb1): resolve against /dev/disk/by-label.
    real = os.path.normpath(os.path.join(BY_LABEL, target))
    below_root = settings.host_path(real)
    return str(below_root) if settings.sys_root != Path("/") and below_root.exists() else real


def _blkid_labels() -> dict[str, str]:
    """label -> device for every local filesystem, probed afresh (no blkid cache)."""
    if not have_tool("blkid"):
        return {}
    found = run("blkid", ["-c", "/dev/null", "-o", "export"], check=False, timeout=30)
    labels: dict[str, str] = {}
    device = None
    for line in found.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME":
            device = value
        elif key == "LABEL" and device and value not in labels:
            labels[value] = device
    return labels


def find_labelled_device(settings: Settings, labels: Iterable[str]) -> tuple[str, str] | None:
    """The first of ``labels`` that names a filesystem: (label, device path).

    /dev/disk/by-label first; on the real root, when it has none of them
    (no udev: a bare initramfs, a container), one ``blkid`` probe.
    """
    by_label = settings.host_path(BY_LABEL)
    wanted = list(labels)
    for label in wanted:
        link = by_label / udev_label_name(label)
        if link.is_symlink():
            return label, _resolve_link(settings, link)
        if link.exists():
            return label, str(link)
    if settings.sys_root != Path("/"):
        return None
    probed = _blkid_labels()
    for label in wanted:
        if label in probed:
            return label, probed[label]
    return None


def labelled_devices(settings: Settings, labels: Iterable[str]) -> dict[str, str]:
    """label -> device for each of ``labels`` that names a filesystem.

    Like :func:`find_labelled_device` for many labels at once: /dev/disk/by-label
    first, then (on the real root, for the labels still missing) one ``blkid`` probe
    for all of them, so detection probes the disks once however many labels it knows.
    """
    by_label = settings.host_path(BY_LABEL)
    found: dict[str, str] = {}
    missing = []
    for label in labels:
        link = by_label / udev_label_name(label)
        if link.is_symlink():
            found[label] = _resolve_link(settings, link)
        elif link.exists():
            found[label] = str(link)
        else:
            missing.append(label)
    if missing and settings.sys_root == Path("/"):
        probed = _blkid_labels()
        found.update({label: probed[label] for label in missing if label in probed})
    return found
