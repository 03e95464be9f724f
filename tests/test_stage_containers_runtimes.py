"""The runtimes themselves read what the containers stage writes.

containerd parses config.toml (``containerd --config F config dump``) and
podman parses containers.conf, registries.conf and storage.conf (``podman
info`` pointed at them with CONTAINERS_* variables, with storage, run and
temporary directories under the test's own directory so the host is left
alone). Skipped where the runtime is not installed (scripts/system-packages.txt
lists both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest
from test_stage_containers import CONTAINERD, PODMAN, apply, make_image


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd not installed")
def test_containerd_reads_our_config(tmp_path: Path) -> None:
    root = make_image(tmp_path / "root", systemd_units=False)
    (root / "etc/containerd").mkdir()
    (root / "etc/containerd/config.toml").write_text('version = 2\noom_score = -500\n')
    apply(root, CONTAINERD)
    proc = subprocess.run(["containerd", "--config", str(root / "etc/containerd/config.toml"), "config", "dump"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    dumped = tomllib.loads(proc.stdout)
    assert dumped["root"] == "/var/lib/ctd" and dumped["oom_score"] == -500
    cri = dumped["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")
def test_podman_reads_our_configuration(tmp_path: Path) -> None:
    root = make_image(tmp_path / "root", systemd_units=False)
    apply(root, PODMAN)
    conf = root / "etc/containers"
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(conf / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
        "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
    }
    scratch = Path(tempfile.mkdtemp(prefix="pm-"))  # podman wants a runroot under 50 characters
    try:
        proc = subprocess.run(
            ["podman", "--root", str(scratch / "graph"), "--runroot", str(scratch / "run"),
             "--tmpdir", str(scratch / "tmp"), "info", "--format", "json"],
            capture_output=True, text=True, timeout=120, env=env,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["host"]["cgroupManager"] == "cgroupfs"
    assert info["host"]["logDriver"] == "journald"
    assert info["store"]["graphDriverName"] == "overlay"
    hub = info["registries"]["docker.io"]
    assert [(m["Location"], m["Insecure"]) for m in hub["Mirrors"]] == [
        ("mirror.example.com/v2", False), ("10.0.0.5:5000", True)]
    assert info["registries"]["registry.local:5000"]["Insecure"] is True
