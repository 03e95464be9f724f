"""The stage contract: one skeleton, a boot phase for every stage, nothing changed before everything is fetched.

The attacks use a real HTTP server on 127.0.0.1 that answers 404 (or wrong
bytes) for one resource among many, and check that the target root — and,
with root, the disk — is byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import data_url, make_root, manifest, run_cli, write_config
from disk_fixtures import needs_loop, partition_node
from standins.http_server import LoopbackHTTPServer, Reply

from provision.boot.phases import PHASES as BOOT_PHASES
from provision.stages import load_stage, stage_order, stages_in_phase
from provision.stages.base import PHASES, StageBase

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q app@ci"


def test_every_registered_stage_runs_in_a_phase_the_boot_runs() -> None:
    # A stage whose phase the initramfs does not run would work under
    # `provision apply` and be silently skipped at boot.
    for name in stage_order():
        stage = load_stage(name)
        assert stage.phase in PHASES, name
    assert set(PHASES) <= set(BOOT_PHASES)
    # The phases, run in boot order, run every stage once and in run order.
    at_boot = [name for phase in BOOT_PHASES if phase in PHASES for name in stages_in_phase(phase)]
    assert at_boot == stage_order()


def test_every_stage_uses_the_one_skeleton() -> None:
    for name in stage_order():
        stage = load_stage(name)
        assert isinstance(stage, StageBase), name
        # The skeleton's apply (stage the needs, run the steps, crash points) is never copied.
        assert type(stage).apply is StageBase.apply, name
        assert type(stage).plan is StageBase.plan, name


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as srv:
        yield srv


def _root(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    return root


def _everything(server: LoopbackHTTPServer, bad: dict[str, Any]) -> dict[str, Any]:
    """Users, files (one of them ``bad``, listed last), units and a container runtime."""
    server.route("/good", Reply(body=b"fetched fine\n"))
    return {
        "passwd": {"users": [{"name": "app", "uid": 3201, "sshAuthorizedKeys": [KEY]}],
                   "groups": [{"name": "appgrp", "gid": 3200}]},
        "storage": {
            "directories": [{"path": "/srv/app", "mode": 0o750}],
            "files": [
                {"path": "/etc/hosts", "append": [{"source": data_url("10.0.0.1 db\n")}]},
                {"path": "/etc/good", "contents": {"source": server.url("/good")}},
                {"path": "/etc/issue", "overwrite": True, "contents": {"source": data_url("welcome\n")}},
                bad,
            ],
            "links": [{"path": "/usr/local/bin/app", "target": "/etc/good"}],
        },
        "systemd": {"units": [{"name": "app.service", "enabled": True,
                               "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]},
        "containers": {"runtime": "podman", "containers": [{"name": "web", "image": "docker.io/library/nginx:1.27"}]},
    }


def _everything_of(root: Path) -> dict[str, tuple[Any, ...]]:
    return manifest(root)  # all but etc/.provision, the run's own state


@pytest.mark.parametrize("failure", ["404", "hash", "gzip"])
def test_a_bad_remote_file_leaves_the_root_byte_for_byte_untouched(
    tmp_path: Path, server: LoopbackHTTPServer, failure: str
) -> None:
    root = _root(tmp_path)
    bad: dict[str, Any] = {"path": "/zz/last", "contents": {"source": server.url("/bad")}}
    if failure == "404":
        pass  # unknown paths answer 404
    elif failure == "hash":
        server.route("/bad", Reply(body=b"tampered\n"))
        bad["contents"]["verification"] = {"hash": "sha256-" + hashlib.sha256(b"expected\n").hexdigest()}
    else:
        server.route("/bad", Reply(body=b"\x1f\x8b\x08\x00 this is not gzip"))
        bad["contents"]["compression"] = "gzip"
    cfg = write_config(tmp_path / "c.json", _everything(server, bad))
    before = _everything_of(root)
    proc = run_cli("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "/zz/last" in proc.stderr and "Traceback" not in proc.stderr
    # No user, group, key, file, unit or container file: the tree is as it was
    # (the result record apart, which says what failed).
    assert _everything_of(root) == before
    record = json.loads((root / "etc/.provision/result.json").read_text())
    assert record["status"] == "failed"
    failed = [s for s in record["stages"] if s["status"] == "failed"]
    assert [(s["name"], s["item"]) for s in failed] == [("files", "/zz/last")]
    assert all(s["status"] in ("not-run", "failed") for s in record["stages"])
    # Fixed on the server, the same config applies on rerun.
    server.route("/bad", Reply(body=b"expected\n"))
    if failure == "gzip":
        server.route("/bad", Reply(body=__import__("gzip").compress(b"expected\n")))
    again = run_cli("apply", "--root", str(root), str(cfg))
    assert again.returncode == 0, again.stderr
    assert (root / "zz/last").read_bytes() == b"expected\n"
    assert "app:x:3201:" in (root / "etc/passwd").read_text()


def test_a_bad_preload_archive_leaves_the_root_untouched(tmp_path: Path, server: LoopbackHTTPServer) -> None:
    root = _root(tmp_path)
    spec = _everything(server, {"path": "/etc/fine", "contents": {"source": data_url("ok\n")}})
    spec["containers"]["preload"] = [{"source": server.url("/missing.tar"),
                                      "verification": {"hash": "sha256-" + "0" * 64}}]
    cfg = write_config(tmp_path / "c.json", spec)
    before = _everything_of(root)
    proc = run_cli("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "containers" in proc.stderr and "404" in proc.stderr
    assert _everything_of(root) == before


def test_staged_contents_are_gone_after_the_run(tmp_path: Path, server: LoopbackHTTPServer) -> None:
    root = _root(tmp_path)
    big = os.urandom(300_000)  # over the in-memory size: staged in a file inside the target
    server.route("/big", Reply(body=big))
    cfg = write_config(tmp_path / "c.json", {"storage": {"files": [
        {"path": "/big", "contents": {"source": server.url("/big")}}]}})
    proc = run_cli("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert (root / "big").read_bytes() == big
    assert not (root / "etc/.provision/staging").exists()
    assert sorted(p.name for p in (root / "etc/.provision").iterdir()) == ["journal", "lock", "result.json"]


# ---- with disks (root, loop devices) --------------------------------------

LoopFactory = Callable[[int], tuple[str, Path]]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _disks(device: str) -> dict[str, Any]:
    return {"disks": [{"device": device, "wipeTable": True,
                       "partitions": [{"number": 1, "label": "data", "sizeMiB": 16}]}],
            "filesystems": [{"device": partition_node(device, 1), "format": "ext4", "wipeFilesystem": True}]}


@pytest.mark.root
@needs_loop
def test_a_failing_luks_key_file_url_leaves_disk_users_and_files_untouched(
    disk_env: Path, loop_factory: LoopFactory, tmp_path: Path, server: LoopbackHTTPServer
) -> None:
    device, image = loop_factory(48)
    root = _root(disk_env)
    spec = _everything(server, {"path": "/etc/fine", "contents": {"source": data_url("ok\n")}})
    spec["storage"].update(_disks(device))
    spec["storage"]["luks"] = [{"name": "vault", "device": partition_node(device, 1),
                                "keyFile": {"source": server.url("/luks-key")}}]
    spec["storage"]["filesystems"] = []
    cfg = write_config(tmp_path / "c.json", spec)
    disk_before, root_before = _sha(image), _everything_of(root)
    proc = run_cli("apply", "--root", str(root), str(cfg), env={"PROVISION_STATE_DIR": str(tmp_path / "state")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "LUKS volume vault key file" in proc.stderr and "404" in proc.stderr
    assert _sha(image) == disk_before  # no partition table was written
    assert _everything_of(root) == root_before


@pytest.mark.root
@needs_loop
def test_a_404_file_leaves_the_disk_untouched_in_apply_and_at_boot(
    disk_env: Path, loop_factory: LoopFactory, tmp_path: Path, server: LoopbackHTTPServer
) -> None:
    device, image = loop_factory(48)
    root = _root(disk_env)
    spec = _everything(server, {"path": "/zz/last", "contents": {"source": server.url("/gone")}})
    spec["storage"].update(_disks(device))
    cfg = write_config(tmp_path / "c.json", spec)
    disk_before, root_before = _sha(image), _everything_of(root)
    env = {"PROVISION_STATE_DIR": str(tmp_path / "state")}
    proc = run_cli("apply", "--root", str(root), str(cfg), env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _sha(image) == disk_before
    assert _everything_of(root) == root_before
    # At boot the disks phase runs in its own process before the root is
    # mounted: it verifies what the files phase will fetch before partitioning.
    run_dir = tmp_path / "run"
    booted = run_cli("run", "--root", str(root), "--config", str(cfg), "--run-dir", str(run_dir),
                     "--cmdline", "", "--phase", "fetch-offline", "--phase", "fetch", "--phase", "disks",
                     env={"PROVISION_STATE_DIR": str(run_dir)})
    assert booted.returncode == 1, booted.stdout + booted.stderr
    assert "/zz/last" in booted.stderr
    assert _sha(image) == disk_before
    assert _everything_of(root) == root_before
