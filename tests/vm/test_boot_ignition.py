"""An image built for Ignition boots unchanged: Ignition's first-boot flag and platform
id on the kernel command line, the config under Ignition's fw_cfg key, an Ignition
config — provisioned by provision's initramfs (QEMU, TCG)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vm import guest
from tests.vm.conftest import VmEnv
from tests.vm.guest import record_timings

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

BOOT_TIMEOUT = 480
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm7Wq8b0e0Yq6dS1bqkF0t8YxOq6b1vJ3QZ9l5wS0Tx core@test"


def test_ignition_kernel_arguments_and_fw_cfg_key(vm_env: VmEnv, tmp_path: Path) -> None:
    root = guest.build_root_image(tmp_path / "root.img")
    config = tmp_path / "config.ign"
    config.write_text(json.dumps({
        "ignition": {"version": "3.4.0"},
        "storage": {"files": [{"path": "/etc/hostname", "mode": 420, "overwrite": True,
                               "contents": {"source": "data:,ignition-node%0A"}}]},
        "passwd": {"users": [{"name": "core", "uid": 1700, "sshAuthorizedKeys": [KEY]}]},
    }))
    vm = vm_env.vm([root], "root=/dev/vda ro ignition.firstboot ignition.platform.id=qemu panic=-1",
                   fw_cfg=config, fw_cfg_name="opt/com.coreos/config")
    boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("Ignition conventions first boot", boot)
    assert boot.status == 0 and guest.INIT_MARKER in boot.console, boot.console[-4000:]
    assert "config from qemu fw_cfg opt/com.coreos/config" in boot.console
    with guest.mounted(root, tmp_path / "mnt") as mounted:
        assert (mounted / "etc/hostname").read_text() == "ignition-node\n"
        assert "core:x:1700:" in (mounted / "etc/passwd").read_text()
        record = json.loads((mounted / "etc/.provision/result.json").read_text())
        assert record["status"] == "succeeded" and record["platform"] == "qemu"
