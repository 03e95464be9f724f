"""sshd itself reads the configuration the users stage leaves: ``sshd -T`` shows the effective value.

Each case builds an image's sshd_config (and drop-ins), applies a user with a
key, then asks the real sshd for its effective AuthorizedKeysFile. The
image's Include line names /etc/ssh/... (the target's path); for the check it
is pointed at the same directory inside the test root. Skipped without sshd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from accounts_fixtures import config, make_debian_root

from provision.stages.base import Target
from provision.stages.users import UsersStage

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None)
pytestmark = pytest.mark.skipif(SSHD is None or shutil.which("ssh-keygen") is None,
                                reason="sshd (openssh-server) or ssh-keygen not installed")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f core@laptop"
OURS = ".ssh/authorized_keys.d/provision"


def effective_keys_files(root: Path, tmp_path: Path) -> list[str]:
    main = root / "etc/ssh/sshd_config"
    text = main.read_text().replace("/etc/ssh/sshd_config.d/", f"{root}/etc/ssh/sshd_config.d/")
    check = tmp_path / "sshd_config.check"
    check.write_text(text)
    host_key = tmp_path / "host_key"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd refuses to run without its privilege separation dir
    proc = subprocess.run([str(SSHD), "-T", "-f", str(check), "-h", str(host_key)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "authorizedkeysfile":
            return value.split()
    raise AssertionError("sshd printed no authorizedkeysfile")


def apply_key(root: Path) -> None:
    stage = UsersStage("direct")
    stage.apply(stage.plan(config({"users": [{"name": "core", "sshAuthorizedKeys": [KEY]}]}), Target(root)),
                Target(root))


@pytest.mark.parametrize(("main", "dropins", "expected"), [
    # Debian's layout: Include first, nothing set -> our drop-in with sshd's defaults.
    ("Include /etc/ssh/sshd_config.d/*.conf\n", {},
     [".ssh/authorized_keys", ".ssh/authorized_keys2", OURS]),
    # A drop-in read after ours: ours comes first and keeps its value.
    ("Include /etc/ssh/sshd_config.d/*.conf\n", {"60-image.conf": "AuthorizedKeysFile .ssh/image\n"},
     [".ssh/image", OURS]),
    # A drop-in read before ours: only the top of sshd_config comes earlier.
    ("Include /etc/ssh/sshd_config.d/*.conf\n", {"10-image.conf": "AuthorizedKeysFile .ssh/early\n"},
     [".ssh/early", OURS]),
    # No Include at all, the image's own setting.
    ("AuthorizedKeysFile .ssh/authorized_keys\nPermitRootLogin no\n", {},
     [".ssh/authorized_keys", OURS]),
    # Set before the Include line.
    ("AuthorizedKeysFile /etc/keys/%u\nInclude /etc/ssh/sshd_config.d/*.conf\n", {},
     ["/etc/keys/%u", OURS]),
])
def test_sshd_reads_our_keys_file(tmp_path: Path, main: str, dropins: dict[str, str], expected: list[str]) -> None:
    root = make_debian_root(tmp_path / "root")
    (root / "etc/ssh/sshd_config").write_text(main)
    for name, text in dropins.items():
        (root / "etc/ssh/sshd_config.d" / name).write_text(text)
    apply_key(root)
    assert effective_keys_files(root, tmp_path) == expected
    before = (root / "etc/ssh/sshd_config").read_text()
    apply_key(root)  # idempotent: nothing added twice
    assert (root / "etc/ssh/sshd_config").read_text() == before
