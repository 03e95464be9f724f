"""Debian unlocks systemdTpm2 volumes itself on its next boot; one with a PIN typed at the console.

tests/vm/debian_image.py's image (systemd 252) on tests/vm/debian.py's disk
(systemd-boot, OVMF), with swtpm attached to QEMU as a TIS device and an
initramfs carrying the ``luks cryptenroll`` disk features. The image gets what
a TPM2-unlocking Debian has and the cached minbase image lacks: the TPM2
libraries systemd loads with dlopen (copied from this machine, the same
bookworm packages) and the dm-crypt modules (the image has no /lib/modules).
The serial console takes input (guest.Vm's ``console_input``): the test
types at it as someone at the machine would.

1. First boot: provision partitions the data disk into two volumes, formats
   LUKS2, enrolls the TPM2 (PCR 7) with systemd-cryptenroll — ``tpmvol``
   alone, ``pinvol`` with a PIN — removes the random keys, writes
   /etc/crypttab and the mount units; the system comes up. Provisioning
   leaves the volumes open, so nothing is asked on this boot.
2. Second boot, same TPM state, no first-boot flag: nothing is provisioned;
   the image's own systemd-cryptsetup-generator turns the crypttab lines into
   systemd-cryptsetup@tpmvol.service, which unlocks with the TPM2 alone, and
   systemd-cryptsetup@pinvol.service, which asks for the PIN through Debian's
   console password agent (systemd-ask-password-console); the test types it
   once the prompt is on the console and the volume unlocks; both mount units
   mount. Checked over SSH as root, and the PIN is in none of provision's
   log, its record, the console (the agent echoes stars) or the journal.

Not typed: a wrong PIN first. systemd 252 does not ask again: its token
plugin's unseal fails ("authorization HMAC check failed and DA counter
incremented"), its fallback retries the cached wrong PIN, and the unit fails
for that boot (observed in a development run; asserting it costs a third boot).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
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
PIN_TEXT = "unlocked by Debian's systemd with the TPM2 and the PIN typed on the console\n"
PIN = "3141-vault-pin"
# What systemd-cryptsetup asks through the console password agent
# (systemd-ask-password-console): 252 asks through its libcryptsetup token
# plugin ("LUKS2 token PIN"), its own TPM2 code asks "TPM2 PIN".
PIN_PROMPT = r"Please enter (?:LUKS2 token|TPM2) PIN:"
PIN_WAIT = 180  # seconds from one prompt (or typed PIN) to the next prompt
READY = debian_image.READY_MARKER + r", uptime ([0-9.]+) s"
FAILED = r"provision: FAILED in stage"
TSS2 = ("libtss2-esys.so.0", "libtss2-sys.so.1", "libtss2-mu.so.0", "libtss2-rc.so.0", "libtss2-tcti-device.so.0")

if not (shutil.which("swtpm") and shutil.which("systemd-cryptenroll") and shutil.which("ssh")):
    pytestmark.append(pytest.mark.skip(reason="needs swtpm, systemd-cryptenroll and ssh"))


def _mount_unit(name: str, what: str, where: str) -> dict[str, object]:
    contents = (f"[Unit]\nDescription=TPM2 vault {what}\n\n[Mount]\nWhat={what}\n"
                f"Where={where}\nType=ext4\n\n[Install]\nWantedBy=multi-user.target\n")
    return {"name": name, "enabled": True, "contents": contents}


def _file(path: str, text: str) -> dict[str, object]:
    return {"path": path, "mode": 0o644,
            "contents": {"source": "data:;base64," + base64.b64encode(text.encode()).decode()}}


def config(public_key: str) -> dict[str, object]:
    """Two volumes on the data disk: ``tpmvol`` sealed to the TPM2 alone (unlocks
    unattended) and ``pinvol`` sealed to the TPM2 and a PIN (asked on the console)."""
    return {
        "provision": {"version": "1.1.0"},
        "storage": {
            "disks": [{"device": "/dev/vdb", "wipeTable": True, "partitions": [
                {"number": 1, "label": "tpmvol", "sizeMiB": 40},
                {"number": 2, "label": "pinvol", "sizeMiB": 40}]}],
            "luks": [{"name": "tpmvol", "device": "/dev/disk/by-partlabel/tpmvol", "options": FAST_KDF,
                      "systemdTpm2": {"pcrs": [7]}},
                     {"name": "pinvol", "device": "/dev/disk/by-partlabel/pinvol", "options": FAST_KDF,
                      "systemdTpm2": {"pcrs": [7], "pin": PIN}}],
            "filesystems": [{"device": "/dev/mapper/tpmvol", "format": "ext4", "label": "TPMFS",
                             "path": "/var/lib/tpm-vault"},
                            {"device": "/dev/mapper/pinvol", "format": "ext4", "label": "PINFS",
                             "path": "/var/lib/pin-vault"}],
            "files": [_file("/var/lib/tpm-vault/p.txt", TEXT), _file("/var/lib/pin-vault/p.txt", PIN_TEXT)],
        },
        "systemd": {"units": [
            _mount_unit("var-lib-tpm\\x2dvault.mount", "/dev/mapper/tpmvol", "/var/lib/tpm-vault"),
            _mount_unit("var-lib-pin\\x2dvault.mount", "/dev/mapper/pinvol", "/var/lib/pin-vault")]},
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


def _type_pins(run: guest.Running, pins: list[str]) -> int:
    """Answer the console's PIN prompts with ``pins`` in order; the prompts seen.

    Each PIN is typed only once its prompt is on the console (the n-th prompt
    for the n-th PIN); a prompt that does not come ends the typing.
    """
    seen = 0
    for pin in pins:
        deadline = time.monotonic() + PIN_WAIT
        while _prompts(run) <= seen:
            if time.monotonic() > deadline or run.proc.poll() is not None or re.search(FAILED, run.console):
                return _prompts(run)
            time.sleep(0.5)
        seen += 1
        run.type(pin + "\n")
    return seen


def _prompts(run: guest.Running) -> int:
    return len(re.findall(PIN_PROMPT, run.console))


CHECKS = {
    "unit": "systemctl is-active systemd-cryptsetup@tpmvol.service",
    "mount": "findmnt -n -o SOURCE /var/lib/tpm-vault",
    "file": "cat /var/lib/tpm-vault/p.txt",
    "pin_unit": "systemctl is-active systemd-cryptsetup@pinvol.service",
    "pin_mount": "findmnt -n -o SOURCE /var/lib/pin-vault",
    "pin_file": "cat /var/lib/pin-vault/p.txt",
    "crypttab": "cat /etc/crypttab",
    "cmdline": "cat /proc/cmdline",
    "header": ("blkid -s UUID -o value /dev/disk/by-partlabel/tpmvol; "
               "systemd-cryptenroll /dev/disk/by-partlabel/tpmvol"),
    # The LUKS2 header's JSON area (the image has no cryptsetup binary).
    "pin_header": "head -c 16384 /dev/disk/by-partlabel/pinvol | tail -c 12288 | tr -d '\\000'",
    "keys": "ls /etc/luks 2>/dev/null; echo end",
    "journal": "journalctl -b -u systemd-cryptsetup@tpmvol.service --no-pager | tail -5",
    "pin_journal": "journalctl -b -u systemd-cryptsetup@pinvol.service --no-pager | tail -8",
    # Where provision left its words: the run's log (the initramfs' /run moves
    # into the system) and the result record in the root; the boot's journal.
    "provision_log": "cat /run/provision/provision.log 2>/dev/null",
    "provision_record": "cat /etc/.provision/result.json 2>/dev/null",
    "full_journal": "journalctl -b --no-pager -o cat",
}


def boot(s: dict[str, Path], name: str, pins: list[str]) -> dict[str, str]:
    """One boot of the disk with the TPM state kept in ``s["work"]/tpm``; ``pins`` are
    typed at the console's PIN prompts in order; then the checks over SSH."""
    port = debian.free_port()
    seen: dict[str, str] = {}
    with swtpm(s["work"] / "tpm") as tpm_args:
        vm = guest.Vm(Path(), Path(), [s["disk"], s["data"]], "", fw_cfg=s["cfg"], ssh_port=port,
                      memory_mib=1024, firmware=debian.OVMF, allow_reboot=True, extra=tpm_args,
                      console_input=True)
        ssh = debian.Ssh(port, s["key"])
        with vm.running(s["work"] / f"{name}.serial.log", timeout=BOOT_TIMEOUT) as run:
            try:
                seen["prompts"] = str(_type_pins(run, pins))
                up = run.wait_for(f"{READY}|{FAILED}")
                assert up and up.group(0).startswith(debian_image.READY_MARKER), run.console[-6000:]
                assert ssh.wait(run, "root"), run.console[-6000:]
                for key, command in CHECKS.items():
                    seen[key] = ssh.run("root", command).stdout.strip()
                # Counted again once the system is up: no prompt came after the last PIN.
                seen["prompts_at_end"] = str(_prompts(run))
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
    return {"work": work, "disk": disk, "data": guest.blank_disk(work / "data.img", 96), "cfg": cfg, "key": key}


