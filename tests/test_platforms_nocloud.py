"""NoCloud fully: user-data with meta-data, vendor-data and network-config from a cidata
filesystem (real iso9660 on a loop device), a file:// seed directory, an http seed,
and the ds=nocloud kernel argument's i=/h= overrides; the raw extras reach the run dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.settings import Settings
from tests.standins.http_server import LoopbackHTTPServer, Reply
from tests.standins.systree import loop_device, make_iso, make_sys_root

USER_DATA = b"#cloud-config\nhostname: from-user-data\n"
META_DATA = b"instance-id: iid-local01\nlocal-hostname: seeded\n"
VENDOR_DATA = b"#cloud-config\npackages: [htop]\n"
NETWORK_CONFIG = (b"version: 2\nethernets:\n  eth0:\n    addresses: [192.0.2.10/24]\n"
                  b"    gateway4: 192.0.2.1\n")


def settings(root: Path, cmdline: str, **kw: str) -> Settings:
    return Settings.load(sys_root=str(root), cmdline=cmdline, run_dir=str(root / "run"),
                         environ={}, **kw)


def test_http_seed_brings_every_file(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with LoopbackHTTPServer() as seed:
        seed.route("/seed/user-data", Reply(body=USER_DATA))
        seed.route("/seed/meta-data", Reply(body=META_DATA))
        seed.route("/seed/network-config", Reply(body=NETWORK_CONFIG))
        # no vendor-data: 404, which is fine for the optional files
        s = settings(root, f"ds=nocloud-net;s={seed.url('/seed/')}")
        assert acquire_config(s, offline=True).status == "need-network"
        outcome = acquire_config(s)
        assert seed.count("/seed/vendor-data") == 1
    assert outcome.platform == "nocloud" and outcome.data == USER_DATA
    assert outcome.extras == {"meta-data": META_DATA, "network-config": NETWORK_CONFIG}


def test_http_seed_without_user_data_is_an_error(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with LoopbackHTTPServer() as seed, pytest.raises(FetchError, match="404"):
        acquire_config(settings(root, f"ds=nocloud;s={seed.url('/nothing/')}"))


def test_seed_template_with_percent_s(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with LoopbackHTTPServer() as seed:
        seed.route("/api/user-data.txt", Reply(body=USER_DATA))
        seed.route("/api/meta-data.txt", Reply(body=META_DATA))
        outcome = acquire_config(settings(root, f"ds=nocloud;s={seed.url('/api/%s.txt')}"))
    assert outcome.data == USER_DATA and outcome.extras["meta-data"] == META_DATA


def test_file_seed_directory_and_kernel_overrides(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    seed = root / "var/lib/cloud/seed/nocloud"
    seed.mkdir(parents=True)
    (seed / "user-data").write_bytes(USER_DATA)
    (seed / "meta-data").write_bytes(META_DATA)
    (seed / "vendor-data").write_bytes(VENDOR_DATA)
    s = settings(root, "ds=nocloud;s=file:///var/lib/cloud/seed/nocloud/;i=iid-cmdline;h=node7")
    outcome = acquire_config(s, offline=True)  # a local directory needs no network
    assert outcome.data == USER_DATA and outcome.extras["vendor-data"] == VENDOR_DATA
    meta = yaml.safe_load(outcome.extras["meta-data"])
    assert meta == {"instance-id": "iid-cmdline", "local-hostname": "node7"}
    assert "network-config" not in outcome.extras


@pytest.mark.root
@pytest.mark.skipif(not all(shutil.which(t) for t in ("xorriso", "losetup")),
                    reason="needs xorriso and losetup")
def test_cidata_iso_extras_reach_the_run_directory(tmp_path: Path) -> None:
    image = make_iso(tmp_path / "seed.iso", "cidata", {
        "user-data": b'{"provision": {"version": "1.0.0"}}', "meta-data": META_DATA,
        "network-config": NETWORK_CONFIG})
    with loop_device(image) as device:
        root = make_sys_root(tmp_path / "sys", labels={"cidata": device})
        target = tmp_path / "target"
        (target / "etc").mkdir(parents=True)
        run_dir = tmp_path / "run"
        done = subprocess.run(
            [sys.executable, "-m", "provision", "run", "--root", str(target), "--run-dir",
             str(run_dir), "--sys-root", str(root), "--cmdline", "", "--phase", "fetch-offline"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PROVISION_STATE_DIR": str(run_dir)})
    assert done.returncode == 0, done.stderr
    kept = run_dir / "platform"
    assert (kept / "network-config").read_bytes() == NETWORK_CONFIG
    assert (kept / "meta-data").read_bytes() == META_DATA
    assert not (kept / "vendor-data").exists()
    assert kept.stat().st_mode & 0o777 == 0o700
    assert (kept / "network-config").stat().st_mode & 0o777 == 0o600


def test_ds_nocloud_without_a_seed_names_the_platform(tmp_path: Path) -> None:
    from provision.platforms.detect import detect_platform

    root = make_sys_root(tmp_path / "root")
    s = settings(root, "ds=nocloud")
    assert detect_platform(s).platform == "nocloud"
    assert acquire_config(s, offline=True).status == "none"  # no cidata here
