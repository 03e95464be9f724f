"""LUKS volumes bound with clevis by a real first boot: Tang through guestfwd, TPM2 through swtpm.

Boot 1 provisions a blank disk from a fw_cfg config: one volume bound to a
Tang server (tangd behind socat on the host's loopback, reached from the
guest at 169.254.169.254:80 through QEMU's restricted user network), one to
the TPM2 (swtpm attached to QEMU as a TIS device). The host then checks each
header: a clevis token, and a single key slot (the random provisioning key
was removed). Boot 2 runs a small check program as the initramfs' init with
no key file anywhere: clevis unlocks both volumes (Tang over the network,
the TPM from swtpm's saved state) and the files written on them are read.
Boot 3, on fresh disks, is given a wrong Tang thumbprint: the boot stops
with the summary on the console naming the volume and the thumbprint (then
panics, as its kernel arguments ask), and the data disk is byte for byte
what it was.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vm import guest
from tests.vm.conftest import VmEnv
from tests.vm.guest import record_timings, swtpm

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

BOOT_TIMEOUT = 420
FIRSTBOOT = "root=/dev/vda ro provision.firstboot panic=-1"
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
TANGD = "/usr/libexec/tangd"
TANG_URL = "http://169.254.169.254"  # the guestfwd address (tests/vm/guest.py)
FILES = {"/var/lib/tang-vault/t.txt": "unlocked by Tang\n", "/var/lib/tpm-vault/p.txt": "unlocked by the TPM\n"}
CHECK_MARKER = "CLEVIS-CHECK"
EMERGENCY_SHELL = r"\(initramfs\) "

if not (shutil.which("swtpm") and shutil.which("socat") and shutil.which("clevis")
        and shutil.which(TANGD)):
    pytestmark.append(pytest.mark.skip(reason="needs swtpm, socat, clevis and tang (scripts/system-packages.txt)"))


def data_url(data: bytes) -> str:
    return "data:;base64," + base64.b64encode(data).decode()


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tang:
    port: int
    thumbprint: str
    other_thumbprint: str


@pytest.fixture(scope="module")
def tang(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tang]:
    db = tmp_path_factory.mktemp("tang")
    sh("/usr/libexec/tangd-keygen", str(db))
    thumbprints = {}
    for jwk in db.glob("*.jwk"):
        signing = "verify" in json.loads(jwk.read_text()).get("key_ops", [])
        thumbprints[signing] = sh("jose", "jwk", "thp", "-i", str(jwk)).strip()
    port = _free_port()
    proc = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"EXEC:{TANGD} {db}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield Tang(port, thumbprints[True], thumbprints[False])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def config(thumbprint: str) -> dict[str, object]:
    return {
        "provision": {"version": "1.0.0"},
        "storage": {
            "disks": [{"device": "/dev/vdb", "wipeTable": True, "partitions": [
                {"number": 1, "label": "tangvol", "sizeMiB": 40},
                {"number": 2, "label": "tpmvol", "sizeMiB": 40},
            ]}],
            "luks": [
                {"name": "tangvol", "device": "/dev/disk/by-partlabel/tangvol", "options": FAST_KDF,
                 "clevis": {"tang": [{"url": TANG_URL, "thumbprint": thumbprint}]}},
                {"name": "tpmvol", "device": "/dev/disk/by-partlabel/tpmvol", "options": FAST_KDF,
                 "clevis": {"tpm2": True}},
            ],
            "filesystems": [
                {"device": "/dev/mapper/tangvol", "format": "ext4", "label": "TANGFS", "path": "/var/lib/tang-vault"},
                {"device": "/dev/mapper/tpmvol", "format": "ext4", "label": "TPMFS", "path": "/var/lib/tpm-vault"},
            ],
            "files": [{"path": path, "mode": 0o644, "contents": {"source": data_url(text.encode())}}
                      for path, text in FILES.items()],
        },
    }


CHECK_INIT = f"""#!/bin/sh
# Boot 2's init: no key file anywhere; clevis unlocks both volumes; print, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mkdir -p /run/cryptsetup /mnt/t /mnt/p
say() {{ echo "{CHECK_MARKER} $*"; }}
for m in virtio_pci virtio_blk virtio_net ext4 dm_crypt xts; do modprobe "$m" || say "modprobe $m failed"; done
n=0; while [ ! -e /sys/class/block/vdb2 ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n+1)); done
n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
ip link set lo up; ip link set eth0 up; ip addr add 169.254.0.15/16 dev eth0
clevis luks unlock -d /dev/vdb1 -n tangvol 2>&1 || say "unlock tangvol failed"
clevis luks unlock -d /dev/vdb2 -n tpmvol 2>&1 || say "unlock tpmvol failed"
mount -o ro,noload /dev/mapper/tangvol /mnt/t || say "mount tangvol failed"
mount -o ro,noload /dev/mapper/tpmvol /mnt/p || say "mount tpmvol failed"
for f in /mnt/t/t.txt /mnt/p/p.txt; do say "file $f $(base64 -w0 < "$f")"; done
say "done"
umount /mnt/t /mnt/p; cryptsetup close tangvol; cryptsetup close tpmvol
sync
busybox poweroff -f || echo o > /proc/sysrq-trigger
sleep 10
"""


def check_initrd(base: Path, out: Path) -> Path:
    """``base`` plus a cpio with /provision-check (boot it with rdinit=/provision-check)."""
    tree = out.with_suffix(".tree")
    tree.mkdir(parents=True, exist_ok=True)
    script = tree / "provision-check"
    script.write_text(CHECK_INIT)
    script.chmod(0o755)
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=tree,
                             input=b"provision-check\n", capture_output=True, check=True).stdout
    head = base.read_bytes()
    out.write_bytes(head + b"\0" * (-len(head) % 512) + archive)
    return out


def luks_header(image: Path, number: int) -> dict[str, object]:
    part = next(p for p in guest.partitions(image) if p.number == number)
    with guest.loop_device(image, part) as device:
        return dict(json.loads(sh("cryptsetup", "luksDump", "--dump-json-metadata", device)))


def clevis_list(image: Path, number: int) -> str:
    part = next(p for p in guest.partitions(image) if p.number == number)
    with guest.loop_device(image, part) as device:
        return sh("clevis", "luks", "list", "-d", device)


@pytest.fixture(scope="module")
def provisioned(vm_env: VmEnv, clevis_initrd: Path, tang: Tang,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[guest.Boot, Path, Path]:
    work = tmp_path_factory.mktemp("clevis")
    root = guest.build_root_image(work / "root.img")
    data = guest.blank_disk(work / "data.img", 128)
    cfg = work / "config.json"
    cfg.write_text(json.dumps(config(tang.thumbprint)))
    with swtpm(work / "tpm") as tpm_args:
        vm = guest.Vm(vm_env.kernel, clevis_initrd, [root, data], FIRSTBOOT, fw_cfg=cfg,
                      imds_port=tang.port, extra=tpm_args)
        boot = vm.boot(work / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("fw_cfg first boot: LUKS2 bound to Tang and to TPM2 (swtpm)", boot)
    return boot, data, work


def test_first_boot_binds_tang_and_tpm2(provisioned: tuple[guest.Boot, Path, Path]) -> None:
    boot, data, _ = provisioned
    assert boot.status == 0 and guest.INIT_MARKER in boot.console, (
        f"the guest did not reach its root filesystem ({boot.stopped_at}):\n{boot.console[-6000:]}")
    for number, pin in ((1, "tang"), (2, "tpm2")):
        header = luks_header(data, number)
        tokens = list(header["tokens"].values())  # type: ignore[attr-defined]
        assert [t["type"] for t in tokens] == ["clevis"], tokens
        assert f'"{pin}"' in clevis_list(data, number)
        # Only the binding's key slot is left: the random provisioning key is gone.
        assert len(header["keyslots"]) == 1  # type: ignore[arg-type]


def test_a_later_boot_unlocks_without_a_key_file(
    vm_env: VmEnv, clevis_initrd: Path, tang: Tang, provisioned: tuple[guest.Boot, Path, Path]
) -> None:
    _, data, work = provisioned
    initrd = check_initrd(clevis_initrd, work / "initrd-check.img")
    with swtpm(work / "tpm") as tpm_args:  # the same TPM state as at provisioning
        vm = guest.Vm(vm_env.kernel, initrd, [work / "root.img", data], "rdinit=/provision-check panic=-1",
                      imds_port=tang.port, extra=tpm_args)
        boot = vm.boot(work / "serial-check.log", timeout=BOOT_TIMEOUT, stop_on=[f"{CHECK_MARKER} done"])
    lines = [ln for ln in boot.console.splitlines() if ln.startswith(CHECK_MARKER)]
    assert f"{CHECK_MARKER} done" in lines, boot.console[-6000:]
    assert not [ln for ln in lines if "failed" in ln], boot.console[-6000:]
    seen = {ln.split()[2]: base64.b64decode(ln.split()[3]).decode() for ln in lines if ln.split()[1:2] == ["file"]}
    assert seen == {"/mnt/t/t.txt": "unlocked by Tang\n", "/mnt/p/p.txt": "unlocked by the TPM\n"}


def test_wrong_thumbprint_fails_closed(vm_env: VmEnv, clevis_initrd: Path, tang: Tang, tmp_path: Path) -> None:
    root = guest.build_root_image(tmp_path / "root.img")
    data = guest.blank_disk(tmp_path / "data.img", 128)
    before = guest.sha256_file(data)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config(tang.other_thumbprint)))
    with swtpm(tmp_path / "tpm") as tpm_args:
        vm = guest.Vm(vm_env.kernel, clevis_initrd, [root, data], FIRSTBOOT, fw_cfg=cfg,
                      imds_port=tang.port, extra=tpm_args)
        boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[EMERGENCY_SHELL])
    assert "provision: FAILED in stage disks" in boot.console, boot.console[-6000:]
    assert "item:  /dev/mapper/tangvol" in boot.console
    assert f"no signing key of the Tang advertisement has thumbprint {tang.other_thumbprint}" in boot.console
    assert "the machine was not provisioned" in boot.console
    assert guest.INIT_MARKER not in boot.console
    assert guest.sha256_file(data) == before
