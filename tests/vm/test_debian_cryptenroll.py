"""A real Debian system unlocks a systemdTpm2 volume by itself on its next boot.

tests/vm/debian_image.py's image (systemd 252) on tests/vm/debian.py's disk
(systemd-boot, OVMF), with swtpm attached to QEMU as a TIS device and an
initramfs carrying the ``luks cryptenroll`` disk features. The image gets what
a TPM2-unlocking Debian has and the cached minbase image lacks: the TPM2
libraries systemd loads with dlopen (copied from this machine, the same
bookworm packages) and the dm-crypt modules (the image has no /lib/modules).

1. First boot: provision partitions the data disk, formats LUKS2, enrolls the
   TPM2 (PCR 7) with systemd-cryptenroll, removes the random key, writes
   /etc/crypttab and a mount unit; the system comes up.
2. Second boot, same TPM state, no first-boot flag: nothing is provisioned;
   the image's own systemd-cryptsetup-generator turns the crypttab line into
   systemd-cryptsetup@tpmvol.service, which unlocks the volume with the TPM2,
   and the mount unit mounts it. Checked over SSH as root.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.vm import debian, debian_image, guest
from tests.vm.conftest import VmEnv
from tests.vm.test_boot_cryptenroll import swtpm

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

BOOT_TIMEOUT = 600
FEATURES = "ext4 vfat swap luks cryptenroll"
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
TEXT = "unlocked by Debian's systemd with the TPM2\n"
READY = debian_image.READY_MARKER + r", uptime ([0-9.]+) s"
FAILED = r"provision: FAILED in stage"
TSS2 = ("libtss2-esys.so.0", "libtss2-sys.so.1", "libtss2-mu.so.0", "libtss2-rc.so.0", "libtss2-tcti-device.so.0")

if not (shutil.which("swtpm") and shutil.which("systemd-cryptenroll") and shutil.which("ssh")):
    pytestmark.append(pytest.mark.skip(reason="needs swtpm, systemd-cryptenroll and ssh"))


def config(public_key: str) -> dict[str, object]:
    mount_unit = ("[Unit]\nDescription=TPM2 vault\n\n[Mount]\nWhat=/dev/mapper/tpmvol\n"
                  "Where=/var/lib/tpm-vault\nType=ext4\n\n[Install]\nWantedBy=multi-user.target\n")
    return {
        "provision": {"version": "1.1.0"},
        "storage": {
            "disks": [{"device": "/dev/vdb", "wipeTable": True, "partitions": [
                {"number": 1, "label": "tpmvol", "sizeMiB": 40}]}],
            "luks": [{"name": "tpmvol", "device": "/dev/disk/by-partlabel/tpmvol", "options": FAST_KDF,
                      "systemdTpm2": {"pcrs": [7]}}],
            "filesystems": [{"device": "/dev/mapper/tpmvol", "format": "ext4", "label": "TPMFS",
                             "path": "/var/lib/tpm-vault"}],
            "files": [{"path": "/var/lib/tpm-vault/p.txt", "mode": 0o644,
                       "contents": {"source": "data:;base64," + base64.b64encode(TEXT.encode()).decode()}}],
        },
        "systemd": {"units": [{"name": "var-lib-tpm\\x2dvault.mount", "enabled": True, "contents": mount_unit}]},
        "passwd": {"users": [{"name": "root", "sshAuthorizedKeys": [public_key]}]},
    }


def _tpm2_ready_root(disk: Path, kver: str, work: Path) -> None:
    """Give the disk's Debian root the TPM2 libraries and the dm-crypt modules."""
    root_part = next(p for p in guest.partitions(disk) if p.number == 2)
    mnt = work / "root-mnt"
    mnt.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", f"loop,offset={root_part.start},sizelimit={root_part.size}",
                    str(disk), str(mnt)], check=True)
    try:
        libdir = mnt / "usr/lib/x86_64-linux-gnu"
        for name in TSS2:
            for found in Path("/usr/lib/x86_64-linux-gnu").glob(name + "*"):
                shutil.copy2(found, libdir / found.name, follow_symlinks=False)
        subprocess.run(["ldconfig", "-r", str(mnt)], check=True)
        debian.add_modules(mnt, kver, ("kernel/drivers/md", "kernel/crypto"))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def boot(s: dict[str, Path], name: str) -> dict[str, str]:
    port = debian.free_port()
    seen: dict[str, str] = {}
    with swtpm(s["work"] / "tpm") as tpm_args:
        vm = guest.Vm(Path(), Path(), [s["disk"], s["data"]], "", fw_cfg=s["cfg"], ssh_port=port,
                      memory_mib=1024, firmware=debian.OVMF, allow_reboot=True, extra=tpm_args)
        ssh = debian.Ssh(port, s["key"])
        with vm.running(s["work"] / f"{name}.serial.log", timeout=BOOT_TIMEOUT) as run:
            try:
                up = run.wait_for(f"{READY}|{FAILED}")
                assert up and up.group(0).startswith(debian_image.READY_MARKER), run.console[-6000:]
                assert ssh.wait(run, "root"), run.console[-6000:]
                for key, command in {
                    "unit": "systemctl is-active systemd-cryptsetup@tpmvol.service",
                    "mount": "findmnt -n -o SOURCE /var/lib/tpm-vault",
                    "file": "cat /var/lib/tpm-vault/p.txt",
                    "crypttab": "cat /etc/crypttab",
                    "cmdline": "cat /proc/cmdline",
                    "header": ("blkid -s UUID -o value /dev/disk/by-partlabel/tpmvol; "
                               "systemd-cryptenroll /dev/disk/by-partlabel/tpmvol"),
                    "keys": "ls /etc/luks 2>/dev/null; echo end",
                    "journal": "journalctl -b -u systemd-cryptsetup@tpmvol.service --no-pager | tail -5",
                }.items():
                    seen[key] = ssh.run("root", command).stdout.strip()
                ssh.run("root", "systemctl poweroff")
                run.wait_exit()
            finally:
                seen["console"] = run.console
    return seen