def test_debian_unlocks_the_enrolled_volumes_on_its_next_boot(session: dict[str, Path]) -> None:
    first = boot(session, "first-boot", [])
    assert first["file"] == TEXT.strip(), first["console"][-6000:]
    assert "tpm2-device=auto" in first["crypttab"] and " none " in first["crypttab"]
    assert len(first["crypttab"].splitlines()) == 2, first["crypttab"]
    assert first["keys"] == "end"  # no key file kept in the root
    # Provisioning leaves the volumes open for the files it writes on them, so
    # this boot's systemd finds them unlocked and asks for nothing.
    assert first["prompts_at_end"] == "0", first["console"][-6000:]
    assert first["pin_unit"] == "active", first["pin_journal"] + first["console"][-4000:]
    assert first["pin_mount"] == "/dev/mapper/pinvol" and first["pin_file"] == PIN_TEXT.strip()
    # The run's log (INFO, what a user reads after a failure) is this provisioning's.
    assert "disks: applied (" in first["provision_log"], first["provision_log"][-3000:]
    _assert_pin_never_shown(first)
    again = boot(session, "second-boot", [PIN])
    assert "provision: FAILED" not in again["console"]
    # Nothing was provisioned again: no first-boot flag, the same volume and line as boot 1.
    assert "provision.firstboot" not in again["cmdline"] and "provision.firstboot" in first["cmdline"]
    assert again["crypttab"] == first["crypttab"] and again["header"] == first["header"]
    assert "tpm2" in again["header"] and "password" not in again["header"], again["header"]
    assert again["unit"] == "active", again["journal"] + again["console"][-4000:]
    assert again["mount"] == "/dev/mapper/tpmvol", again["journal"]
    assert again["file"] == TEXT.strip()
    # The PIN volume: asked once on the console, the typed PIN unlocks it.
    assert again["prompts"] == again["prompts_at_end"] == "1", again["pin_journal"] + again["console"][-6000:]
    assert again["pin_unit"] == "active", again["pin_journal"] + again["console"][-4000:]
    assert again["pin_mount"] == "/dev/mapper/pinvol" and again["pin_file"] == PIN_TEXT.strip()
    # The same volume as provisioned: one key slot, a systemd-tpm2 token that wants a PIN.
    header = json.loads(again["pin_header"])
    assert again["pin_header"] == first["pin_header"] and len(header["keyslots"]) == 1, header
    assert [(t["type"], t["tpm2-pin"], t["keyslots"]) for t in header["tokens"].values()] == [
        ("systemd-tpm2", True, list(header["keyslots"]))]
    _assert_pin_never_shown(again)


def _assert_pin_never_shown(seen: dict[str, str]) -> None:
    """Neither provision (its log, its record, its console lines) nor the console's
    echo of what was typed nor the boot's journal shows a PIN."""
    for where in ("provision_log", "provision_record", "console", "full_journal", "crypttab"):
        assert PIN not in seen[where], where
