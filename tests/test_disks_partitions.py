"""Partitions on real loop devices, checked with sfdisk/sgdisk (root).

Each case names the Ignition rule it checks; expected layouts come from the
documented rules (1 MiB = 2048 sectors of 512 bytes; a 64 MiB image has a
usable area of sectors 34 .. 131038).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from disk_fixtures import (
    config,
    image_digest,
    needs_loop,
    partition_node,
    plan_disks,
    run_disks,
    sfdisk_partitions,
    sfdisk_table,
    sgdisk_info,
    sh,
)

from provision.errors import ProvisionError

pytestmark = [pytest.mark.root, needs_loop]

LoopFactory = Callable[[int], tuple[str, Path]]
MIB_SECTORS = 2048
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GUID_A = "6A1E6C3C-3C41-4B1D-9F5A-0D5C2E1B7A01"


def presetup(device: str, *args: str) -> None:
    """Lay out partitions with sgdisk directly (the 'existing disk' of a case)."""
    sh("sgdisk", *args, device)
    sh("partx", "-u", "--nr", "1:128", device, check=False)


def test_creates_partitions_with_every_field(disk_env: Path, loop_factory: LoopFactory) -> None:
    """Missing partitions are created with the configured number, label, start,
    size, type GUID and GUID; the kernel's nodes and by-partlabel links exist after."""
    device, _ = loop_factory(64)
    run_disks(config({"disks": [{"device": device, "partitions": [
        {"number": 1, "label": "boot", "startMiB": 1, "sizeMiB": 8, "typeGuid": ESP.lower(),
         "guid": GUID_A},
        {"number": 3, "label": "data", "sizeMiB": 16},
    ]}]}), disk_env)
    parts = sfdisk_partitions(device)
    assert sorted(parts) == [1, 3]
    assert (parts[1]["start"], parts[1]["size"]) == (2048, 8 * MIB_SECTORS)
    assert (parts[1]["type"], parts[1]["uuid"], parts[1]["name"]) == (ESP, GUID_A, "boot")
    # Number 3 has no start: the largest free block begins right after partition 1.
    assert (parts[3]["start"], parts[3]["size"]) == (9 * MIB_SECTORS, 16 * MIB_SECTORS)
    assert parts[3]["type"] == LINUX
    info = sgdisk_info(device, 1)
    assert info["Partition unique GUID"] == GUID_A and info["Partition name"] == "'boot'"
    for number in (1, 3):
        assert stat.S_ISBLK(os.stat(partition_node(device, number)).st_mode)
    link = Path("/dev/disk/by-partlabel/data")
    assert os.path.realpath(link) == partition_node(device, 3)


