"""coreos/ignition's TFTP blackbox tests (tests/data/ignition-blackbox/tftp.yaml).

Their URLs name tftp://127.0.0.1:69, as Ignition's harness serves them. Each
run gets a network namespace of its own (``unshare --net``) in which a real
TFTP server, tftpd-hpa's ``in.tftpd``, listens on 127.0.0.1:69: port 69
needs no coordination with anything else on the machine, and nothing can
leave the namespace. ``provision apply`` runs inside it (via ``nsenter``) on
a fresh root; Ignition 2.14 does the same on a copy of the root in a
namespace of its own, and must give the same nodes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_fixtures import IGNITION, REPO
from test_ignition_blackbox import (
    CONTENTS,
    PRESET,
    SERVED_CONFIG,
    _check,
    _config,
    _seed,
    check_ignition_outcome,
    run_ignition,
    snapshot,
)

from provision.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "tftp.yaml").read_text())
TFTPD = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
UNUSED_HTTP = "http://127.0.0.1:9"  # the cases fetch nothing over HTTP

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not Path(TFTPD).exists(), reason="tftpd-hpa (in.tftpd) not installed"),
]


def _served(where: Path) -> Path:
    """What Ignition's TFTP test server answers: `contents` and `config`, nothing else."""
    where.mkdir(mode=0o755)
    where.chmod(0o755)  # in.tftpd reads as user tftp, chrooted here
    for name, body in (("contents", CONTENTS), ("config", SERVED_CONFIG)):
        (where / name).write_bytes(body)
        (where / name).chmod(0o644)
    return where


@pytest.fixture
def tftp_namespace(tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """A fresh network namespace with in.tftpd on 127.0.0.1:69; yields the nsenter prefix into it."""
    served = _served(tmp_path / "tftp")
    # in.tftpd is the namespace's only process: unshare execs the shell, which execs it. It
    # binds the wildcard address: the namespace has nothing but lo, so that is 127.0.0.1 (in.tftpd
    # cannot resolve 127.0.0.1 itself where no other interface has an IPv4 address).
    server = subprocess.Popen(
        ["unshare", "--net", "sh", "-c",
         f'ip link set lo up && exec "{TFTPD}" -4 --listen --foreground --address :69 --secure "$0"',
         str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    prefix = ("nsenter", f"--net=/proc/{server.pid}/ns/net")
    try:
        deadline = time.monotonic() + 10
        while True:
            listening = subprocess.run([*prefix, "ss", "-Hlun", "sport = :69"],
                                       capture_output=True, text=True, check=False)
            if "0.0.0.0:69" in listening.stdout:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                stderr = server.stderr.read().decode() if server.stderr and server.poll() is not None else ""
                pytest.fail(f"in.tftpd did not listen on port 69 in its namespace: {stderr}")
            time.sleep(0.05)
        yield prefix
    finally:
        server.terminate()
        server.wait(timeout=10)


def _run(prefix: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "provision", *argv],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_tftp_case(case: dict[str, Any], tmp_path: Path, tftp_namespace: tuple[str, ...],
                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    _seed(root, case)
    config = tmp_path / "config.ign"
    config.write_text(_config(case, UNUSED_HTTP))
    before = snapshot(root)
    expect = case.get("expect", "ok")
    validated = main(["validate", str(config)])
    assert validated == (1 if expect == "invalid" else 0), capsys.readouterr()
    applied = _run(tftp_namespace, "apply", "--root", str(root), str(config))
    if expect != "ok":
        assert applied.returncode != 0, applied.stdout
        assert "tftp://127.0.0.1:69/asdf" in applied.stderr, applied.stderr  # fails on the missing file
        assert snapshot(root) == before, "a failed apply changed the root"
        return
    assert applied.returncode == 0, applied.stderr
    for node in case.get("out", []):
        _check(root, node)
    assert not (root / PRESET).exists()


@pytest.mark.skipif(not IGNITION.exists(), reason="Debian package ignition not installed")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_real_ignition_agrees_over_tftp(case: dict[str, Any], tmp_path: Path,
                                        tftp_namespace: tuple[str, ...]) -> None:
    """Ignition 2.14 fetches the same URLs from the same server: the expectations are Ignition's."""
    root = tmp_path / "root"
    _seed(root, case)
    config = tmp_path / "config.ign"
    config.write_text(_config(case, UNUSED_HTTP))
    check_ignition_outcome(case, *run_ignition(config, root, tmp_path, tftp_namespace), root)
