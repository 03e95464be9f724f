"""Files a platform hands over are hostile until read safely: a FIFO, a device
node, an oversized file or (on removable media) a link give a clear error —
never a hang, never unbounded memory, never a file from outside the medium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.localread import read_platform_file
from provision.platforms.settings import Settings
from tests.standins.systree import make_sys_root


def _nocloud_seed(tmp_path: Path) -> tuple[Path, Settings]:
    root = make_sys_root(tmp_path / "root")
    seed = root / "seed"
    seed.mkdir()
    s = Settings.load(sys_root=str(root), cmdline="ds=nocloud;s=file:///seed/",
                      run_dir=str(root / "run"), environ={})
    return seed, s


def test_a_fifo_as_seed_user_data_is_refused_without_hanging(tmp_path: Path) -> None:
    seed, s = _nocloud_seed(tmp_path)
    os.mkfifo(seed / "user-data")  # no writer: a plain open() would block for ever
    with pytest.raises(FetchError, match=r"nocloud seed: cannot read .*user-data: is a FIFO"):
        acquire_config(s, offline=True)


def test_a_link_to_dev_zero_as_seed_meta_data_is_refused(tmp_path: Path) -> None:
    seed, s = _nocloud_seed(tmp_path)
    (seed / "user-data").write_bytes(b"#cloud-config\n")
    (seed / "meta-data").symlink_to("/dev/zero")
    with pytest.raises(FetchError, match="is a character device"):
        acquire_config(s, offline=True)


def test_an_oversized_seed_file_is_refused(tmp_path: Path) -> None:
    seed, s = _nocloud_seed(tmp_path)
    with open(seed / "user-data", "wb") as big:
        big.truncate((16 << 20) + 1)  # sparse: costs no disk
    with pytest.raises(FetchError, match="larger than"):
        acquire_config(s, offline=True)


def test_links_on_removable_media_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "initramfs-secret"
    secret.write_bytes(b"not for the config")
    medium = tmp_path / "medium"
    medium.mkdir()
    (medium / "user_data").symlink_to(secret)
    with pytest.raises(FetchError, match="symbolic link"):
        read_platform_file(medium / "user_data", "/dev/sr0", follow_links=False)
    assert read_platform_file(medium / "missing", "/dev/sr0", follow_links=False) is None


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "user.ign"
    path.write_bytes(b'{"ignition": {"version": "3.4.0"}}')
    assert read_platform_file(path, "system config") == path.read_bytes()
