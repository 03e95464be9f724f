"""`provision apply` and `plan` resolve provision.config.merge/replace exactly as `provision run` does.

Before, apply silently ignored the references and reported success with
half the machine missing. A loopback HTTP server serves the referenced
configs; the tree apply makes is compared with the one `provision run`
makes from the same config.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import REPO, data_url, make_root, manifest, run_cli, write_config
from standins.http_server import LoopbackHTTPServer, Reply


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as srv:
        yield srv


def _config(**spec: Any) -> bytes:
    return json.dumps({"provision": {"version": "1.0.0"}, **spec}).encode()


def _files(*paths: str) -> dict[str, Any]:
    return {"files": [{"path": p, "contents": {"source": data_url(p + "\n")}} for p in paths]}


def _serve(server: LoopbackHTTPServer) -> dict[str, Any]:
    merged = _config(storage=_files("/etc/from-merge"), passwd={"users": [{"name": "merged", "uid": 3300}]})
    server.route("/merge.json", Reply(body=merged))
    server.route("/replacement.json", Reply(body=_config(storage=_files("/etc/from-replace"))))
    return {
        "provision": {"version": "1.0.0", "config": {
            "merge": [{"source": server.url("/merge.json"),
                       "verification": {"hash": "sha256-" + hashlib.sha256(merged).hexdigest()}}]}},
        "storage": _files("/etc/own"),
    }


def test_apply_and_plan_resolve_merge_references(tmp_path: Path, server: LoopbackHTTPServer) -> None:
    spec = _serve(server)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(spec))
    root = make_root(tmp_path / "root")
    shown = run_cli("plan", "--root", str(root), str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert "/etc/from-merge" in shown.stdout and "user merged" in shown.stdout and "/etc/own" in shown.stdout
    done = run_cli("apply", "--root", str(root), str(cfg))
    assert done.returncode == 0, done.stderr
    assert (root / "etc/from-merge").read_text() == "/etc/from-merge\n"
    assert (root / "etc/own").read_text() == "/etc/own\n"
    assert "merged:x:3300:" in (root / "etc/passwd").read_text()

    # The same config through `provision run` (the boot path) makes the same tree.
    booted = make_root(tmp_path / "booted")
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "run", "--root", str(booted), "--config", str(cfg),
         "--run-dir", str(run_dir), "--cmdline", ""],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PROVISION_STATE_DIR": str(run_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    assert manifest(booted) == manifest(root)


def test_apply_follows_a_replace_reference(tmp_path: Path, server: LoopbackHTTPServer) -> None:
    _serve(server)
    cfg = write_config(tmp_path / "c.json", {"storage": _files("/etc/dropped")})
    spec = json.loads(cfg.read_text())
    spec["provision"]["config"] = {"replace": {"source": server.url("/replacement.json")}}
    cfg.write_text(json.dumps(spec))
    root = make_root(tmp_path / "root")
    done = run_cli("apply", "--root", str(root), str(cfg))
    assert done.returncode == 0, done.stderr
    assert (root / "etc/from-replace").exists()
    assert not (root / "etc/dropped").exists()  # replace discards the config that names it


@pytest.mark.parametrize("failure", ["404", "hash"])
def test_a_failing_reference_changes_nothing(tmp_path: Path, server: LoopbackHTTPServer, failure: str) -> None:
    spec = _serve(server)
    if failure == "404":
        spec["provision"]["config"]["merge"][0]["source"] = server.url("/missing.json")
    else:
        server.route("/merge.json", Reply(body=_config(storage=_files("/etc/tampered"))))
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(spec))
    root = make_root(tmp_path / "root")
    before = manifest(root, exclude=())
    for command in ("plan", "apply"):
        proc = run_cli(command, "--root", str(root), str(cfg))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert ("404" if failure == "404" else "hash mismatch") in proc.stderr
        assert "Traceback" not in proc.stderr
    assert manifest(root, exclude=()) == before  # no record either: nothing was applied
