"""Kernel arguments through GRUB on a real Debian: the path Debian users boot by default.

The disk is tests/vm/debian_grub.py's: the Debian image with grub-efi-amd64,
its grub.cfg written by the image's own update-grub, GRUB's EFI image on the
ESP, booted by OVMF. The image keeps its console settings in a drop-in,
/etc/default/grub.d/50-image.cfg (as Debian's and Ubuntu's cloud images do),
and the first-boot flag comes from GRUB's stamp test. One QEMU run, three
kernels:

1. provision edits /etc/default/grub (+ the drop-in) and grub.cfg's ``linux``
   lines, and reboots before touching any disk;
2. GRUB boots the new command line; provision finds nothing left to change,
   provisions (a user with an SSH key), the system comes up under systemd and
   the image's unit removes the stamp. Over SSH: /proc/cmdline, then the
   image's ``update-grub`` regenerates grub.cfg from the edited defaults (as
   a kernel update would) and the test reboots;
3. the regenerated grub.cfg boots: the arguments are still there, the flag is
   not, and nothing is provisioned again.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vm import debian, debian_grub, debian_image, guest
from tests.vm.conftest import VmEnv

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

# The whole QEMU run (TCG): three Debian boots, about 150 s on a quiet machine.
BOOT_TIMEOUT = 900
ADDED = ("mitigations=off", "provision.test=grub")
# From the image's drop-in: a later update-grub must not bring it back.
REMOVED = ("panic=-1",)
READY = debian_image.READY_MARKER + r", uptime ([0-9.]+) s"
FAILED = r"provision: FAILED in stage"
KERNEL_STARTS = r"Linux version \S+"
# Every boot's console, overwritten by the next run (.gitignore'd), where CI can collect it.
CONSOLES = Path(os.environ.get("PROVISION_VM_LOGS", guest.CHECKOUT / ".vm-logs"))
LINUX_LINES = r"grep -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg"


def config(public_key: str) -> dict[str, object]:
    return {
        "provision": {"version": "1.0.0"},
        "kernelArguments": {"shouldExist": list(ADDED), "shouldNotExist": list(REMOVED)},
        "passwd": {"users": [
            {"name": "alice", "uid": 1501, "sshAuthorizedKeys": [public_key]},
            {"name": "root", "sshAuthorizedKeys": [public_key]},
        ]},
    }


@dataclass
class Run:
    consoles: list[str]  # per kernel started
    seen: dict[str, str]  # what the guest said over SSH, by question
    after: dict[str, str]  # the same questions in the third boot
    files: dict[str, str]  # the root's files after QEMU ended


def _fail(what: str, console: str) -> str:
    return f"{what}; the console is in {CONSOLES}:\n{console[-6000:]}"


def _ask(ssh: debian.Ssh, questions: dict[str, str]) -> dict[str, str]:
    answers = {key: ssh.run("root", command, timeout=180).stdout.strip() for key, command in questions.items()}
    answers["whoami"] = ssh.run("alice", "id -un").stdout.strip()  # the provisioned key logs in
    return answers


QUESTIONS = {
    "cmdline": "cat /proc/cmdline",
    "record": "cat /etc/.provision/result.json",
    "stamp": "ls /boot/provision.firstboot 2>&1 || true",
    "system": "systemctl is-system-running --wait",
    "failed": "systemctl --failed --no-legend --plain",
}


@pytest.fixture(scope="module")
def grub_run(vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory) -> Run:
    if not debian.OVMF.exists():
        pytest.skip(f"{debian.OVMF} is missing (apt-get install ovmf)")
    if shutil.which("mmdebstrap") is None and not debian_image.cached_image(debian_image.GRUB).exists():
        pytest.skip("mmdebstrap is not installed (scripts/system-packages.txt)")
    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (openssh-client)")
    work = tmp_path_factory.mktemp("debian-grub")
    image = debian_image.ensure_image(work / "mmdebstrap.log", debian_image.GRUB)
    kver = guest.kernel_version()
    assert kver is not None
    disk = debian_grub.make_grub_disk(image, work / "disk.img", kver, vm_env.kernel, vm_env.initrd)
    key = debian.ssh_key(work)
    fw_cfg = work / "config.json"
    fw_cfg.write_text(json.dumps(config(key.with_suffix(".pub").read_text().strip())))
    port = debian.free_port()
    vm = guest.Vm(Path(), Path(), [disk], "", fw_cfg=fw_cfg, ssh_port=port, memory_mib=1024,
                  firmware=debian.OVMF, allow_reboot=True)
    ssh = debian.Ssh(port, key)
    with vm.running(work / "grub.serial.log", timeout=BOOT_TIMEOUT) as run:
        try:
            up = run.wait_for(f"{READY}|{FAILED}")
            assert up and up.group(0).startswith(debian_image.READY_MARKER), \
                _fail("the provisioned system did not come up", run.console)
            assert ssh.wait(run, "root"), _fail("root cannot log in over SSH", run.console)
            seen = _ask(ssh, {**QUESTIONS, "defaults": "cat /etc/default/grub /etc/default/grub.d/*.cfg",
                              "edited": LINUX_LINES})
            # What a kernel update does: grub.cfg generated again from the defaults.
            regenerated = ssh.run("root", "update-grub", timeout=300)
            seen["update-grub"] = f"{regenerated.returncode}\n{regenerated.stderr}"
            seen["regenerated"] = ssh.run("root", LINUX_LINES).stdout.strip()
            mark = len(run.console)
            ssh.run("root", "systemctl reboot")
            again = run.wait_for(f"{READY}|{FAILED}", start=mark)
            assert again and again.group(0).startswith(debian_image.READY_MARKER), \
                _fail("the third boot did not come up", run.console)
            assert ssh.wait(run, "root"), _fail("root cannot log in after the reboot", run.console)
            after = _ask(ssh, QUESTIONS)
            ssh.run("root", "systemctl poweroff")
            run.wait_exit()
        finally:
            console = run.console
            CONSOLES.mkdir(exist_ok=True)
            (CONSOLES / "debian-grub.log").write_text(console)
            guest.record_timings("debian, GRUB: kargs, provision, update-grub, reboot",
                                 guest.Boot(0, console, run.result().seconds))
    starts = [m.start() for m in re.finditer(KERNEL_STARTS, console)] + [len(console)]
    consoles = [console[a:b] for a, b in itertools.pairwise(starts)]
    files = {"cfg": debian_grub.read_root(disk, debian_grub.GRUB_CFG, work)}
    return Run(consoles, seen, after, files)


def _args(line: str) -> list[str]:
    return line.split()[2:]  # after "linux" and the kernel's path


def test_grub_kernel_arguments_are_written_then_booted_into_before_any_disk(grub_run: Run) -> None:
    consoles = grub_run.consoles
    everything = "".join(consoles)
    assert len(consoles) == 3, _fail("expected three kernels: kargs reboot, provisioned, update-grub reboot",
                                     everything)
    first, second, _ = consoles
    assert "rebooting into the new kernel command line" in first, _fail("no kargs reboot", everything)
    assert "provisioned /root" not in first
    assert "rebooting" not in second and "provisioned /root" in second, _fail("second boot", everything)
    cmdline = grub_run.seen["cmdline"].split()
    assert all(arg in cmdline for arg in ADDED), cmdline
    assert not any(arg in cmdline for arg in REMOVED), cmdline
    assert "provision.firstboot" in cmdline  # GRUB's stamp test, still there in that boot
    record = json.loads(grub_run.seen["record"])
    assert record["status"] == "succeeded"
    assert {s["name"]: s["status"] for s in record["stages"]}["kargs"] == "applied"
    assert grub_run.seen["whoami"] == "alice"
    assert grub_run.seen["system"] == "running", _fail(f"failed units: {grub_run.seen['failed']}", everything)


def test_every_linux_line_of_grub_cfg_was_edited(grub_run: Run) -> None:
    lines = grub_run.seen["edited"].splitlines()
    assert len(lines) == 3, lines  # the default entry, the advanced one, recovery mode
    for line in lines:
        args = _args(line)
        assert all(arg in args for arg in ADDED) and not any(arg in args for arg in REMOVED), line
        assert "${provision_firstboot}" in args  # GRUB's variable kept, not expanded
    assert grub_run.seen["stamp"].endswith("No such file or directory")  # the image's unit took it


def test_update_grub_keeps_the_arguments(grub_run: Run) -> None:
    """The defaults were edited too: grub.cfg generated again says the same."""
    seen = grub_run.seen
    assert seen["update-grub"].startswith("0\n"), seen["update-grub"]
    regenerated = [_args(line) for line in seen["regenerated"].splitlines()]
    edited = [_args(line) for line in seen["edited"].splitlines()]
    assert [sorted(a) for a in regenerated] == [sorted(a) for a in edited], \
        f"update-grub disagrees with provision's edit:\n{seen['regenerated']}\n---\n{seen['edited']}\n" \
        f"--- the defaults:\n{seen['defaults']}"


def test_the_regenerated_config_boots_and_provisioning_is_not_repeated(grub_run: Run) -> None:
    third = grub_run.consoles[-1]
    after = grub_run.after
    cmdline = after["cmdline"].split()
    assert all(arg in cmdline for arg in ADDED) and not any(arg in cmdline for arg in REMOVED), cmdline
    assert "provision.firstboot" not in cmdline  # no stamp: GRUB left the flag out
    assert "provisioned /root" not in third and "rebooting into" not in third
    assert after["record"] == grub_run.seen["record"]
    assert after["whoami"] == "alice"
    assert after["system"] == "running", _fail(f"failed units: {after['failed']}", third)
    # On the disk, after the power-off: the regenerated grub.cfg.
    assert "mitigations=off" in grub_run.files["cfg"] and "panic=-1" not in grub_run.files["cfg"]


# --- an image-provided helper instead of provision's own editing -------------------

HELPER = guest.CHECKOUT / "examples/kargs-helper-update-grub"
HELPER_ADDED = ("mitigations=off", "provision.test=helper")
HELPER_DROPIN = "/etc/default/grub.d/99-provision-kargs.cfg"


def test_an_image_helper_runs_update_grub_and_the_reboot_boots_what_it_wrote(
    vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The image ships examples/kargs-helper-update-grub as its kargs-helper (in
    the initramfs, where the hooks put it): from the initramfs it records the
    arguments in a drop-in and runs the image's update-grub in a chroot of the
    target; provision reboots on its "changed", and GRUB boots the grub.cfg
    update-grub wrote. Two kernels; the second one's command line is on the
    console, so QEMU stops once provision is done there (the systemd part of
    that boot is the GRUB test's)."""
    if not debian.OVMF.exists():
        pytest.skip(f"{debian.OVMF} is missing (apt-get install ovmf)")
    if shutil.which("mmdebstrap") is None and not debian_image.cached_image(debian_image.GRUB).exists():
        pytest.skip("mmdebstrap is not installed (scripts/system-packages.txt)")
    work = tmp_path_factory.mktemp("debian-grub-helper")
    kver = guest.kernel_version()
    assert kver is not None
    initrd = guest.initramfs_with_files(vm_env.initrd, {"usr/lib/provision/kargs-helper": HELPER},
                                        work / "initrd.img")
    image = debian_image.ensure_image(work / "mmdebstrap.log", debian_image.GRUB)
    disk = debian_grub.make_grub_disk(image, work / "disk.img", kver, vm_env.kernel, initrd)
    fw_cfg = work / "config.json"
    fw_cfg.write_text(json.dumps({
        "provision": {"version": "1.0.0"},
        "kernelArguments": {"shouldExist": list(HELPER_ADDED), "shouldNotExist": list(REMOVED)},
        "storage": {"files": [{"path": "/etc/provisioned-by", "contents": {"source": "data:,helper"}}]},
    }))
    vm = guest.Vm(Path(), Path(), [disk], "", fw_cfg=fw_cfg, memory_mib=1024, firmware=debian.OVMF,
                  allow_reboot=True)
    boot = vm.boot(work / "helper.serial.log", timeout=BOOT_TIMEOUT,
                   stop_on=[r"provision: done \(uptime", FAILED])
    console = boot.console
    CONSOLES.mkdir(exist_ok=True)
    (CONSOLES / "debian-grub-helper.log").write_text(console)
    guest.record_timings("debian, GRUB: kargs-helper with update-grub, to provisioned", boot)
    starts = [m.start() for m in re.finditer(KERNEL_STARTS, console)]
    assert boot.stopped_at is not None and boot.stopped_at != FAILED, _fail("provisioning did not finish", console)
    assert len(starts) == 2, _fail("expected exactly one reboot", console)
    first, second = console[:starts[1]], console[starts[1]:]
    assert "rebooting into the new kernel command line" in first and "provisioned /root" not in first
    assert "changed (+mitigations=off +provision.test=helper -panic=-1) by the image's kargs-helper" in first
    assert "rebooting" not in second and "provisioned /root" in second
    line = re.search(r"Command line: (.*)", second)
    assert line, _fail("no command line on the console", console)
    cmdline = line.group(1).split()
    assert all(arg in cmdline for arg in HELPER_ADDED), cmdline
    assert not any(arg in cmdline for arg in REMOVED), cmdline
    # What the next update-grub reads: the helper's drop-in; provision's own
    # editing did not run (the image's files are as they were).
    assert 'provision_wanted="mitigations=off provision.test=helper"' in \
        debian_grub.read_root(disk, HELPER_DROPIN.lstrip("/"), work)
    defaults = debian_grub.read_root(disk, "etc/default/grub", work)
    assert 'GRUB_CMDLINE_LINUX="\\${provision_firstboot}"' in defaults
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0 panic=-1"' in \
        debian_grub.read_root(disk, "etc/default/grub.d/50-image.cfg", work)
    linux = [ln for ln in debian_grub.read_root(disk, debian_grub.GRUB_CFG, work).splitlines()
             if ln.strip().startswith("linux")]
    assert len(linux) == 3, linux
    for each in linux:  # written by update-grub, from the initramfs
        args = each.split()[2:]
        assert all(arg in args for arg in HELPER_ADDED) and "panic=-1" not in args, each
    assert debian_grub.read_root(disk, "etc/provisioned-by", work) == "helper"
