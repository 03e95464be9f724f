"""A LUKS volume enrolled with systemd-cryptenroll by a real first boot, unlocked by systemd later.

Boot 1 provisions a blank disk from a fw_cfg config (spec 1.1.0,
``systemdTpm2`` sealed to PCR 7) with swtpm attached to QEMU as a TIS device:
the initramfs (feature ``cryptenroll``) runs systemd-cryptenroll against
/dev/tpmrm0. The root image carries systemd's shared library (version 252),
which is what the target check reads. The host then checks the header: one
``systemd-tpm2`` token, one key slot (the random key is gone), and the crypttab
line in the root.

Boot 2 runs a small check program as the initramfs' init, with no key file
anywhere: it reads the crypttab line provision wrote into the root and hands
it to systemd's own unlocker, ``systemd-cryptsetup attach`` (``headless``, so a
failed TPM2 unseal fails instead of asking for a passphrase), with the same
TPM state; then the file written on the volume is read. What is not shown: the
image's systemd running that unit from its crypttab generator at boot (this
root has no systemd as PID 1), and a PIN at boot.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.vm import guest
from tests.vm.conftest import VmEnv
from tests.vm.guest import record_timings, swtpm

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

BOOT_TIMEOUT = 420
FIRSTBOOT = "root=/dev/vda ro provision.firstboot panic=-1"
FEATURES = "ext4 luks cryptenroll"
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
TEXT = "unlocked by systemd-cryptsetup with the TPM2\n"
CHECK_MARKER = "CRYPTENROLL-CHECK"
SYSTEMD_CRYPTSETUP = "/lib/systemd/systemd-cryptsetup"
SHARED = sorted(Path("/usr/lib").glob("*/systemd/libsystemd-shared-*.so"))
# systemd's libcryptsetup token plugin: systemd-cryptsetup unlocks a systemd-tpm2 token through it.
TOKEN_PLUGINS = sorted(Path("/usr/lib").glob("*/cryptsetup/libcryptsetup-token-systemd-tpm2.so"))

if not (shutil.which("swtpm") and shutil.which("systemd-cryptenroll") and SHARED
        and TOKEN_PLUGINS and Path(SYSTEMD_CRYPTSETUP).exists()):
    pytestmark.append(pytest.mark.skip(reason="needs swtpm and systemd's cryptenroll/cryptsetup"))


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode(errors="replace")


CONFIG = {
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
}


@pytest.fixture(scope="module")
def cryptenroll_initrd(vm_env: VmEnv) -> Path:
    kver = guest.kernel_version()
    assert kver is not None
    return guest.build_initramfs(vm_env.workdir / "initrd-cryptenroll.img", vm_env.workdir, kver,
                                 env={"PROVISION_DISK_FEATURES": FEATURES})


CHECK_INIT = f"""#!/bin/sh
# Boot 2's init: no key file anywhere; systemd-cryptsetup unlocks the volume
# from the crypttab line provision wrote, with the TPM2; print, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin DM_DISABLE_UDEV=1
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mkdir -p /run/cryptsetup /mnt/root /mnt/p
say() {{ echo "{CHECK_MARKER} $*"; }}
for m in virtio_pci virtio_blk ext4 dm_crypt xts; do modprobe "$m" || say "modprobe $m failed"; done
n=0; while [ ! -e /sys/class/block/vdb1 ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n+1)); done
mount -o ro /dev/vda /mnt/root || say "mount root failed"
line=$(grep '^tpmvol ' /mnt/root/etc/crypttab)
say "crypttab $(echo "$line" | base64 -w0)"
set -- $line
dev=$(blkid -U "${{2#UUID=}}")
say "device $dev"
SYSTEMD_LOG_LEVEL=debug /usr/lib/systemd/systemd-cryptsetup attach "$1" "$dev" "$3" "$4,headless" 2>&1 || say "attach failed"
mount -o ro,noload /dev/mapper/tpmvol /mnt/p || say "mount tpmvol failed"
say "file $(base64 -w0 < /mnt/p/p.txt)"
say "done"
umount /mnt/p /mnt/root; dmsetup remove tpmvol
sync
busybox poweroff -f || echo o > /proc/sysrq-trigger
sleep 10
"""


def check_initrd(base: Path, out: Path) -> Path:
    """``base`` plus a cpio with /provision-check, systemd-cryptsetup and its token plugin
    (their libraries are in ``base``: systemd-cryptenroll needs the same), as the image has them."""
    tree = out.with_suffix(".tree")
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "usr/lib/systemd").mkdir(parents=True)
    shutil.copy2(SYSTEMD_CRYPTSETUP, tree / "usr/lib/systemd/systemd-cryptsetup")
    plugin = TOKEN_PLUGINS[-1]
    plugin_dir = f"usr/lib/{plugin.parent.parent.name}/cryptsetup"
    (tree / plugin_dir).mkdir(parents=True)
    shutil.copy2(plugin, tree / plugin_dir / plugin.name)
    script = tree / "provision-check"
    script.write_text(CHECK_INIT)
    script.chmod(0o755)
    names = "".join(f"{n}\n" for n in (
        "provision-check", "usr", "usr/lib", "usr/lib/systemd", "usr/lib/systemd/systemd-cryptsetup",
        str(Path(plugin_dir).parent), plugin_dir, f"{plugin_dir}/{plugin.name}"))
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=tree,
                             input=names.encode(), capture_output=True, check=True).stdout
    head = base.read_bytes()
    out.write_bytes(head + b"\0" * (-len(head) % 512) + archive)
    return out


@pytest.fixture(scope="module")
def provisioned(vm_env: VmEnv, cryptenroll_initrd: Path,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[guest.Boot, Path, Path]:
    work = tmp_path_factory.mktemp("cryptenroll")
    shared = SHARED[-1]
    root = guest.build_root_image(work / "root.img", 64, extra_files={
        f"/usr/lib/{shared.parent.parent.name}/systemd/{shared.name}": shared})
    data = guest.blank_disk(work / "data.img", 64)
    cfg = work / "config.json"
    cfg.write_text(json.dumps(CONFIG))
    with swtpm(work / "tpm") as tpm_args:
        vm = guest.Vm(vm_env.kernel, cryptenroll_initrd, [root, data], FIRSTBOOT, fw_cfg=cfg, extra=tpm_args)
        boot = vm.boot(work / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("fw_cfg first boot: LUKS2 enrolled with systemd-cryptenroll to a TPM2 (swtpm)", boot)
    return boot, data, work


def test_first_boot_enrolls_the_tpm2(provisioned: tuple[guest.Boot, Path, Path]) -> None:
    boot, data, _ = provisioned
    assert boot.status == 0 and guest.INIT_MARKER in boot.console, (
        f"the guest did not reach its root filesystem ({boot.stopped_at}):\n{boot.console[-6000:]}")
    part = next(p for p in guest.partitions(data) if p.number == 1)
    with guest.loop_device(data, part) as device:
        header = json.loads(sh("cryptsetup", "luksDump", "--dump-json-metadata", device))
    tokens = list(header["tokens"].values())
    assert [t["type"] for t in tokens] == ["systemd-tpm2"], tokens
    assert tokens[0]["tpm2-pcrs"] == [7]
    assert list(header["keyslots"]) == tokens[0]["keyslots"]  # the random key's slot is gone


def _check_boot(vm_env: VmEnv, base: Path, work: Path, data: Path, tpm_state: Path) -> tuple[list[str], str]:
    initrd = check_initrd(base, work / "initrd-check.img")
    with swtpm(tpm_state) as tpm_args:
        vm = guest.Vm(vm_env.kernel, initrd, [work / "root.img", data], "rdinit=/provision-check panic=-1",
                      extra=tpm_args)
        boot = vm.boot(tpm_state.parent / f"serial-{tpm_state.name}.log", timeout=BOOT_TIMEOUT,
                       stop_on=[f"{CHECK_MARKER} done"])
    lines = [ln for ln in boot.console.splitlines() if ln.startswith(CHECK_MARKER)]
    assert f"{CHECK_MARKER} done" in lines, boot.console[-6000:]
    return lines, boot.console


def test_a_later_boot_unlocks_with_systemd_cryptsetup(
    vm_env: VmEnv, cryptenroll_initrd: Path, provisioned: tuple[guest.Boot, Path, Path]
) -> None:
    _, data, work = provisioned
    # The same TPM state as at provisioning.
    lines, console = _check_boot(vm_env, cryptenroll_initrd, work, data, work / "tpm")
    assert not [ln for ln in lines if "failed" in ln], console[-6000:]
    fields = {ln.split()[1]: ln.split()[2] if len(ln.split()) > 2 else "" for ln in lines}
    crypttab = base64.b64decode(fields["crypttab"]).decode()
    assert crypttab.split()[2:] == ["none", "luks,tpm2-device=auto"], crypttab
    assert base64.b64decode(fields["file"]).decode() == TEXT


def test_another_tpm_does_not_unlock(
    vm_env: VmEnv, cryptenroll_initrd: Path, provisioned: tuple[guest.Boot, Path, Path]
) -> None:
    """The same disks with a fresh TPM: systemd-cryptsetup cannot unseal the key, and with
    no key file and no passphrase the volume stays closed."""
    _, data, work = provisioned
    lines, console = _check_boot(vm_env, cryptenroll_initrd, work, data, work / "other-tpm")
    assert f"{CHECK_MARKER} attach failed" in lines, console[-6000:]
    assert f"{CHECK_MARKER} mount tpmvol failed" in lines
