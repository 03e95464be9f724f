"""coreos/ignition's blackbox tests, ported as data (tests/data/ignition-blackbox/cases.yaml).

Each case's Ignition config is validated and applied with ``provision apply
--root`` to a fresh directory holding the case's starting nodes, and the
nodes Ignition's test expects are then checked on it; a negative case must
be refused by validate, or fail in apply, with nothing written. Remote
contents come from a real HTTP server on 127.0.0.1 serving what Ignition's
test servers serve. Deliberate differences are recorded in the data. Where Debian's Ignition
2.14 can run a case (spec 3.0-3.3), it runs too, on its own copy of the
root, and must give the same nodes: the expectations are Ignition's.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_fixtures import IGNITION

from provision.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "cases.yaml").read_text())
CONTENTS = b"asdf\nfdsa"
# servers.go's servedConfig, byte for byte (references to it carry its hash).
SERVED_CONFIG = b"""{
	"ignition": { "version": "3.0.0" },
	"storage": {
		"files": [{
			"path": "/foo/bar",
			"contents": { "source": "data:,example%20file%0A" }
		}]
	}
}"""
# Ignition's base root: the users and groups its tests name.
PASSWD = "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:CoreOS Admin:/home/core:/bin/bash\n"
GROUP = "root:x:0:root\nwheel:x:10:root,core\ncore:x:500:\n"
PRESET = "etc/systemd/system-preset/20-provision.preset"
OWN_RECORDS = ("etc/.provision",)  # provision's own record of the attempt, not part of the machine


class _Handler(http.server.BaseHTTPRequestHandler):
    """What Ignition's tests/servers serve (for contents), checked the same way."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _wants(self, expected: dict[str, str]) -> bool:
        return all(self.headers.get(name) == value for name, value in expected.items())

    def do_GET(self) -> None:
        # /config* routes behave as their /contents* twins but serve the config
        body = SERVED_CONFIG if self.path.startswith("/config") else CONTENTS
        path = self.path.replace("/config", "/contents", 1) if self.path.startswith("/config") else self.path
        if path == "/contents":
            self._send(200, body)
        elif path == "/contents_compressed":
            self._send(200, gzip.compress(body))
        elif path == "/contents_headers":
            ok = self._wants({"X-Auth": "r8ewap98gfh4d8", "Keep-Alive": "300"}) and self.headers.get("User-Agent")
            self._send(200 if ok else 400, body)
        elif path == "/contents_headers_redirect":
            self.send_response(302)
            twin = self.path.replace("_redirect", "_redirected")
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}{twin}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/contents_headers_redirected":
            forwarded = self.headers.get("X-Auth") is not None or self.headers.get("Keep-Alive") is not None
            self._send(400 if forwarded else 200, body)
        elif path == "/contents_headers_overwrite":
            ok = self._wants({"Keep-Alive": "1000", "Accept": "application/json",
                              "Accept-Encoding": "identity, compress", "User-Agent": "MyUA"})
            self._send(200 if ok else 400, body)
        else:
            self._send(404, b"not found")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _config(case: dict[str, Any], url: str) -> str:
    config = dict(case["config"])  # a case's own ignition section (config references) keeps the version
    config["ignition"] = {"version": case.get("version", "3.0.0"), **config.get("ignition", {})}
    text = json.dumps(config)
    return (text.replace("http://127.0.0.1:8080", url)
            .replace("CONTENTS_SHA512", hashlib.sha512(CONTENTS).hexdigest())
            .replace("CONTENTS_SHA256", hashlib.sha256(CONTENTS).hexdigest())
            .replace("CONFIG_SHA512", hashlib.sha512(SERVED_CONFIG).hexdigest()))


def _make(root: Path, node: dict[str, Any]) -> None:
    kind = next(k for k in ("file", "dir", "link") if k in node)
    path = root / node[kind].lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        path.write_text(node.get("contents", ""))
    elif kind == "dir":
        path.mkdir(exist_ok=True)
    elif node.get("hard"):
        os.link(root / node["target"].lstrip("/"), path)
    else:
        path.symlink_to(node["target"])
    if "mode" in node:
        path.chmod(node["mode"])
    if "user" in node or "group" in node:
        os.lchown(path, node.get("user", -1), node.get("group", -1))


def _seed(root: Path, case: dict[str, Any]) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    for node in case.get("in", []):
        _make(root, node)