@pytest.fixture(scope="module")
def session(vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    missing = debian.missing_boot_loader()
    if missing:
        pytest.skip(missing)
    if shutil.which("mmdebstrap") is None and not debian_image.cached_image().exists():
        pytest.skip("mmdebstrap is not installed (scripts/system-packages.txt)")
    work = tmp_path_factory.mktemp("debian-tpm2")
    image = debian_image.ensure_image(work / "mmdebstrap.log")
    kver = guest.kernel_version()
    assert kver is not None
    initrd = guest.build_initramfs(work / "initrd.img", work, kver, env={"PROVISION_DISK_FEATURES": FEATURES})
    disk = debian.make_efi_disk(image, work / "disk.img", kver, vm_env.kernel, initrd)
    _tpm2_ready_root(disk, kver, work)
    key = debian.ssh_key(work)
    cfg = work / "config.json"
    cfg.write_text(json.dumps(config(key.with_suffix(".pub").read_text().strip())))
    return {"work": work, "disk": disk, "data": guest.blank_disk(work / "data.img", 64), "cfg": cfg, "key": key}


def test_debian_unlocks_the_enrolled_volume_on_its_next_boot(session: dict[str, Path]) -> None:
    first = boot(session, "first-boot")
    assert first["file"] == TEXT.strip(), first["console"][-6000:]
    assert "tpm2-device=auto" in first["crypttab"] and " none " in first["crypttab"]
    assert first["keys"] == "end"  # no key file kept in the root
    again = boot(session, "second-boot")
    assert "provision: FAILED" not in again["console"]
    # Nothing was provisioned again: no first-boot flag, the same volume and line as boot 1.
    assert "provision.firstboot" not in again["cmdline"] and "provision.firstboot" in first["cmdline"]
    assert again["crypttab"] == first["crypttab"] and again["header"] == first["header"]
    assert "tpm2" in again["header"] and "password" not in again["header"], again["header"]
    assert again["unit"] == "active", again["journal"] + again["console"][-4000:]
    assert again["mount"] == "/dev/mapper/tpmvol", again["journal"]
    assert again["file"] == TEXT.strip()
