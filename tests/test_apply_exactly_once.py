"""Exactly once, for real: concurrent runs on one root, and result records that are not records.

Two real `provision apply` processes race on one root (the first held up
by a slow HTTP server while it holds the lock); the root's lock makes the
second wait and find the work done — or give up with a clear message —
never a doubled append, a changed uid or a record that lies. A corrupt or
non-regular result.json is never "not provisioned" and never hangs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import REPO, data_url, make_root, manifest, run_cli, write_config
from standins.http_server import LoopbackHTTPServer, Reply

RESULT = "etc/.provision/result.json"


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as srv:
        yield srv


def _spec(server: LoopbackHTTPServer) -> dict[str, Any]:
    return {
        "passwd": {"users": [{"name": "app"}]},  # no uid: the next free one, so a second run would differ
        "storage": {"files": [
            {"path": "/etc/hosts", "append": [{"source": data_url("10.0.0.1 db\n")}]},
            {"path": "/etc/slow", "contents": {"source": server.url("/slow")}},
        ]},
    }


def _start(root: Path, cfg: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "provision", "apply", "--root", str(root), str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **env},
    )


def _wait_for_request(server: LoopbackHTTPServer, path: str) -> None:
    deadline = time.monotonic() + 30
    while server.count(path) == 0:
        assert time.monotonic() < deadline, "the first run never fetched"
        time.sleep(0.02)


def _root(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    return root


def test_a_second_apply_waits_for_the_first_and_finds_it_done(tmp_path: Path, server: LoopbackHTTPServer) -> None:
    server.route("/slow", Reply(body=b"slow\n", delay=1.5))
    root = _root(tmp_path)
    cfg = write_config(tmp_path / "c.json", _spec(server))
    first = _start(root, cfg)
    _wait_for_request(server, "/slow")  # the first run holds the lock now
    second = _start(root, cfg)
    _out1, err1 = first.communicate(timeout=60)
    out2, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "waiting for another provision run" in err2 or "waiting for another provision run" in out2
    assert "already provisioned with this config" in out2
    assert (root / "etc/hosts").read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n"
    app = [line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("app:")]
    assert len(app) == 1
    assert server.count("/slow") == 1  # the second run fetched nothing
    assert json.loads((root / RESULT).read_text())["status"] == "succeeded"


def test_a_second_apply_gives_up_after_its_wait_with_a_clear_message(
    tmp_path: Path, server: LoopbackHTTPServer
) -> None:
    server.route("/slow", Reply(body=b"slow\n", delay=2.0))
    root = _root(tmp_path)
    cfg = write_config(tmp_path / "c.json", _spec(server))
    first = _start(root, cfg)
    _wait_for_request(server, "/slow")
    second = _start(root, cfg, PROVISION_LOCK_WAIT="0.3")
    _out2, err2 = second.communicate(timeout=60)
    first.communicate(timeout=60)
    assert second.returncode == 1
    assert f"another provision run (pid {first.pid}) is applying to this root" in err2
    assert "gave up waiting after 0.3 s" in err2 and "Traceback" not in err2
    assert first.returncode == 0
    assert (root / "etc/hosts").read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n"


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    root = _root(tmp_path)
    (root / "etc/.provision").mkdir(mode=0o700)
    os.mkfifo(root / "etc/.provision/lock")
    cfg = write_config(tmp_path / "c.json", {"storage": {"files": [{"path": "/x", "contents": {"source": "data:,x"}}]}})
    proc = run_cli("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 1
    assert "lock file /etc/.provision/lock is not a regular file" in proc.stderr
    assert not (root / "x").exists()
    os.unlink(root / "etc/.provision/lock")
    outside = tmp_path / "outside"
    outside.write_text("host file\n")
    os.symlink(outside, root / "etc/.provision/lock")
    proc = run_cli("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 1 and "is a symbolic link" in proc.stderr
    assert outside.read_text() == "host file\n"


def _plant(kind: str, path: Path, outside: Path) -> str:
    """Put a bad result record at ``path``; the words status must use."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if kind == "empty":
        path.write_bytes(b"")
        return "is empty"
    if kind == "garbage":
        path.write_bytes(b"{not json")
        return "is not valid JSON"
    if kind == "list":
        path.write_text("[1, 2]")
        return "is not a JSON object"
    if kind == "object":
        path.write_text('{"hello": "world"}')
        return "is not a result record"
    if kind == "directory":
        path.mkdir()
        return "is a directory"
    if kind == "fifo":
        os.mkfifo(path)
        return "is a FIFO"
    outside.write_text(json.dumps({"config_sha256": "0" * 64, "provision_version": "0", "status": "succeeded"}))
    os.symlink(outside, path)
    return "is a symbolic link"


@pytest.mark.parametrize("kind", ["empty", "garbage", "list", "object", "directory", "fifo", "symlink"])
def test_a_bad_result_record_is_reported_and_refused_without_force(tmp_path: Path, kind: str) -> None:
    root = _root(tmp_path)
    words = _plant(kind, root / RESULT, tmp_path / "outside.json")
    status = run_cli("status", "--root", str(root))  # run_cli times out: a FIFO must not hang it
    assert status.returncode == 4, status.stdout + status.stderr
    assert "state unknown" in status.stdout and words in status.stdout
    assert "not provisioned" not in status.stdout and "Traceback" not in status.stderr
    as_json = run_cli("status", "--json", "--root", str(root))
    assert json.loads(as_json.stdout)["status"] == "unreadable"

    cfg = write_config(tmp_path / "c.json", {"storage": {"files": [{"path": "/x", "contents": {"source": "data:,x"}}]}})
    before = manifest(root, exclude=(RESULT,))  # (manifest would block reading a FIFO)
    refused = run_cli("apply", "--root", str(root), str(cfg))
    assert refused.returncode == 1
    assert words in refused.stderr and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert manifest(root, exclude=(RESULT, "etc/.provision/lock")) == {
        k: v for k, v in before.items() if k != "etc/.provision/lock"}
    plan = run_cli("plan", "--root", str(root), str(cfg))
    assert plan.returncode == 0 and words in plan.stdout

    forced = run_cli("apply", "--force", "--root", str(root), str(cfg))
    assert forced.returncode == 0, forced.stderr
    assert (root / "x").read_text() == "x"
    assert json.loads((root / RESULT).read_text())["status"] == "succeeded"
    if kind == "symlink":
        assert json.loads((tmp_path / "outside.json").read_text())["config_sha256"] == "0" * 64
    assert run_cli("status", "--root", str(root)).returncode == 0
