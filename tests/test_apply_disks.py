"""`provision apply` with filesystems: files land on them, and nothing stays mounted (root).

The whole chain in one process — disks, mount, files, release — checked by
mounting the device independently afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from apply_fixtures import data_url, make_root, run_cli, write_config
from disk_fixtures import mounted, needs_loop, partition_node

pytestmark = [pytest.mark.root, needs_loop]

LoopFactory = Callable[[int], tuple[str, Path]]


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/self/mountinfo") as info:
        return [line.split()[4] for line in info if line.split()[4].startswith(prefix)]


def _spec(device: str, extra_file: dict[str, object]) -> dict[str, object]:
    return {
        "storage": {
            "disks": [{"device": device, "wipeTable": True, "partitions": [{"number": 1, "label": "data"}]}],
            "filesystems": [{"device": partition_node(device, 1), "format": "ext4", "label": "data",
                             "path": "/srv/data", "wipeFilesystem": True}],
            "files": [{"path": "/srv/data/hello.txt", "mode": 0o640, "contents": {"source": data_url("on the disk\n")}},
                      extra_file],
        },
    }


def test_files_land_on_the_new_filesystem_and_it_is_unmounted(
    disk_env: Path, loop_factory: LoopFactory, tmp_path: Path
) -> None:
    device, _image = loop_factory(64)
    root = make_root(disk_env)
    cfg = write_config(tmp_path / "c.json", _spec(device, {"path": "/etc/motd", "contents": {"source": data_url("hi\n")}}))
    proc = run_cli("apply", "--root", str(root), str(cfg), env={"PROVISION_STATE_DIR": os.environ["PROVISION_STATE_DIR"]})
    assert proc.returncode == 0, proc.stderr
    assert _mounts_under(root) == []
    assert not (root / "srv/data/hello.txt").exists()  # it went onto the filesystem, not the root
    assert (root / "etc/motd").read_text() == "hi\n"
    with mounted(partition_node(device, 1), tmp_path / "check") as where:
        assert (where / "hello.txt").read_text() == "on the disk\n"
        assert (where / "hello.txt").stat().st_mode & 0o777 == 0o640


def test_a_failing_later_stage_still_unmounts(disk_env: Path, loop_factory: LoopFactory, tmp_path: Path) -> None:
    device, _image = loop_factory(64)
    root = make_root(disk_env)
    (root / "etc/existing").write_text("keep\n")
    # overwrite defaults to false: an existing file makes the files stage fail after the mount.
    cfg = write_config(tmp_path / "c.json", _spec(device, {"path": "/etc/existing", "contents": {"source": data_url("x")}}))
    proc = run_cli("apply", "--root", str(root), str(cfg), env={"PROVISION_STATE_DIR": os.environ["PROVISION_STATE_DIR"]})
    assert proc.returncode != 0
    assert "overwrite" in proc.stderr
    assert _mounts_under(root) == []
    assert (root / "etc/existing").read_text() == "keep\n"
