"""A real Debian system (systemd, udev, sshd) provisioned on first boot, with
kernel arguments, through a real boot loader; then booted again.

The image is tests/vm/debian_image.py's (mmdebstrap, cached); the disk and
its boot loader (systemd-boot on an ESP, OVMF) are described in
tests/vm/debian.py. Two QEMU runs of one disk:

1. The first boot. provision writes the kernel arguments into the boot
   loader's entry and reboots before touching any disk; systemd-boot boots the
   new command line (same QEMU); provision finds nothing left to change in the
   entry, provisions, and the system comes up under systemd: the user logs in
   over SSH with the provisioned key, the enabled units ran, the filesystem is
   mounted; the first-boot flag is taken out of the entry.
2. The flag put back into the entry (as if its removal had failed): nothing is
   provisioned, nothing rebooted, the system is the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vm import debian, debian_image, guest
from tests.vm.conftest import VmEnv

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

# Per QEMU run (TCG). The first run boots twice: about 80 s on a quiet machine.
BOOT_TIMEOUT = 600
ADDED = ("mitigations=off", "provision.test=added")
REMOVED = ("panic=-1",)  # in the image's entry: after the reboot a failure waits in the shell
READY = debian_image.READY_MARKER + r", uptime ([0-9.]+) s"
FAILED = r"provision: FAILED in stage"
KERNEL_STARTS = r"Linux version \S+"
# Every boot's console, overwritten by the next run (.gitignore'd), where CI can collect it.
CONSOLES = Path(os.environ.get("PROVISION_VM_LOGS", guest.CHECKOUT / ".vm-logs"))


def config(public_key: str) -> dict[str, object]:
    mount_unit = ("[Unit]\nDescription=Application data\n\n[Mount]\nWhat=/dev/disk/by-label/APPDATA\n"
                  "Where=/var/lib/app\nType=ext4\n\n[Install]\nWantedBy=multi-user.target\n")
    hello = ("[Unit]\nDescription=Provisioned service\nRequiresMountsFor=/var/lib/app\n\n"
             "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
             "ExecStart=/bin/sh -c 'echo \"hello from $(hostname)\" >/var/lib/app/hello'\n\n"
             "[Install]\nWantedBy=multi-user.target\n")
    return {
        "provision": {"version": "1.0.0"},
        "kernelArguments": {"shouldExist": list(ADDED), "shouldNotExist": list(REMOVED)},
        "storage": {
            "filesystems": [{"device": "/dev/vdb", "format": "ext4", "label": "APPDATA",
                             "wipeFilesystem": True}],
            "files": [{"path": "/etc/hostname", "mode": 420, "overwrite": True,
                       "contents": {"source": "data:,vm-debian%0A"}}],
        },
        "systemd": {"units": [
            {"name": "var-lib-app.mount", "enabled": True, "contents": mount_unit},
            {"name": "hello.service", "enabled": True, "contents": hello},
        ]},
        "passwd": {"users": [
            {"name": "alice", "uid": 1501, "sshAuthorizedKeys": [public_key]},
            # root's key lets the test power the guest off cleanly.
            {"name": "root", "sshAuthorizedKeys": [public_key]},
        ]},
    }


@dataclass
class Session:
    workdir: Path
    disk: Path
    data: Path
    fw_cfg: Path
    ssh_key: Path


@pytest.fixture(scope="module")
def session(vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory) -> Session:
    missing = debian.missing_boot_loader()
    if missing:
        pytest.skip(missing)
    if shutil.which("mmdebstrap") is None and not debian_image.cached_image().exists():
        pytest.skip("mmdebstrap is not installed (scripts/system-packages.txt)")
    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (openssh-client)")
    work = tmp_path_factory.mktemp("debian")
    image = debian_image.ensure_image(work / "mmdebstrap.log")
    kver = guest.kernel_version()
    assert kver is not None
    disk = debian.make_efi_disk(image, work / "disk.img", kver, vm_env.kernel, vm_env.initrd)
    key = debian.ssh_key(work)
    fw_cfg = work / "config.json"
    fw_cfg.write_text(json.dumps(config(key.with_suffix(".pub").read_text().strip())))
    return Session(work, disk, guest.blank_disk(work / "data.img", 64), fw_cfg, key)


def _fail(what: str, console: str) -> str:
    return f"{what}; every boot's console is in {CONSOLES}:\n{console[-5000:]}"


def boot_and_ask(s: Session, name: str) -> dict[str, object]:
    """Boot (reboots stay inside QEMU), wait for the console's ready line and an
    SSH login as alice, ask the guest what the tests check, power it off."""
    port = debian.free_port()
    vm = guest.Vm(Path(), Path(), [s.disk, s.data], "", fw_cfg=s.fw_cfg, ssh_port=port,
                  memory_mib=1024, firmware=debian.OVMF, allow_reboot=True)
    ssh = debian.Ssh(port, s.ssh_key)
    seen: dict[str, object] = {}
    with vm.running(s.workdir / f"{name}.serial.log", timeout=BOOT_TIMEOUT) as run:
        try:
            up = run.wait_for(f"{READY}|{FAILED}")
            assert up and up.group(0).startswith(debian_image.READY_MARKER), \
                _fail(f"{name}: the system did not come up", run.console)
            seen["ready_uptime"] = float(up.group(1))
            assert ssh.wait(run, "alice"), _fail(f"{name}: alice cannot log in over SSH", run.console)
            seen["login_uptime"] = float(ssh.run("alice", "cut -d' ' -f1 /proc/uptime").stdout)
            seen["ssh_seconds"] = round(run.result().seconds, 1)
            for key, command in {
                "whoami": "id -un",
                "cmdline": "cat /proc/cmdline",
                "mount": "findmnt -n -o SOURCE,FSTYPE /var/lib/app",
                # systemctl as a user would ask D-Bus, which a minimal image lacks;
                # root talks to systemd directly. The record is readable by root only.
                "hello": "systemctl is-active hello.service; cat /var/lib/app/hello",
                "system": "systemctl is-system-running --wait",
                "failed": "systemctl --failed --no-legend --plain",
                "record": "cat /etc/.provision/result.json",
            }.items():
                as_root = key in ("hello", "system", "failed", "record")
                seen[key] = ssh.run("root" if as_root else "alice", command).stdout.strip()
            ssh.run("root", "systemctl poweroff")
            seen["exit"] = run.wait_exit()
        finally:
            seen["console"] = console = run.console
            seen["wall_seconds"] = round(run.result().seconds, 1)
            CONSOLES.mkdir(exist_ok=True)
            (CONSOLES / f"debian-{name}.log").write_text(console)
    seen["entry"] = debian.read_esp(s.disk, debian.ENTRY_NAME)
    boot = guest.Boot(0, console, float(str(seen["wall_seconds"])))
    guest.record_timings(f"debian, systemd-boot: {name}", boot, ready_uptime=seen["ready_uptime"],
                         ssh_login_uptime=seen["login_uptime"], ssh_wall_seconds=seen["ssh_seconds"])
    return seen


@pytest.fixture(scope="module")
def boots(session: Session) -> dict[str, dict[str, object]]:
    """Both runs, in order (each test below looks at one)."""
    first = boot_and_ask(session, "first-boot")
    entry = str(first["entry"])
    # The flag's removal "failed": put it back, provision must still do nothing.
    session.workdir.joinpath("entry").mkdir(exist_ok=True)
    debian.write_esp(session.disk, debian.ENTRY_NAME,
                     re.sub(r"^(options .*)$", r"\1 provision.firstboot", entry, flags=re.M),
                     session.workdir / "entry")
    return {"first": first, "again": boot_and_ask(session, "again")}


def _options(entry: str) -> list[str]:
    return next(line.split()[1:] for line in entry.splitlines() if line.startswith("options"))


def test_kernel_arguments_are_written_then_booted_into_before_any_disk(
    boots: dict[str, dict[str, object]]
) -> None:
    seen = boots["first"]
    console = str(seen["console"])
    kernels = [m.start() for m in re.finditer(KERNEL_STARTS, console)]
    assert len(kernels) == 2, _fail("expected exactly one reboot", console)
    before, after = console[:kernels[1]], console[kernels[1]:]
    assert "rebooting into the new kernel command line" in before
    assert "provision: disks:" not in before and "provisioned /root" not in before
    assert "rebooting" not in after and "provisioned /root" in after
    cmdline = str(seen["cmdline"]).split()
    assert all(arg in cmdline for arg in ADDED), cmdline
    assert not any(arg in cmdline for arg in REMOVED), cmdline
    assert "provision.firstboot" in cmdline
    # What the next boots get: the arguments stay; the image's unit took the flag out.
    options = _options(str(seen["entry"]))
    assert options == ["root=LABEL=root", "ro", "console=ttyS0", *ADDED], options


def test_the_provisioned_system_comes_up_under_systemd(boots: dict[str, dict[str, object]]) -> None:
    seen = boots["first"]
    console = str(seen["console"])
    assert seen["whoami"] == "alice"  # over SSH, with the provisioned key
    # The units provision enabled ran under systemd, on the filesystem it made.
    assert seen["hello"] == "active\nhello from vm-debian"
    assert seen["mount"] == "/dev/vdb ext4"
    assert seen["system"] == "running", _fail(f"failed units: {seen['failed']}", console)
    record = json.loads(str(seen["record"]))
    assert record["status"] == "succeeded"
    assert {s["name"]: s["status"] for s in record["stages"]}["kargs"] == "applied"
    assert seen["exit"] == 0  # powered off cleanly


def test_a_second_boot_with_the_flag_provisions_nothing(boots: dict[str, dict[str, object]]) -> None:
    before, seen = boots["first"], boots["again"]
    console = str(seen["console"])
    assert "provision.firstboot" in str(seen["cmdline"]).split()
    assert "not provisioning again" in console
    assert len(re.findall(KERNEL_STARTS, console)) == 1, _fail("rebooted", console)
    assert "provisioned /root" not in console
    assert seen["record"] == before["record"]
    assert all(arg in str(seen["cmdline"]).split() for arg in ADDED)
    assert seen["hello"] == "active\nhello from vm-debian" and seen["mount"] == "/dev/vdb ext4"
    assert seen["whoami"] == "alice"
    assert seen["system"] == "running", _fail(f"failed units: {seen['failed']}", console)


# --- dracut: the same first boot with systemd in the initrd ---------------------

def test_dracut_reboots_into_the_kernel_arguments_and_provisions(
    vm_env: VmEnv, session: Session, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """provision-disks.sh forces the reboot: no later stage's unit may start on the way down."""
    if shutil.which("dracut") is None:
        pytest.skip("dracut is not installed (Debian: dracut-core)")
    kver = guest.kernel_version()
    assert kver is not None
    work = tmp_path_factory.mktemp("debian-dracut")
    initrd = guest.build_dracut_initramfs(work / "dracut.img", work, kver)
    disk = debian.make_efi_disk(debian_image.ensure_image(), work / "disk.img", kver, vm_env.kernel, initrd)
    dracut = Session(work, disk, guest.blank_disk(work / "data.img", 64), session.fw_cfg, session.ssh_key)
    seen = boot_and_ask(dracut, "dracut-first-boot")
    console = str(seen["console"])
    kernels = [m.start() for m in re.finditer(KERNEL_STARTS, console)]
    assert len(kernels) == 2, _fail("expected exactly one reboot", console)
    before = console[:kernels[1]]
    assert "rebooting into the new kernel command line" in before
    for unit in ("provision-mount", "provision-files"):
        assert f"Starting {unit}" not in re.sub(r"\x1b\[[0-9;]*m", "", before), _fail(f"{unit} started", console)
    cmdline = str(seen["cmdline"]).split()
    assert all(arg in cmdline for arg in ADDED) and not any(arg in cmdline for arg in REMOVED)
    assert seen["whoami"] == "alice" and seen["hello"] == "active\nhello from vm-debian"
    assert seen["system"] == "running", _fail(f"failed units: {seen['failed']}", console)
