"""Device waiting, node creation, udev-style names and mount units."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from disk_fixtures import needs_loop, sh
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.config import model
from provision.disks import devices, units, waiting

LoopFactory = Callable[[int], tuple[str, Path]]


def test_wait_times_out_naming_the_device() -> None:
    """A device that never appears fails after the deadline with its name, not a hang."""
    started = time.monotonic()
    with pytest.raises(waiting.DeviceTimeout, match="waiting for /dev/disk/by-id/never-there"):
        waiting.wait_for_block_device("/dev/disk/by-id/never-there", timeout=0.2)
    assert time.monotonic() - started < 5


@pytest.mark.root
@needs_loop
def test_node_is_created_from_sysfs_when_missing(loop_factory: LoopFactory, tmp_path: Path) -> None:
    """Without udev, a partition node missing from /dev is made with the kernel's
    major:minor (here into a scratch /dev, so the real one is untouched)."""
    if devices.udev_running():
        pytest.skip("udev runs here: it owns /dev")
    device, _ = loop_factory(16)
    sh("sgdisk", "-n", "1:2048:+4M", device)
    sh("partx", "-u", "--nr", "1:128", device)
    node = waiting.ensure_node(os.path.basename(device) + "p1", 1.0, dev_dir=tmp_path)
    made = os.stat(node)
    real = os.stat(device + "p1")
    assert stat.S_ISBLK(made.st_mode) and made.st_rdev == real.st_rdev


def test_links_are_made_without_udev(tmp_path: Path) -> None:
    """Without udev provision makes /dev/disk/by-* links itself, replacing stale ones."""
    if devices.udev_running():
        pytest.skip("udev runs here: it makes the links")
    (tmp_path / "sdz1").touch()
    (tmp_path / "sdz2").touch()
    waiting.wait_for_links({"by-partlabel/root": str(tmp_path / "sdz1")}, dev_dir=tmp_path)
    waiting.wait_for_links({"by-partlabel/root": str(tmp_path / "sdz2")}, dev_dir=tmp_path)
    link = tmp_path / "disk/by-partlabel/root"
    assert os.readlink(link) == "../../sdz2" and os.path.realpath(link) == str(tmp_path / "sdz2")


def test_a_new_filesystem_is_announced_to_udev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where udevd runs, a device whose filesystem was just made gets a "change" uevent
    (so udev probes it after the write and links its UUID and label); without udevd
    nothing is written to sysfs (provision makes the links itself)."""
    uevent = tmp_path / "uevent"
    uevent.write_text("")
    monkeypatch.setattr(waiting, "sysfs_dir", lambda device: tmp_path)
    monkeypatch.setattr(waiting, "udev_running", lambda: False)
    waiting.announce_change("/dev/vdz3")
    assert uevent.read_text() == ""
    monkeypatch.setattr(waiting, "udev_running", lambda: True)
    waiting.announce_change("/dev/vdz3")
    assert uevent.read_text() == "change"


def test_link_names_are_encoded_like_udev() -> None:
    assert devices.encode_link_name("EFI System") == "EFI\\x20System"
    assert devices.encode_link_name("a/b") == "a\\x2fb"
    assert devices.encode_link_name("root-a_1.x") == "root-a_1.x"


def test_partition_node_names() -> None:
    assert devices.partition_node_name("sda", 3) == "sda3"
    assert devices.partition_node_name("nvme0n1", 2) == "nvme0n1p2"
    assert devices.partition_node_name("loop7", 1) == "loop7p1"


_ESCAPE = shutil.which("systemd-escape")


@pytest.mark.skipif(_ESCAPE is None, reason="systemd-escape is not installed")
@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abcXYZ09-_.:@ é/", min_size=1, max_size=8), min_size=1,
                max_size=3))
def test_unit_names_match_systemd_escape(parts: list[str]) -> None:
    """Mount unit names are escaped exactly as `systemd-escape --path` does."""
    path = "/" + "/".join(parts)
    normal = os.path.normpath(path)
    if any(p in (".", "..") for p in normal.split("/")):
        return  # systemd refuses non-normalized paths outright
    expected = subprocess.run([str(_ESCAPE), "--path", normal], capture_output=True, text=True)
    if expected.returncode != 0:
        return
    assert units.escape_path(normal) == expected.stdout.strip()


def test_mount_unit_for_a_filesystem() -> None:
    fs = model.Filesystem(device="/dev/disk/by-label/var", format="xfs", path="/var/lib/data",
                          mount_options=("noatime", "ro"))
    name, text = units.render_filesystem_mount_unit(fs)
    assert name == "var-lib-data.mount"
    assert "What=/dev/disk/by-label/var\n" in text and "Where=/var/lib/data\n" in text
    assert "Type=xfs\n" in text and "Options=noatime,ro\n" in text
    assert "Requires=systemd-fsck@dev-disk-by\\x2dlabel-var.service" in text
    swap_name, _ = units.render_swap_unit(model.Filesystem(device="/dev/vdb2", format="swap"))
    assert swap_name == "dev-vdb2.swap"
