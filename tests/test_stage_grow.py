"""The grow stage on real loop devices: the root grows by the image's default, other
mount points and devices when the config (spec 1.1.0 storage.grow) names them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from disk_fixtures import MIB, attached, needs_loop, sh

from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages
from provision.config.pipeline import parse_config
from provision.errors import StageError

pytestmark = needs_loop


def _apply(root: Path, spec: dict[str, object], force: bool = False) -> None:
    data = json.dumps(spec).encode()
    parsed = parse_config(data, "test")
    assert parsed.ok and parsed.config is not None, parsed.diagnostics
    apply_config(ApplyRequest(config=parsed.config, config_sha256=hashlib.sha256(data).hexdigest(),
                              root=root, force=force), load_stages(["grow"]))


def _size(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


@pytest.fixture
def xfs_root(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """An XFS root on the first partition of a disk that has since grown."""
    image = tmp_path / "disk.img"
    with attached(image, 400) as device:
        sh("sfdisk", device, input=b"label: gpt\n,320M,L\n")
        sh("partx", "-u", device, check=False)
        sh("mkfs.xfs", "-q", "-f", f"{device}p1")
        root = tmp_path / "root"
        root.mkdir()
        sh("mount", f"{device}p1", str(root))
        try:
            with open(image, "r+b") as handle:
                handle.truncate(1200 * MIB)
            sh("losetup", "-c", device)
            yield root, image, device
        finally:
            sh("umount", "-R", str(root), check=False)


def test_image_default_grows_the_root(xfs_root: tuple[Path, Path, str]) -> None:
    root, _, _ = xfs_root
    (root / "etc/provision").mkdir(parents=True)
    (root / "etc/provision/image.json").write_text('{"grow_root": true}')
    before = _size(root)
    _apply(root, {"provision": {"version": "1.1.0"}})
    assert _size(root) > before * 3


def test_without_the_image_setting_nothing_grows(xfs_root: tuple[Path, Path, str]) -> None:
    root, _, _ = xfs_root
    before = _size(root)
    _apply(root, {"provision": {"version": "1.1.0"}})
    assert _size(root) == before


def test_config_can_turn_the_image_default_off(xfs_root: tuple[Path, Path, str]) -> None:
    root, _, _ = xfs_root
    (root / "etc/provision").mkdir(parents=True)
    (root / "etc/provision/image.json").write_text('{"grow_root": true}')
    before = _size(root)
    _apply(root, {"provision": {"version": "1.1.0"}, "storage": {"grow": {"devices": []}}})
    assert _size(root) == before


def test_config_names_a_data_mount_and_an_explicit_failure_is_an_error(
    xfs_root: tuple[Path, Path, str], tmp_path: Path,
) -> None:
    root, _, _ = xfs_root
    with attached(tmp_path / "data.img", 200) as data_disk:
        sh("sfdisk", data_disk, input=b"label: gpt\n,120M,L\n")
        sh("partx", "-u", data_disk, check=False)
        sh("mkfs.btrfs", "-q", "-f", f"{data_disk}p1")
        (root / "data").mkdir()
        sh("mount", f"{data_disk}p1", str(root / "data"))
        with open(tmp_path / "data.img", "r+b") as handle:
            handle.truncate(400 * MIB)
        sh("losetup", "-c", data_disk)
        before_root, before_data = _size(root), _size(root / "data")
        _apply(root, {"provision": {"version": "1.1.0"}, "storage": {"grow": {"devices": ["/data"]}}})
        assert _size(root / "data") > before_data * 2.5
        assert _size(root) == before_root  # only what was named
        sh("umount", str(root / "data"))
    with pytest.raises(StageError, match="nothing is mounted there"):
        _apply(root, {"provision": {"version": "1.1.0"}, "storage": {"grow": {"devices": ["/srv"]}}}, force=True)