def test_matching_partitions_are_left_byte_identical(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """Existing partitions that match by number, label, start, size, type and GUID
    are kept: a second run writes nothing at all."""
    device, image = loop_factory(64)
    cfg = config({"disks": [{"device": device, "partitions": [
        {"number": 1, "label": "a", "startMiB": 1, "sizeMiB": 10, "guid": GUID_A},
        {"number": 2, "label": "b", "sizeMiB": 0},
    ]}]})
    run_disks(cfg, disk_env)
    before = image_digest(image, device)
    plan = run_disks(cfg, disk_env)
    assert [a.kind for a in plan.actions] == ["unchanged", "unchanged"]
    assert image_digest(image, device) == before


def test_number_zero_start_zero_size_zero(disk_env: Path, loop_factory: LoopFactory) -> None:
    """number 0 = lowest free number; startMiB 0 = start of the largest free block;
    sizeMiB 0 = the whole of that block."""
    device, _ = loop_factory(64)
    # Existing: 1 at 1-11 MiB, 3 at 20-30 MiB; free: 11-20 MiB (9) and 30 MiB-end (~33).
    presetup(device, "-n", "1:2048:+10M", "-n", f"3:{20 * MIB_SECTORS}:+10M")
    last_usable = sfdisk_table(device)["lastlba"]
    run_disks(config({"disks": [{"device": device, "partitions": [
        {"number": 0, "label": "auto", "startMiB": 0, "sizeMiB": 0},
    ]}]}), disk_env)
    parts = sfdisk_partitions(device)
    assert sorted(parts) == [1, 2, 3]
    assert parts[2]["name"] == "auto"
    assert parts[2]["start"] == 30 * MIB_SECTORS
    assert parts[2]["start"] + parts[2]["size"] - 1 == last_usable


def test_wipe_partition_entry_recreates_a_mismatch(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """A partition that differs is deleted and recreated when wipePartitionEntry is set."""
    device, _ = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M", "-c", "1:old")
    run_disks(config({"disks": [{"device": device, "partitions": [
        {"number": 1, "label": "new", "sizeMiB": 20, "wipePartitionEntry": True},
    ]}]}), disk_env)
    parts = sfdisk_partitions(device)
    assert (parts[1]["name"], parts[1]["size"]) == ("new", 20 * MIB_SECTORS)


def test_should_exist_false_deletes_with_wipe_partition_entry(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """shouldExist false with wipePartitionEntry deletes the partition (and the
    kernel forgets it); other partitions stay."""
    device, _ = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M", "-n", "2:0:+10M")
    run_disks(config({"disks": [{"device": device, "partitions": [
        {"number": 1, "shouldExist": False, "wipePartitionEntry": True},
    ]}]}), disk_env)
    assert sorted(sfdisk_partitions(device)) == [2]
    assert not Path(partition_node(device, 1)).exists()


def test_resize_grows_keeping_guid_and_label(disk_env: Path, loop_factory: LoopFactory) -> None:
    """resize grows a partition that matches in all but size; start, GUID, type and
    label are kept (sizeMiB 0: up to the end of the free space after it)."""
    device, _ = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M", "-c", "1:root", "-u", f"1:{GUID_A}")
    run_disks(config({"disks": [{"device": device, "partitions": [
        {"number": 1, "label": "root", "sizeMiB": 0, "resize": True},
    ]}]}), disk_env)
    info = sgdisk_info(device, 1)
    table = sfdisk_table(device)
    assert info["Partition unique GUID"] == GUID_A and info["Partition name"] == "'root'"
    assert info["First sector"].split()[0] == "2048"
    assert int(info["Last sector"].split()[0]) == table["lastlba"]
    # The kernel sees the new size too (sysfs size is in 512-byte sectors).
    name = os.path.basename(partition_node(device, 1))
    assert int(Path(f"/sys/class/block/{name}/size").read_text()) == table["lastlba"] - 2048 + 1


def test_wipe_table_replaces_everything(disk_env: Path, loop_factory: LoopFactory) -> None:
    """wipeTable: existing partitions go; only the configured ones exist after."""
    device, _ = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M", "-n", "2:0:+10M", "-n", "3:0:+10M")
    run_disks(config({"disks": [{"device": device, "wipeTable": True, "partitions": [
        {"number": 2, "label": "only", "sizeMiB": 4},
    ]}]}), disk_env)
    parts = sfdisk_partitions(device)
    assert sorted(parts) == [2] and parts[2]["start"] == 2048
    assert not Path(partition_node(device, 1)).exists()


# ---- negative cases: fail, and the image is byte-identical --------------------


def _fails_unchanged(
    device: str, image: Path, root: Path, storage: dict[str, object], match: str
) -> None:
    before = image_digest(image, device)
    with pytest.raises(ProvisionError, match=match):
        run_disks(config(storage), root)
    assert image_digest(image, device) == before


def test_mismatch_without_wipe_fails_and_writes_nothing(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """A partition that exists but differs is an error without wipePartitionEntry,
    and nothing is written, not even the partitions that would have been fine."""
    device, image = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M", "-c", "1:old")
    _fails_unchanged(device, image, disk_env, {"disks": [{"device": device, "partitions": [
        {"number": 2, "label": "fine", "sizeMiB": 5},
        {"number": 1, "label": "new"},
    ]}]}, r"partition 1 exists but does not match.*label")


def test_delete_without_wipe_fails(disk_env: Path, loop_factory: LoopFactory) -> None:
    """shouldExist false on an existing partition without wipePartitionEntry fails."""
    device, image = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M")
    _fails_unchanged(device, image, disk_env, {"disks": [{"device": device, "partitions": [
        {"number": 1, "shouldExist": False},
    ]}]}, "wipePartitionEntry is not set")


def test_overlapping_partitions_fail(disk_env: Path, loop_factory: LoopFactory) -> None:
    """A partition whose explicit range overlaps an existing one cannot be placed."""
    device, image = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M")
    _fails_unchanged(device, image, disk_env, {"disks": [{"device": device, "partitions": [
        {"number": 2, "startMiB": 5, "sizeMiB": 10},
    ]}]}, "overlaps partition 1")


def test_missing_device_fails_naming_it(
    disk_env: Path, loop_factory: LoopFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that does not appear within the device timeout is an error naming it;
    the other disk of the config is not touched."""
    monkeypatch.setenv("PROVISION_DEVICE_TIMEOUT", "0.3")
    device, image = loop_factory(64)
    _fails_unchanged(device, image, disk_env, {"disks": [
        {"device": device, "partitions": [{"number": 1, "sizeMiB": 5}]},
        {"device": "/dev/disk/by-id/provision-test-missing", "partitions": [{"sizeMiB": 5}]},
    ]}, r"device /dev/disk/by-id/provision-test-missing does not exist")


def test_mounted_disk_is_refused(disk_env: Path, loop_factory: LoopFactory, tmp_path: Path) -> None:
    """provision refuses to repartition a disk with a mounted partition, and says where."""
    device, image = loop_factory(64)
    presetup(device, "-n", "1:2048:+10M")
    sh("mkfs.ext4", "-q", partition_node(device, 1))
    where = tmp_path / "busy"
    where.mkdir()
    sh("mount", partition_node(device, 1), str(where))
    try:
        _fails_unchanged(device, image, disk_env, {"disks": [{"device": device, "partitions": [
            {"number": 2, "sizeMiB": 5},
        ]}]}, f"refusing to partition {device}: {partition_node(device, 1)} is mounted at {where}")
    finally:
        sh("umount", str(where))


def test_msdos_table_is_not_converted(disk_env: Path, loop_factory: LoopFactory) -> None:
    """An MBR table is not silently turned into GPT: wipeTable is required."""
    device, image = loop_factory(64)
    sh("sfdisk", device, input=b"label: dos\n,10M\n")
    _fails_unchanged(device, image, disk_env, {"disks": [{"device": device, "partitions": [
        {"number": 2, "sizeMiB": 5},
    ]}]}, "'dos' partition table")


def test_running_root_disk_is_refused(disk_env: Path) -> None:
    """The disk holding the running root filesystem is never partitioned."""
    root_dev = os.stat("/").st_dev
    node = Path(f"/sys/dev/block/{os.major(root_dev)}:{os.minor(root_dev)}")
    if not node.exists() or not Path("/dev", node.resolve().name).exists():
        pytest.skip("the running root is not on a block device with a /dev node")
    device = "/dev/" + node.resolve().name
    if Path(f"/sys/class/block/{node.resolve().name}/partition").exists():
        device = "/dev/" + node.resolve().parent.name
    with pytest.raises(ProvisionError, match="holds the running root filesystem"):
        plan_disks(config({"disks": [{"device": device, "wipeTable": True, "partitions": [
            {"sizeMiB": 5}]}]}), disk_env)