def _check(root: Path, node: dict[str, Any]) -> None:
    kind = next(k for k in ("file", "dir", "link") if k in node)
    path = root / node[kind].lstrip("/")
    info = path.lstat()
    where = node[kind]
    if kind == "file":
        assert stat.S_ISREG(info.st_mode), f"{where} is not a regular file"
        if "contents" in node:
            assert path.read_text() == node["contents"], where
    elif kind == "dir":
        assert stat.S_ISDIR(info.st_mode), f"{where} is not a directory"
    elif node.get("hard"):
        target = (root / node["target"].lstrip("/")).lstat()
        assert (info.st_ino, info.st_dev) == (target.st_ino, target.st_dev), f"{where} is not a hard link"
    else:
        assert stat.S_ISLNK(info.st_mode), f"{where} is not a symlink"
        assert os.readlink(path) == node["target"], where
    if "mode" in node:
        assert stat.S_IMODE(info.st_mode) == node["mode"], f"{where}: mode {stat.S_IMODE(info.st_mode):o}"
    if "user" in node:
        assert info.st_uid == node["user"], where
    if "group" in node:
        assert info.st_gid == node["group"], where


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every node under root: type, mode, owner, contents or target (provision's own records left out)."""
    found: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if rel.startswith(OWN_RECORDS):
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                body: Any = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                body = path.read_bytes()
            else:
                body = None
            found[rel] = (info.st_mode, info.st_uid, info.st_gid, info.st_ino, body)
    return found


def _run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_blackbox_case(case: dict[str, Any], tmp_path: Path, server_url: str,
                                capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    if "skip" in case:
        pytest.skip(case["skip"])
    if "known_bug" in case:
        # strict: once the bug is fixed the case passes, and the mark must go
        request.applymarker(pytest.mark.xfail(reason=case["known_bug"], strict=True))
    root = tmp_path / "root"
    _seed(root, case)
    config = tmp_path / "config.ign"
    config.write_text(_config(case, server_url))
    before = snapshot(root)
    expect = case.get("expect", "ok")
    validated, output = _run("validate", str(config), capsys=capsys)
    assert validated == (1 if expect == "invalid" else 0), output
    applied, output = _run("apply", "--root", str(root), str(config), capsys=capsys)
    if expect != "ok":
        assert applied != 0, output
        assert snapshot(root) == before, "a failed apply changed the root"
        return
    assert applied == 0, output
    for node in case.get("out", []):
        _check(root, node)
    for path in case.get("absent", []):
        assert not os.path.lexists(root / path.lstrip("/")), f"{path} still exists"
    if "preset" in case:
        assert sorted((root / PRESET).read_text().splitlines()) == sorted(case["preset"])


# Ignition's files stage ends with an SELinux relabel (and a systemd call) that cannot succeed
# in a plain directory; everything before that has been applied (see test_apply_vs_ignition).
_LATE_FAILURES = ("failed to handle relabeling", "/run/systemd/private")
_IGNITION_SPECS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0")  # Debian's ignition 2.14


def _ignition_runs(case: dict[str, Any]) -> bool:
    return "skip" not in case and case.get("version", "3.0.0") in _IGNITION_SPECS


@pytest.mark.skipif(not IGNITION.exists(), reason="Debian package ignition not installed")
@pytest.mark.parametrize("case", [c for c in CASES if _ignition_runs(c)],
                         ids=[c["name"] for c in CASES if _ignition_runs(c)])
def test_real_ignition_agrees_with_the_transcription(case: dict[str, Any], tmp_path: Path, server_url: str) -> None:
    """Ignition 2.14 itself, on the same root and config: the expected nodes are Ignition's, not ours."""
    root = tmp_path / "root"
    _seed(root, case)
    config = tmp_path / "config.ign"
    config.write_text(_config(case, server_url))
    check_ignition_outcome(case, *run_ignition(config, root, tmp_path), root)


def run_ignition(config: Path, root: Path, work: Path, prefix: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Ignition's fetch and files stages on ``root`` with ``config`` (its "file" platform), each
    run behind ``prefix`` (e.g. nsenter): whether it failed before its late relabel step, and its log."""
    env = {**os.environ, "IGNITION_CONFIG_FILE": str(config)}
    common = ["-platform", "file", "-root", str(root), "-log-to-stdout",
              "-config-cache", str(work / "cache.json"), "-state-file", str(work / "state")]
    fetch = subprocess.run([*prefix, str(IGNITION), "-stage", "fetch", *common], env=env,
                           capture_output=True, text=True, timeout=60)
    files = subprocess.run([*prefix, str(IGNITION), "-stage", "files", *common], env=env,
                           capture_output=True, text=True, timeout=60) if fetch.returncode == 0 else fetch
    failures = [line for line in files.stdout.splitlines() if "Ignition failed" in line]
    failed_early = files.returncode != 0 and not (failures and any(k in failures[-1] for k in _LATE_FAILURES))
    return failed_early, files.stdout


def check_ignition_outcome(case: dict[str, Any], failed_early: bool, log: str, root: Path) -> None:
    """What Ignition did must be what the case expects of it (its ``ignition_expect``, else ``expect``)."""
    if case.get("ignition_expect", case.get("expect", "ok")) != "ok":
        assert failed_early, log[-2000:]
        return
    assert not failed_early, log[-3000:]
    if case.get("expect", "ok") != "ok":
        return  # provision refuses it on purpose (see the case's difference); Ignition applied it
    for node in case.get("out", []):
        _check(root, node)
    for path in case.get("absent", []):
        assert not os.path.lexists(root / path.lstrip("/")), f"{path} still exists"
    if "preset" in case:
        preset = root / "etc/systemd/system-preset/20-ignition.preset"
        assert sorted(preset.read_text().splitlines()) == sorted(case["preset"])


def test_the_port_counts() -> None:
    """How many of the transcribed tests run and how many are skipped (with their reasons in the data)."""
    skipped = [c for c in CASES if "skip" in c]
    assert len(CASES) - len(skipped) >= 50
    assert all(c["skip"].strip() for c in skipped)
