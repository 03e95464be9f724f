"""Loop-device fixtures and independent checks for the disk stage tests.

Images are sparse files attached with ``losetup -P``; every device is
detached (and everything on it unmounted, closed or stopped) in a finalizer,
even when the test fails. Checks use the system tools (sfdisk, sgdisk,
blkid, findmnt, mount), never provision's own readers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.config.build import build_config
from provision.config.model import Config
from provision.stages import disks as disks_stage
from provision.stages.base import Plan, Target

MIB = 1024 * 1024


def _loop_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root for loop devices"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control missing)"
    for tool in ("losetup", "sgdisk", "sfdisk", "blkid", "partx", "wipefs"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


LOOP_SKIP = _loop_skip_reason()
needs_loop = pytest.mark.skipif(LOOP_SKIP is not None, reason=LOOP_SKIP or "")


def sh(*argv: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), check=check, capture_output=True, text=input is None, input=input,
        env={**os.environ, "LC_ALL": "C"},
    )


def _holders(name: str) -> list[str]:
    base = Path("/sys/class/block", name)
    names = [name, *(p.name for p in base.iterdir() if (p / "partition").exists())]
    out = []
    for n in names:
        holders = Path("/sys/class/block", n, "holders")
        if holders.is_dir():
            out += [h.name for h in holders.iterdir()]
    return out


def _release(device: str) -> None:
    """Unmount, close and stop everything on ``device``, drop our links, detach it."""
    name = os.path.basename(device)
    nodes = {device, *(f"/dev/{p.name}" for p in Path("/sys/class/block", name).iterdir()
                       if (p / "partition").exists())}
    mounts = sh("findmnt", "-rn", "-o", "SOURCE,TARGET", check=False).stdout.splitlines()
    for line in reversed(mounts):
        source, _, target = line.partition(" ")
        if source in nodes:
            sh("umount", "-l", target.replace("\\x20", " "), check=False)
    for holder in _holders(name):
        if holder.startswith("md"):
            sh("mdadm", "--stop", f"/dev/{holder}", check=False)
        elif holder.startswith("dm-"):
            dm_name = Path("/sys/class/block", holder, "dm", "name").read_text().strip()
            sh("cryptsetup", "close", dm_name, check=False)
    disk_links = Path("/dev/disk")
    if disk_links.is_dir():
        for link in disk_links.glob("*/*"):
            if link.is_symlink() and os.path.realpath(link) in nodes | {"/dev/" + name}:
                link.unlink()
    sh("losetup", "-d", device, check=False)


@contextlib.contextmanager
def attached(image: Path, size_mib: int) -> Iterator[str]:
    """A sparse image of ``size_mib`` attached as a partition-scanning loop device."""
    with open(image, "wb") as handle:
        handle.truncate(size_mib * MIB)
    device = sh("losetup", "-P", "-f", "--show", str(image)).stdout.strip()
    try:
        yield device
    finally:
        _release(device)


@pytest.fixture
def disk_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private state directory, short device timeout; returns an empty target root."""
    monkeypatch.setenv("PROVISION_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PROVISION_DEVICE_TIMEOUT", "10")
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def loop_factory(tmp_path: Path) -> Iterator[Callable[[int], tuple[str, Path]]]:
    """Make loop devices: ``factory(size_mib) -> (device, image)``; all released after."""
    with contextlib.ExitStack() as stack:
        count = 0

        def make(size_mib: int) -> tuple[str, Path]:
            nonlocal count
            count += 1
            image = tmp_path / f"disk{count}.img"
            return stack.enter_context(attached(image, size_mib)), image

        yield make


def config(storage: dict[str, Any]) -> Config:
    return build_config({"provision": {"version": "1.0.0"}, "storage": storage})


def plan_disks(cfg: Config, root: Path) -> Plan:
    return disks_stage.STAGE.plan(cfg, Target(root))


def run_disks(cfg: Config, root: Path) -> Plan:
    plan = plan_disks(cfg, root)
    disks_stage.STAGE.apply(plan, Target(root))
    return plan


def sfdisk_partitions(device: str) -> dict[int, dict[str, Any]]:
    """Partition number -> sfdisk's JSON entry (start/size in sectors, type, uuid, name)."""
    done = sh("sfdisk", "--json", device, check=False)
    if done.returncode != 0:
        return {}
    table = json.loads(done.stdout)["partitiontable"]
    out = {}
    for part in table.get("partitions", []):
        node = part["node"]
        number = int(node[len(node.rstrip("0123456789")):])
        out[number] = part
    return out


def sfdisk_table(device: str) -> dict[str, Any]:
    return dict(json.loads(sh("sfdisk", "--json", device).stdout)["partitiontable"])


def sgdisk_info(device: str, number: int) -> dict[str, str]:
    """``sgdisk -i N`` as a dict (keys as sgdisk prints them)."""
    text = sh("sgdisk", "-i", str(number), device).stdout
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def blkid(device: str) -> dict[str, str]:
    done = sh("blkid", "-p", "-o", "export", device, check=False)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def partition_node(device: str, number: int) -> str:
    return f"{device}p{number}"


def image_digest(image: Path, device: str) -> str:
    """SHA-256 of the whole image file, after flushing the loop device's buffers."""
    sh("blockdev", "--flushbufs", device)
    digest = hashlib.sha256()
    with open(image, "rb") as handle:
        while chunk := handle.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def device_digest(device: str) -> str:
    """SHA-256 of a block device's bytes, read through the device itself."""
    digest = hashlib.sha256()
    with open(device, "rb") as handle:
        while chunk := handle.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def mounted(device: str, where: Path, *options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    args = ["mount", device, str(where)]
    if options:
        args[1:1] = ["-o", ",".join(options)]
    sh(*args)
    try:
        yield where
    finally:
        sh("umount", str(where))
