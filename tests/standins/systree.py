"""Builders for what detection and the local datasources read: fake /sys trees and
real filesystem images (iso9660 via xorriso, vfat via mkfs.vfat + mcopy) on loop devices."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

FW_CFG_ENTRY = "sys/firmware/qemu_fw_cfg/by_name/opt/org.provision/config"


def make_sys_root(
    root: Path, *, dmi: Mapping[str, str] | None = None, hypervisor_uuid: str | None = None,
    fw_cfg: bytes | None = None, labels: Mapping[str, str] | None = None,
    cmdline: str | None = None, fw_cfg_name: str = "opt/org.provision/config",
) -> Path:
    """A fake root: DMI fields, /sys/hypervisor/uuid, our fw_cfg entry, by-label links."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in (dmi or {}).items():
        path = root / "sys/class/dmi/id" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    if hypervisor_uuid is not None:
        (root / "sys/hypervisor").mkdir(parents=True, exist_ok=True)
        (root / "sys/hypervisor/uuid").write_text(hypervisor_uuid + "\n")
    if fw_cfg is not None:
        entry = root / "sys/firmware/qemu_fw_cfg/by_name" / fw_cfg_name
        entry.mkdir(parents=True, exist_ok=True)
        (entry / "size").write_text(f"{len(fw_cfg)}\n")
        (entry / "raw").write_bytes(fw_cfg)
    by_label = root / "dev/disk/by-label"
    by_label.mkdir(parents=True, exist_ok=True)  # an empty dir: "udev ran, no labels"
    for label, device in (labels or {}).items():
        (by_label / label).symlink_to(device)
    if cmdline is not None:
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc/cmdline").write_text(cmdline + "\n")
    return root


def make_iso(path: Path, label: str, files: Mapping[str, bytes]) -> Path:
    tree = path.with_suffix(".tree")
    for name, data in files.items():
        target = tree / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    tree.mkdir(parents=True, exist_ok=True)
    subprocess.run(["xorriso", "-as", "mkisofs", "-V", label, "-J", "-R", "-o", str(path),
                    str(tree)], check=True, capture_output=True)
    return path


def make_vfat(path: Path, label: str, files: Mapping[str, bytes], size_mib: int = 4) -> Path:
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["mkfs.vfat", "-n", label, str(path)], check=True, capture_output=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for name, data in files.items():
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts)):
            subprocess.run(["mmd", "-D", "s", "-i", str(path), "::/" + "/".join(parts[:depth])],
                           capture_output=True, env=env)
        src = path.with_name(path.name + ".src")
        src.write_bytes(data)
        subprocess.run(["mcopy", "-o", "-i", str(path), str(src), "::/" + "/".join(parts)],
                       check=True, capture_output=True, env=env)
        src.unlink()
    return path


@contextlib.contextmanager
def loop_device(image: Path) -> Iterator[str]:
    device = subprocess.run(["losetup", "-f", "--show", "-r", str(image)], check=True,
                            capture_output=True, text=True).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True)
