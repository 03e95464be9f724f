"""The shell side of the initramfs integration: first-boot detection, the
dracut generator and units, the install command, and shellcheck."""

from __future__ import annotations

import configparser
import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parent.parent / "initramfs-hook"
DRACUT = HOOK / "dracut/30provision"
STAGE_UNITS = ["fetch-offline", "fetch", "disks", "mount", "files", "umount"]


def firstboot(tmp_path: Path, cmdline: str) -> bool:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    done = subprocess.run(
        ["sh", "-c", f". {HOOK / 'lib/provision-lib.sh'}; provision_firstboot"],
        env={"PATH": os.environ["PATH"], "PROVISION_PROC_CMDLINE": str(tmp_path / "cmdline")},
    )
    return done.returncode == 0


@pytest.mark.parametrize(("cmdline", "expected"), [
    ("root=/dev/vda ro provision.firstboot quiet", True),
    ("provision.firstboot=1", True),
    ("root=/dev/vda ro", False),
    ("provision.firstboot=0", False),
    ("provision.firstboot provision.firstboot=0", False),  # the last word wins, as in the engine
    ("provision.firstbootx provision.firstboot.url=x", False),
    # Ignition's flag, as Fedora CoreOS and Flatcar boot loaders add it
    ("root=/dev/vda ignition.firstboot ignition.platform.id=metal", True),
    ("ignition.firstboot=1", True),
    ("ignition.firstboot=0", False),
    ("ignition.firstboot=off", False),
    ("ignition.firstboot provision.firstboot=0", False),  # ours decides when both are there
    ("provision.firstboot ignition.firstboot=0", True),
    ("ignition.firstbootx", False),
])
def test_initramfs_tools_scripts_run_only_on_first_boot(tmp_path: Path, cmdline: str, expected: bool) -> None:
    assert firstboot(tmp_path, cmdline) is expected
    # The engine reads the same command line the same way.
    from provision.platforms.cmdline import parse_cmdline

    assert parse_cmdline(cmdline).firstboot is expected


@pytest.mark.parametrize(("cmdline", "in_initrd", "active"), [
    ("root=LABEL=root provision.firstboot", True, True),
    ("root=LABEL=root", True, False),
    ("root=LABEL=root provision.firstboot", False, False),  # the booted system: never
    ("root=LABEL=root ignition.firstboot", True, True),
    ("root=LABEL=root ignition.firstboot provision.firstboot=0", True, False),
])
def test_dracut_generator_pulls_in_the_stages_only_on_first_boot(
    tmp_path: Path, cmdline: str, in_initrd: bool, active: bool
) -> None:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    release = tmp_path / "initrd-release"
    if in_initrd:
        release.write_text("NAME=initrd\n")
    out = tmp_path / "generated"
    out.mkdir()
    subprocess.run(
        ["sh", str(DRACUT / "provision-generator"), str(out), str(out), str(out)], check=True,
        env={"PATH": os.environ["PATH"], "PROVISION_PROC_CMDLINE": str(tmp_path / "cmdline"),
             "PROVISION_INITRD_RELEASE": str(release)},
    )
    link = out / "initrd.target.requires/provision-complete.target"
    assert link.is_symlink() is active


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DRACUT / name)
    return parser


def test_dracut_units_run_the_stages_in_ignition_order_and_fail_into_emergency() -> None:
    target = _unit("provision-complete.target")
    required = target["Unit"]["Requires"].split()
    assert required[-1] == "provision-umount.service"
    for stage in STAGE_UNITS:
        unit = _unit(f"provision-{stage}.service")
        assert unit["Unit"]["OnFailure"] == "emergency.target"
        assert unit["Unit"]["DefaultDependencies"] == "no"
        command = unit["Service"]["ExecStart"]
        if stage == "disks":  # a wrapper that reboots when the kernel arguments changed
            wrapper = (HOOK / "dracut/30provision" / Path(command).name).read_text()
            assert "run --root /sysroot --phase disks" in wrapper and "systemctl reboot --force" in wrapper
        else:
            assert command.endswith(f"run --root /sysroot --phase {stage}")
        assert f"provision-{stage}.service" in required
    # Each stage is ordered after the one before it.
    for before, after in itertools.pairwise(STAGE_UNITS):
        assert f"provision-{before}.service" in _unit(f"provision-{after}.service")["Unit"]["After"]
    # The network only when the offline pass asked for it; disks before the root is mounted.
    assert _unit("provision-fetch.service")["Unit"]["ConditionPathExists"] == "/run/provision/neednet"
    assert "sysroot.mount" in _unit("provision-disks.service")["Unit"]["Before"]
    assert "sysroot.mount" in _unit("provision-mount.service")["Unit"]["After"]


def test_install_puts_hooks_scripts_module_and_unit_in_place(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "native").mkdir(parents=True)
    (bundle / "provision.pyz").write_bytes(b"#!/usr/bin/python3\n")
    (bundle / "stdlib-modules.txt").write_text("json\n")
    dest = tmp_path / "dest"
    subprocess.run(["sh", str(HOOK / "install.sh"), "--bundle", str(bundle)], check=True,
                   capture_output=True, env={**os.environ, "DESTDIR": str(dest)})
    for path in (
        "usr/share/initramfs-tools/hooks/provision",
        "usr/share/initramfs-tools/hooks/provision-disks",
        "usr/share/initramfs-tools/scripts/init-premount/provision",
        "usr/share/initramfs-tools/scripts/local-bottom/provision",
        "usr/share/initramfs-tools/provision/pack_stdlib.py",
        "usr/share/initramfs-tools/provision/provision-lib.sh",
        "usr/lib/dracut/modules.d/30provision/module-setup.sh",
        "usr/lib/dracut/modules.d/30provision/provision-generator",
        "usr/lib/dracut/modules.d/30provision/provision-files.service",
        "usr/lib/provision/initramfs/provision.pyz",
        "usr/lib/provision/initramfs/stdlib-modules.txt",
        "usr/lib/systemd/system/provision-firstboot-complete.service",
    ):
        assert (dest / path).is_file(), path
    assert os.access(dest / "usr/share/initramfs-tools/hooks/provision", os.X_OK)
    assert os.access(dest / "usr/lib/dracut/modules.d/30provision/provision-generator", os.X_OK)


def test_firstboot_complete_unit_removes_the_stamp_only_after_a_provisioned_boot() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(HOOK / "systemd/provision-firstboot-complete.service")
    assert unit["Service"]["ExecStart"] == "/bin/rm -f /boot/provision.firstboot"
    text = (HOOK / "systemd/provision-firstboot-complete.service").read_text()
    assert "ConditionPathExists=/etc/.provision/result.json" in text
    assert "ConditionKernelCommandLine=|provision.firstboot" in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shell_scripts_pass_shellcheck() -> None:
    posix = [
        HOOK / "install.sh",
        HOOK / "lib/provision-lib.sh",
        *sorted((HOOK / "initramfs-tools/hooks").iterdir()),
        *sorted((HOOK / "initramfs-tools/scripts").glob("*/provision")),
        DRACUT / "provision-generator",
        DRACUT / "provision-network.sh",
        DRACUT / "provision-sysroot.sh",
        DRACUT / "provision-disks.sh",
        HOOK.parent / "examples/kargs-helper-update-grub",
    ]
    done = subprocess.run(["shellcheck", "-s", "sh", *map(str, posix)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    done = subprocess.run(["shellcheck", "-s", "bash", str(DRACUT / "module-setup.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
