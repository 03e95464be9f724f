"""Filesystems, btrfs subvolumes and the mount stage on loop devices (root).

Checked with blkid, findmnt, btrfs and by mounting and reading back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from disk_fixtures import (
    blkid,
    config,
    device_digest,
    image_digest,
    mounted,
    needs_loop,
    partition_node,
    run_disks,
    sh,
)

from provision.errors import ProvisionError
from provision.stages import mount as mount_stage
from provision.stages.base import Target

pytestmark = [pytest.mark.root, needs_loop]

LoopFactory = Callable[[int], tuple[str, Path]]
UUIDS = {
    "ext4": "0b8e2f6a-4a1c-4d5e-9f00-000000000001",
    "xfs": "0b8e2f6a-4a1c-4d5e-9f00-000000000002",
    "btrfs": "0b8e2f6a-4a1c-4d5e-9f00-000000000003",
    "swap": "0b8e2f6a-4a1c-4d5e-9f00-000000000005",
    "vfat": "2A3B-4C5D",
}
# xfs needs 300 MiB, btrfs about 110 MiB.
SIZES = {"ext4": 24, "xfs": 300, "btrfs": 120, "vfat": 16, "swap": 8}
ORDER = ["ext4", "xfs", "btrfs", "vfat", "swap"]


def _every_format(device: str, wipe: bool = False, labels: dict[str, str] | None = None
                  ) -> dict[str, object]:
    labels = labels or {fmt: fmt.upper() for fmt in ORDER}
    return {
        "disks": [{"device": device, "partitions": [
            {"number": i + 1, "label": f"p-{fmt}", "sizeMiB": SIZES[fmt]}
            for i, fmt in enumerate(ORDER)
        ]}],
        "filesystems": [
            {"device": f"/dev/disk/by-partlabel/p-{fmt}", "format": fmt, "label": labels[fmt],
             "uuid": UUIDS[fmt], "wipeFilesystem": wipe}
            for fmt in ORDER
        ],
    }


def _disk_mib() -> int:
    return sum(SIZES.values()) + 2


def test_create_then_reuse_every_format(
    disk_env: Path, loop_factory: LoopFactory, tmp_path: Path
) -> None:
    """Each format is created with its label and uuid; a second run with
    wipeFilesystem false reuses every one (format, label and uuid match), so
    files written in between are still there and vfat/swap bytes are unchanged."""
    device, _ = loop_factory(_disk_mib())
    cfg = config(_every_format(device))
    run_disks(cfg, disk_env)
    for number, fmt in enumerate(ORDER, start=1):
        found = blkid(partition_node(device, number))
        assert found["TYPE"] == fmt
        assert found["LABEL"] == fmt.upper()
        assert found["UUID"].lower() == UUIDS[fmt].lower()
    for number, fmt in enumerate(ORDER[:3], start=1):
        with mounted(partition_node(device, number), tmp_path / fmt) as where:
            (where / "kept").write_text(fmt)
    untouched = {n: device_digest(partition_node(device, n)) for n in (4, 5)}

    plan = run_disks(cfg, disk_env)
    fs_actions = [a for a in plan.actions if " on /dev/disk/by-partlabel/" in a.item]
    assert [a.kind for a in fs_actions] == ["unchanged"] * 5
    for number, fmt in enumerate(ORDER[:3], start=1):
        with mounted(partition_node(device, number), tmp_path / fmt) as where:
            assert (where / "kept").read_text() == fmt
    assert {n: device_digest(partition_node(device, n)) for n in (4, 5)} == untouched


def test_wipe_filesystem_recreates(disk_env: Path, loop_factory: LoopFactory, tmp_path: Path) -> None:
    """wipeFilesystem true: the old filesystem is wiped and made anew with the new label."""
    device, _ = loop_factory(40)
    storage = {
        "disks": [{"device": device, "partitions": [{"number": 1, "sizeMiB": 32}]}],
        "filesystems": [{"device": partition_node(device, 1), "format": "ext4", "label": "one"}],
    }
    run_disks(config(storage), disk_env)
    with mounted(partition_node(device, 1), tmp_path / "m") as where:
        (where / "old").write_text("x")
    storage["filesystems"] = [{"device": partition_node(device, 1), "format": "ext4",
                               "label": "two", "wipeFilesystem": True}]
    run_disks(config(storage), disk_env)
    assert blkid(partition_node(device, 1))["LABEL"] == "two"
    with mounted(partition_node(device, 1), tmp_path / "m") as where:
        assert not (where / "old").exists()


def test_other_format_without_wipe_fails_unchanged(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """An existing filesystem of another format (or label) is an error without
    wipeFilesystem, raised before anything is written (image byte-identical)."""
    device, image = loop_factory(40)
    sh("sgdisk", "-n", "1:2048:+32M", device)
    sh("partx", "-u", "--nr", "1:128", device)
    sh("mkfs.ext4", "-q", "-L", "data", partition_node(device, 1))
    before = image_digest(image, device)
    for fs in ({"format": "btrfs"}, {"format": "ext4", "label": "other"}):
        with pytest.raises(ProvisionError, match="wipeFilesystem is false"):
            run_disks(config({
                "disks": [{"device": device, "partitions": [{"number": 1}, {"number": 2,
                                                                             "sizeMiB": 4}]}],
                "filesystems": [{"device": partition_node(device, 1), **fs}],
            }), disk_env)
        assert image_digest(image, device) == before


def test_format_none_with_wipe_clears_signatures(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """format none + wipeFilesystem: every signature is wiped and nothing is made."""
    device, _ = loop_factory(40)
    sh("sgdisk", "-n", "1:2048:+32M", device)
    sh("partx", "-u", "--nr", "1:128", device)
    sh("mkfs.ext4", "-q", partition_node(device, 1))
    run_disks(config({"filesystems": [
        {"device": partition_node(device, 1), "format": "none", "wipeFilesystem": True}]}), disk_env)
    assert "TYPE" not in blkid(partition_node(device, 1))


def test_existing_filesystem_found_by_label_without_udev(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """A /dev/disk/by-label reference to an existing filesystem resolves (found by
    probing when no udev made the link) and is reused."""
    device, _ = loop_factory(40)
    sh("sgdisk", "-n", "1:2048:+32M", device)
    sh("partx", "-u", "--nr", "1:128", device)
    sh("mkfs.ext4", "-q", "-L", "bylabeltest", partition_node(device, 1))
    link = Path("/dev/disk/by-label/bylabeltest")
    if link.is_symlink():
        link.unlink()
    plan = run_disks(config({"filesystems": [
        {"device": str(link), "format": "ext4", "label": "bylabeltest"}]}), disk_env)
    assert [a.kind for a in plan.actions] == ["unchanged"]


def test_subvolumes_created_and_mounted_by_name(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """btrfs subvolumes are created once (a second run keeps them) and mounted by
    name with subvol=, under the filesystem's own mount, shallowest first."""
    device, _ = loop_factory(130)
    cfg = config({
        "disks": [{"device": device, "partitions": [{"number": 1, "label": "pool"}]}],
        "filesystems": [{
            "device": "/dev/disk/by-partlabel/pool", "format": "btrfs", "path": "/",
            "subvolumes": [{"name": "home", "path": "/home"}, {"name": "snapshots"}],
        }],
    })
    run_disks(cfg, disk_env)
    run_disks(cfg, disk_env)  # second run: subvolumes exist, nothing new
    target = Target(disk_env)
    with mount_stage.mounted(cfg, target):
        listing = sh("btrfs", "subvolume", "list", str(disk_env)).stdout
        assert sorted(line.split()[-1] for line in listing.splitlines()) == ["home", "snapshots"]
        findmnt = sh("findmnt", "-n", "-o", "OPTIONS", str(disk_env / "home")).stdout
        assert "subvol=/home" in findmnt
        (disk_env / "home" / "f").write_text("in home")
    assert not os.path.ismount(disk_env / "home") and not os.path.ismount(disk_env)
    with mounted(partition_node(device, 1), disk_env.parent / "check") as where:
        assert (where / "home" / "f").read_text() == "in home"


