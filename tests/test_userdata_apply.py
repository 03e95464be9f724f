"""MIME user data, provisioned into a real root by the files and units stages, then run there.

The translated spec is applied by provision's own stages to a directory
root; systemd-analyze verifies the generated units against that root (with
the distribution's systemd units in it), and the scripts unit's command is
run inside the root with chroot and a static busybox as /bin/sh: the scripts
run in order, a failing one is reported and the next still runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.config.pipeline import parse_config
from tests.apply_fixtures import apply, make_root
from tests.test_cloudconfig_translation import _unquote_exec
from tests.test_userdata import mime

SYSTEMD_UNITS = Path("/lib/systemd/system")
BUSYBOX = shutil.which("busybox")
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")


def image(root: Path) -> Path:
    make_root(root)
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    if SYSTEMD_UNITS.is_dir():
        shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    assert BUSYBOX is not None
    shutil.copy(BUSYBOX, root / "usr/bin/busybox")
    for tool in ("sh", "mkdir", "touch", "echo"):
        (root / "usr/bin" / tool).symlink_to("busybox")
    (root / "tmp").mkdir(mode=0o1777)
    return root


def test_scripts_from_mime_user_data_run_in_the_provisioned_root(tmp_path: Path) -> None:
    data = mime(
        ({"Content-Type": "text/cloud-config"}, "#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: hi\n"),
        ({"Content-Type": "text/x-shellscript"}, "#!/bin/sh\necho first >> /tmp/log\nexit 7\n"),
        ({"Content-Type": "text/x-shellscript"}, "#!/bin/sh\necho second >> /tmp/log\n"),
        ({"Content-Type": "text/cloud-boothook"}, "#cloud-boothook\n#!/bin/sh\necho \"boot $INSTANCE_ID\" >> /tmp/log\n"),
    )
    parsed = parse_config(data, "user-data", instance_data={"v1": {"instance_id": "i-42"}})
    assert parsed.ok and parsed.spec is not None, parsed.diagnostics
    root = image(tmp_path / "root")
    apply(parsed.spec, root)

    assert (root / "etc/motd").read_text() == "hi"
    scripts = root / "var/lib/provision/user-data/per-instance"
    assert sorted(p.stat().st_mode & 0o777 for p in scripts.iterdir()) == [0o700, 0o700]
    system = root / "etc/systemd/system"
    assert (system / "multi-user.target.wants/provision-user-scripts.service").is_symlink()
    assert (system / "sysinit.target.wants/provision-boothooks.service").is_symlink()
    if shutil.which("systemd-analyze") and SYSTEMD_UNITS.is_dir():
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}",
                               "/etc/systemd/system/provision-user-scripts.service",
                               "/etc/systemd/system/provision-boothooks.service"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def run_unit(name: str) -> subprocess.CompletedProcess[str]:
        text = (system / name).read_text()
        [command] = [line.removeprefix("ExecStart=") for line in text.splitlines() if line.startswith("ExecStart=")]
        env = {"PATH": "/usr/bin", "LC_COLLATE": "C"}
        for line in text.splitlines():
            if line.startswith("Environment="):
                # Environment= takes quoted assignments, unescaped like Exec lines except $$.
                assignment = _unquote_exec(line.removeprefix("Environment=").replace("$", "$$"))[0]
                key, _, value = assignment.partition("=")
                env[key] = value
        return subprocess.run([CHROOT, str(root), *_unquote_exec(command)], capture_output=True, text=True,
                              env=env, timeout=60)

    hook = run_unit("provision-boothooks.service")
    scripts_run = run_unit("provision-user-scripts.service")
    assert (root / "tmp/log").read_text() == "boot i-42\nfirst\nsecond\n"
    assert scripts_run.returncode == 1 and hook.returncode == 0
    assert "failed with exit status 7" in scripts_run.stderr
    assert "failed user-data scripts:" in scripts_run.stderr
