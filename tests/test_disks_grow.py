"""Growing a partition and its filesystem to fill a disk that grew, on real loop devices.

The disk image starts small with one partition and a filesystem, is made
larger (``losetup -c``, as a cloud disk resized before first boot), and the
filesystem is mounted where the grow step runs — as the root is at boot.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from disk_fixtures import MIB, attached, needs_loop, sh

from provision.disks.grow import grow, mount_of
from provision.errors import ProvisionError

pytestmark = needs_loop


def _has_cap_sys_resource() -> bool:
    # Online ext4 growth (EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE, which some
    # containers drop; a real initramfs has it.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 24))
    return False


def _partition_size(disk: str, number: int = 1) -> int:
    table = json.loads(sh("sfdisk", "--json", disk).stdout)["partitiontable"]
    return int(next(p for p in table["partitions"] if p["node"].endswith(f"p{number}"))["size"]) * 512


def _enlarge(image: Path, device: str, size_mib: int) -> None:
    with open(image, "r+b") as handle:
        handle.truncate(size_mib * MIB)
    sh("losetup", "-c", device)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    image = tmp_path / "disk.img"
    with attached(image, 400) as device:
        sh("sfdisk", device, input=b"label: gpt\n,320M,L\n")
        sh("partx", "-u", device, check=False)
        yield device, image


def _fs_size(mountpoint: Path) -> int:
    st = os.statvfs(mountpoint)
    return st.f_blocks * st.f_frsize


@pytest.mark.parametrize("fstype, mkfs", [
    ("ext4", ["mkfs.ext4", "-q", "-F"]),
    ("xfs", ["mkfs.xfs", "-q", "-f"]),
    ("btrfs", ["mkfs.btrfs", "-q", "-f"]),
])
def test_mounted_filesystem_grows_with_its_partition_to_fill_the_disk(
    tmp_path: Path, small_disk: tuple[str, Path], fstype: str, mkfs: list[str],
) -> None:
    if shutil.which(mkfs[0]) is None:
        pytest.skip(f"{mkfs[0]} is not installed")
    if fstype == "ext4" and not _has_cap_sys_resource():
        pytest.skip("online ext4 growth needs CAP_SYS_RESOURCE, which this container lacks")
    device, image = small_disk
    part = f"{device}p1"
    sh(*mkfs, part)
    (tmp_path / "(root)").mkdir()
    mnt = tmp_path / "(root)"
    sh("mount", part, str(mnt))
    try:
        (mnt / "kept").write_text("data")
        before = _fs_size(mnt)
        _enlarge(image, device, 1024)
        mounted = mount_of(mnt)
        assert mounted is not None and mounted.device == part and mounted.fstype == fstype
        result = grow(part, str(mnt))
        assert result.partition_grown and result.contents == fstype
        # The partition ends where the backup GPT begins: the whole disk is used.
        size = _partition_size(device)
        assert size > 1000 * MIB
        assert int(Path(f"/sys/class/block/{Path(part).name}/size").read_text()) * 512 == size
        after = _fs_size(mnt)
        assert after > before * 2.5, (before, after)
        assert (mnt / "kept").read_text() == "data"
        # A second run has nothing to do.
        again = grow(part, str(mnt))
        assert not again.partition_grown and _partition_size(device) == size
    finally:
        sh("umount", str(mnt), check=False)
    verify = sh("sgdisk", "--verify", device, check=False).stdout
    assert "No problems found" in verify, verify


def test_unmounted_ext4_and_a_partition_with_a_neighbour(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with attached(image, 300) as device:
        sh("sfdisk", device, input=b"label: gpt\n,50M,L\n,50M,L\n")
        sh("partx", "-u", device, check=False)
        sh("mkfs.ext4", "-q", "-F", f"{device}p1")
        sh("mkfs.ext4", "-q", "-F", f"{device}p2")
        # The first partition has a neighbour right behind it: nothing to grow.
        assert not grow(f"{device}p1", None).partition_grown
        assert _partition_size(device, 1) == 50 * MIB
        # The second grows to the end, and its (unmounted) ext4 with it.
        result = grow(f"{device}p2", None)
        assert result.partition_grown and result.contents == "ext4"
        assert _partition_size(device, 2) > 240 * MIB
        blocks = sh("dumpe2fs", "-h", f"{device}p2").stdout
        count = int(next(line for line in blocks.splitlines() if line.startswith("Block count")).split()[-1])
        size = int(next(line for line in blocks.splitlines() if line.startswith("Block size")).split()[-1])
        assert count * size > 240 * MIB


def test_a_whole_disk_is_not_a_partition(tmp_path: Path) -> None:
    with attached(tmp_path / "disk.img", 50) as device, pytest.raises(ProvisionError, match="not a partition"):
        grow(device, None)


def test_mount_of_reads_escaped_mount_points(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("36 35 98:0 / /mnt/my\\040disk rw,noatime master:1 - ext4 /dev/vda1 rw\n")
    found = mount_of(Path("/mnt/my disk"), info)
    assert found is not None and (found.device, found.fstype) == ("/dev/vda1", "ext4")
    assert mount_of(Path("/mnt"), info) is None


@pytest.mark.skipif(shutil.which("pvcreate") is None, reason="lvm2 is not installed")
def test_lvm_physical_volume_grows_with_its_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "disk.img"
    env_dir = tmp_path / "lvm"
    env_dir.mkdir()
    # A private LVM system directory: no devices file or cache of the host's volumes.
    monkeypatch.setenv("LVM_SYSTEM_DIR", str(env_dir))
    (env_dir / "lvm.conf").write_text('devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 }\n'
                                      'global { use_lvmetad = 0 }\n')
    with attached(image, 200) as device:
        sh("sfdisk", device, input=b"label: gpt\n,64M,L\n")
        sh("partx", "-u", device, check=False)
        part = f"{device}p1"
        sh("pvcreate", "-q", "-y", part)

        def pv_size() -> int:
            out = sh("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pv_size", part).stdout
            return int(out.strip())

        before = pv_size()
        result = grow(part, None)
        assert result.partition_grown and result.contents == "LVM2_member"
        assert pv_size() > before * 2.5
        sh("pvremove", "-q", "-y", part, check=False)