def test_mount_stage_order_options_and_cleanup(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """Filesystems with a path are mounted under the root shallowest first (list
    order does not matter), with their mountOptions; unmount_all undoes all."""
    device, _ = loop_factory(60)
    cfg = config({
        "disks": [{"device": device, "partitions": [
            {"number": 1, "label": "lib", "sizeMiB": 24}, {"number": 2, "label": "var", "sizeMiB": 24}]}],
        "filesystems": [
            {"device": "/dev/disk/by-partlabel/lib", "format": "ext4", "path": "/var/lib",
             "mountOptions": ["ro"]},
            {"device": "/dev/disk/by-partlabel/var", "format": "ext4", "path": "/var"},
        ],
    })
    run_disks(cfg, disk_env)
    target = Target(disk_env)
    plan = mount_stage.STAGE.plan(cfg, target)
    try:
        mount_stage.STAGE.apply(plan, target)
        tree = sh("findmnt", "-R", "-l", "-n", "-o", "TARGET,SOURCE,OPTIONS", str(disk_env / "var")).stdout
        lines = [line.split() for line in tree.splitlines()]
        assert [(t, s) for t, s, _ in lines] == [
            (str(disk_env / "var"), partition_node(device, 2)),
            (str(disk_env / "var/lib"), partition_node(device, 1)),
        ]
        assert lines[1][2].split(",")[0] == "ro"
    finally:
        undone = mount_stage.unmount_all(target)
    assert undone == [str(disk_env / "var/lib"), str(disk_env / "var")]
    assert not os.path.ismount(disk_env / "var")


def test_mount_failure_unmounts_what_was_mounted(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """A mount that fails leaves nothing mounted: the earlier mounts are undone."""
    device, _ = loop_factory(40)
    cfg_disks = config({
        "disks": [{"device": device, "partitions": [{"number": 1, "sizeMiB": 24},
                                                     {"number": 2, "sizeMiB": 8}]}],
        "filesystems": [{"device": partition_node(device, 1), "format": "ext4"}],
    })
    run_disks(cfg_disks, disk_env)
    cfg = config({"filesystems": [
        {"device": partition_node(device, 1), "format": "ext4", "path": "/srv"},
        {"device": partition_node(device, 2), "format": "ext4", "path": "/srv/empty"},
    ]})
    target = Target(disk_env)
    with pytest.raises(ProvisionError):
        mount_stage.STAGE.apply(mount_stage.STAGE.plan(cfg, target), target)
    assert not os.path.ismount(disk_env / "srv")


def test_mount_points_stay_inside_the_root(disk_env: Path, loop_factory: LoopFactory,
                                           tmp_path: Path) -> None:
    """A symlink in the target pointing at an absolute host path is resolved
    inside the root: the host directory it names is never mounted over."""
    device, _ = loop_factory(40)
    run_disks(config({
        "disks": [{"device": device, "partitions": [{"number": 1, "sizeMiB": 24}]}],
        "filesystems": [{"device": partition_node(device, 1), "format": "ext4"}]}), disk_env)
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    # Absolute link: outside the root if followed naively, <root>/<host_dir> inside it.
    (disk_env / "data").symlink_to(host_dir)
    (disk_env / str(host_dir).lstrip("/")).mkdir(parents=True)
    cfg = config({"filesystems": [
        {"device": partition_node(device, 1), "format": "ext4", "path": "/data"}]})
    target = Target(disk_env)
    with mount_stage.mounted(cfg, target):
        assert not os.path.ismount(host_dir)
        assert os.path.ismount(disk_env / str(host_dir).lstrip("/"))
