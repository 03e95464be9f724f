"""The README's quickstart: transpile examples/quickstart.yaml, apply it to an empty directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the users stage needs root to chown")


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=REPO, capture_output=True, text=True)


def test_quickstart_applies_to_an_empty_directory(tmp_path: Path) -> None:
    config, root = tmp_path / "quickstart.json", tmp_path / "root"
    root.mkdir()
    transpiled = provision("transpile", "examples/quickstart.yaml", "-o", str(config))
    assert transpiled.returncode == 0 and transpiled.stderr == ""
    applied = provision("apply", "--root", str(root), str(config))
    assert applied.returncode == 0, applied.stderr

    assert (root / "etc/hostname").read_text() == "quickstart-01\n"
    assert (root / "etc/motd").read_bytes() == (REPO / "examples/quickstart/motd").read_bytes()
    assert "Hello from a container" in (root / "srv/www/index.html").read_text()
    assert stat.S_IMODE((root / "srv/www").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "etc/hostname").stat().st_mode) == 0o644
    assert os.readlink(root / "etc/localtime") == "../usr/share/zoneinfo/UTC"
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert (wants / "hello.service").is_symlink()
    assert "ops:" in (root / "etc/passwd").read_text()
    assert "docker:" in (root / "etc/group").read_text()
    keys = root / "home/ops/.ssh/authorized_keys.d/provision"
    assert keys.read_text().startswith("ssh-ed25519 ")
    unit = (root / "etc/systemd/system/provision-web.service").read_text()
    assert "nginx:1.27" in unit and "8080:80" in unit and "/srv/www:/usr/share/nginx/html:ro" in unit
    assert (wants / "provision-web.service").is_symlink()
    env = root / "etc/provision/containers/web.env"
    assert env.read_text() == "NGINX_ENTRYPOINT_QUIET_LOGS=1\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
