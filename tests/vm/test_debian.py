"""A real Debian system (systemd, udev, sshd) provisioned on first boot, with
kernel arguments, then booted again.

The image is tests/vm/debian_image.py's (mmdebstrap, cached); the kernel is
this machine's Debian kernel, the initramfs built with provision's hooks, and
the test harness boots what the image's BLS entry says (tests/vm/debian.py
explains why that is the boot loader's whole job here). Three boots of one
disk, in order:

1. first boot: provision writes the kernel arguments into the entry and
   reboots before touching any disk (QEMU runs with -no-reboot, so it exits);
2. the boot with the new command line: provision finds nothing left to change
   in the entry, provisions, and the system comes up under systemd: the user
   logs in over SSH with the provisioned key, the enabled units ran, the
   filesystem is mounted, the first-boot stamp is gone;
3. the flag forced on again (a stamp that was not removed): nothing is
   provisioned, nothing rebooted, the system is the same.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.vm import debian, debian_image, guest
from tests.vm.conftest import VmEnv

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

BOOT_TIMEOUT = 420  # seconds, per boot (TCG; a boot takes about 40)
ADDED = ("mitigations=off", "provision.test=added")
REMOVED = ("panic=-1",)  # in the image's entry; the test boots do not need it
# Every boot's console, overwritten by the next run (.gitignore'd).
CONSOLES = Path(os.environ.get("PROVISION_VM_LOGS", guest.CHECKOUT / ".vm-logs"))
READY = debian_image.READY_MARKER + r", uptime ([0-9.]+) s"


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
    consoles: dict[str, str] = field(default_factory=dict)

    def boot_vm(self, name: str, *, force_firstboot: bool = False) -> tuple[guest.Vm, Path]:
        entry = debian.boot_entry(self.disk, self.workdir / f"{name}-loader",
                                  force_firstboot=force_firstboot)
        vm = guest.Vm(entry.kernel, entry.initrd, [self.disk, self.data], entry.options,
                      fw_cfg=self.fw_cfg, ssh_port=debian.free_port(), memory_mib=1024)
        return vm, self.workdir / f"{name}.serial.log"

    def keep(self, name: str, console: str) -> None:
        self.consoles[name] = console
        # Kept where CI can collect them (pytest's temporary directories rotate).
        CONSOLES.mkdir(exist_ok=True)
        (CONSOLES / f"debian-{name}.log").write_text(console)


@pytest.fixture(scope="module")
def session(vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory) -> Session:
    if shutil.which("mmdebstrap") is None and not debian_image.cached_image().exists():
        pytest.skip("mmdebstrap is not installed (scripts/system-packages.txt)")
    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (openssh-client)")
    work = tmp_path_factory.mktemp("debian")
    image = debian_image.ensure_image(work / "mmdebstrap.log")
    kver = guest.kernel_version()
    assert kver is not None
    disk = debian.make_disk(image, work / "root.img", kver, vm_env.kernel, vm_env.initrd)
    key = debian.ssh_key(work)
    fw_cfg = work / "config.json"
    fw_cfg.write_text(json.dumps(config(key.with_suffix(".pub").read_text().strip())))
    return Session(work, disk, guest.blank_disk(work / "data.img", 64), fw_cfg, key)


def _fail(what: str, console: str) -> str:
    return f"{what}; every boot's console is in {CONSOLES}:\n{console[-5000:]}"


def ssh_checks(s: Session, name: str, *, timeout: float = BOOT_TIMEOUT) -> dict[str, object]:
    """Boot, wait for the console's ready line and an SSH login as alice, ask the
    guest what the tests check, power it off. Returns what was seen."""
    vm, serial = s.boot_vm(name)
    return _run_and_ask(s, name, vm, serial, timeout)


def _run_and_ask(s: Session, name: str, vm: guest.Vm, serial: Path, timeout: float) -> dict[str, object]:
    assert vm.ssh_port is not None
    ssh = debian.Ssh(vm.ssh_port, s.ssh_key)
    seen: dict[str, object] = {}
    with vm.running(serial, timeout=timeout) as run:
        try:
            ready = run.wait_for(READY)
            assert ready, _fail(f"{name}: the system did not come up", run.console)
            seen["ready_uptime"] = float(ready.group(1))
            assert ssh.wait(run, "alice"), _fail(f"{name}: alice cannot log in over SSH", run.console)
            uptime = ssh.run("alice", "cut -d' ' -f1 /proc/uptime")
            seen["login_uptime"] = float(uptime.stdout.strip())
            for key, command in {
                "whoami": "id -un",
                "cmdline": "cat /proc/cmdline",
                "hello": "systemctl is-active hello.service; cat /var/lib/app/hello",
                "mount": "findmnt -n -o SOURCE,FSTYPE /var/lib/app",
                "stamp": "test -e /boot/provision.firstboot && echo present || echo gone",
                "system": "systemctl is-system-running --wait",
                "record": "cat /etc/.provision/result.json",
            }.items():
                # systemctl as a user would ask D-Bus, which a minimal image lacks; root
                # talks to systemd directly. The record is readable by root only.
                as_root = key in ("hello", "system", "record")
                done = ssh.run("root" if as_root else "alice", command)
                seen[key] = done.stdout.strip()
            ssh.run("root", "systemctl poweroff")
            seen["exit"] = run.wait_exit()
        finally:
            s.keep(name, run.console)
            seen["console"] = run.console
            seen["wall_seconds"] = round(run.result().seconds, 1)
    return seen


@pytest.fixture(scope="module")
def boots(session: Session) -> dict[str, dict[str, object]]:
    """The three boots, in order (each test below looks at one)."""
    out: dict[str, dict[str, object]] = {}
    # 1. kernel arguments written, then a reboot: QEMU (-no-reboot) exits.
    vm, serial = session.boot_vm("1-kargs")
    with vm.running(serial, timeout=BOOT_TIMEOUT) as run:
        status = run.wait_exit()
        first = run.result()
    session.keep("1-kargs", first.console)
    out["kargs"] = {"status": status, "console": first.console, "wall_seconds": round(first.seconds, 1)}
    guest.record_timings("debian: first boot, kernel arguments then reboot", first)
    # 2. the new command line: provisioning, then the system.
    out["provision"] = ssh_checks(session, "2-provision")
    # 3. provisioned before: the flag is forced on, nothing may happen.
    vm, serial = session.boot_vm("3-again", force_firstboot=True)
    out["again"] = _run_and_ask(session, "3-again", vm, serial, BOOT_TIMEOUT)
    for name in ("provision", "again"):
        seen = out[name]
        boot = guest.Boot(0, str(seen["console"]), float(str(seen["wall_seconds"])))
        guest.record_timings(f"debian: {'provisioning boot' if name == 'provision' else 'provisioned before'}",
                             boot, ready_uptime=seen.get("ready_uptime"),
                             ssh_login_uptime=seen.get("login_uptime"))
    return out


def test_first_boot_writes_the_kernel_arguments_and_reboots_before_the_disks(
    boots: dict[str, dict[str, object]], session: Session, tmp_path: Path
) -> None:
    first = boots["kargs"]
    console = str(first["console"])
    assert first["status"] == 0, _fail("QEMU did not exit by itself (reboot)", console)
    assert "rebooting into the new kernel command line" in console, _fail("no reboot", console)
    assert "reboot: Restarting system" in console
    assert "provision: timing: stage=disks" in console and "provisioned /root" not in console
    assert debian_image.READY_MARKER not in console


def test_the_second_boot_has_the_new_command_line_and_is_provisioned(
    boots: dict[str, dict[str, object]]
) -> None:
    seen = boots["provision"]
    console = str(seen["console"])
    cmdline = str(seen["cmdline"]).split()
    assert all(arg in cmdline for arg in ADDED), seen["cmdline"]
    assert not any(arg in cmdline for arg in REMOVED), seen["cmdline"]
    assert "provision.firstboot" in cmdline  # the stamp was still there at boot
    assert "rebooting" not in console and "provisioned /root" in console
    assert seen["whoami"] == "alice"  # with the provisioned key
    # The units provision enabled ran under systemd, on the filesystem it made.
    assert seen["hello"] == "active\nhello from vm-debian"
    assert seen["mount"] == "/dev/vdb ext4"
    assert seen["system"] == "running", _fail("units failed", console)
    # provision-firstboot-complete.service removed the boot loader's stamp.
    assert seen["stamp"] == "gone"
    record = json.loads(str(seen["record"]))
    assert record["status"] == "succeeded"
    assert {s["name"]: s["status"] for s in record["stages"]}["kargs"] == "applied"
    assert seen["exit"] == 0  # powered off cleanly


def test_a_third_boot_with_the_flag_provisions_nothing(boots: dict[str, dict[str, object]]) -> None:
    before, seen = boots["provision"], boots["again"]
    console = str(seen["console"])
    assert "not provisioning again" in console
    assert "rebooting" not in console and "provisioned /root" not in console
    assert seen["record"] == before["record"]
    assert all(arg in str(seen["cmdline"]).split() for arg in ADDED)
    assert seen["hello"] == "active\nhello from vm-debian" and seen["mount"] == "/dev/vdb ext4"
    assert seen["whoami"] == "alice" and seen["system"] == "running"
