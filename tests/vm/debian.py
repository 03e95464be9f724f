"""The Debian guest as a real machine boots it, and SSH into the running system.

The disk: a GPT with an EFI system partition and the Debian root (a copy of
the cached image, tests/vm/debian_image.py). The ESP holds systemd-boot (as
the removable-media loader, EFI/BOOT/BOOTX64.EFI), this machine's kernel, the
initramfs built with provision's hooks, and a Boot Loader Specification entry
whose ``options`` are the command line. QEMU boots it with OVMF, so what
provision's kargs stage writes into the entry is what systemd-boot gives the
next kernel, and a reboot is a reboot inside the same QEMU.

systemd-boot cannot test for a stamp file, so the first-boot flag is in the
entry and the image's drop-in for provision-firstboot-complete.service takes
it out once the machine came up provisioned (docs/embedding.md, "First boot
only").
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.vm import guest

BASE_OPTIONS = "root=LABEL=root ro console=ttyS0 panic=-1"
FIRSTBOOT_UNIT = guest.CHECKOUT / "initramfs-hook/systemd/provision-firstboot-complete.service"


@contextlib.contextmanager
def mounted_rw(image: Path, mount_point: Path) -> Iterator[Path]:
    """The image's filesystem, read-write (the image has no partition table)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True,
                   capture_output=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Ssh:
    port: int
    key: Path

    def argv(self, user: str, command: str) -> list[str]:
        return ["ssh", "-i", str(self.key), "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                f"{user}@127.0.0.1", command]

    def run(self, user: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(user, command), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def wait(self, vm: guest.Running, user: str) -> bool:
        """Log in as ``user`` until it works, QEMU exits or the boot's time is up."""
        while vm.remaining() > 0 and vm.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.run(user, "true", timeout=30).returncode == 0:
                    return True
            time.sleep(2)
        return False


def ssh_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vm-test",
                        "-f", str(key)], check=True)
    return key


# --- the disk: systemd-boot on an ESP, booted by OVMF -----------------------------

OVMF = Path("/usr/share/ovmf/OVMF.fd")
SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
ESP_MIB = 64
ESP_START_MIB = 1
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ENTRY_NAME = "loader/entries/debian.conf"
# Replaces the stamp removal (see the module docstring).
FIRSTBOOT_DROPIN = r"""[Unit]
ConditionPathExists=
ConditionPathExists=/etc/.provision/result.json
RequiresMountsFor=/efi

[Service]
ExecStart=
ExecStart=/bin/sed -i -E -e "/^options/s/[[:space:]]+provision\\.firstboot([[:space:]]|$)/\\1/" /efi/loader/entries/debian.conf
"""


def mtools(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True,
                          env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})


def esp_path(disk: Path) -> str:
    """The ESP inside the disk image, for mtools' -i."""
    return f"{disk}@@{ESP_START_MIB}M"


def read_esp(disk: Path, path: str) -> str:
    return mtools("mtype", "-i", esp_path(disk), f"::/{path}").stdout


def write_esp(disk: Path, path: str, text: str, workdir: Path) -> None:
    local = workdir / "esp-file"
    local.write_text(text)
    mtools("mcopy", "-o", "-i", esp_path(disk), str(local), f"::/{path}")


def missing_boot_loader() -> str | None:
    for path, package in ((OVMF, "ovmf"), (SYSTEMD_BOOT, "systemd-boot-efi")):
        if not path.exists():
            return f"{path} is missing (apt-get install {package}; scripts/system-packages.txt)"
    return None


def add_modules(root: Path, kver: str, subdirs: tuple[str, ...]) -> None:
    """This kernel's modules for the booted system to mount the ESP with (the
    image has no /lib/modules: the initramfs loads what the rest needs)."""
    source = Path("/lib/modules", kver)
    dest = root / "lib/modules" / kver
    for subdir in subdirs:
        shutil.copytree(source / subdir, dest / subdir, dirs_exist_ok=True)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (source / name).exists():
            shutil.copyfile(source / name, dest / name)
    subprocess.run(["depmod", "-b", str(root), kver], check=True, capture_output=True)


def enable_firstboot_complete(root: Path) -> None:
    """The unit that takes the first-boot flag away once the machine is provisioned."""
    shutil.copyfile(FIRSTBOOT_UNIT, root / "usr/lib/systemd/system" / FIRSTBOOT_UNIT.name)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    (wants / FIRSTBOOT_UNIT.name).symlink_to(f"/usr/lib/systemd/system/{FIRSTBOOT_UNIT.name}")


def make_efi_disk(cached: Path, dest: Path, kver: str, kernel: Path, initrd: Path) -> Path:
    """A GPT disk: an ESP with systemd-boot, the kernel, the initramfs and a BLS
    entry with the first-boot flag; then the Debian root (a copy of the cached
    image) with the ESP in its fstab at /efi and the drop-in that clears the flag."""
    work = dest.with_suffix(".parts")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    root_fs = work / "root.img"
    subprocess.run(["cp", "--sparse=always", str(cached), str(root_fs)], check=True)
    with mounted_rw(root_fs, work / "mnt") as root:
        with (root / "etc/fstab").open("a") as fstab:
            # noauto: the booted system needs it only for the drop-in (RequiresMountsFor).
            fstab.write("LABEL=ESP\t/efi\tvfat\tnoauto,umask=0077\t0\t2\n")
        (root / "efi").mkdir(exist_ok=True)
        add_modules(root, kver, ("kernel/fs/fat", "kernel/fs/nls"))
        enable_firstboot_complete(root)
        dropin = root / f"etc/systemd/system/{FIRSTBOOT_UNIT.name}.d"
        dropin.mkdir(parents=True)
        (dropin / "systemd-boot.conf").write_text(FIRSTBOOT_DROPIN)
    esp = work / "esp.img"
    subprocess.run(["mkfs.vfat", "-C", "-n", "ESP", str(esp), str(ESP_MIB * 1024)], check=True,
                   capture_output=True)
    for directory in ("EFI", "EFI/BOOT", "loader", "loader/entries"):
        mtools("mmd", "-i", str(esp), f"::/{directory}")
    (work / "loader.conf").write_text("timeout 0\ndefault debian.conf\n")
    (work / "entry.conf").write_text(
        "title   Debian GNU/Linux (provision test image)\n"
        f"version {kver}\n"
        f"linux   /vmlinuz-{kver}\n"
        f"initrd  /initrd.img-{kver}\n"
        f"options {BASE_OPTIONS} provision.firstboot\n"
    )
    for local, there in ((SYSTEMD_BOOT, "EFI/BOOT/BOOTX64.EFI"), (work / "loader.conf", "loader/loader.conf"),
                         (work / "entry.conf", ENTRY_NAME), (kernel, f"vmlinuz-{kver}"),
                         (initrd, f"initrd.img-{kver}")):
        mtools("mcopy", "-i", str(esp), str(local), f"::/{there}")
    gpt_disk(dest, esp, root_fs)
    shutil.rmtree(work)
    return dest


def gpt_disk(dest: Path, esp: Path, root_fs: Path) -> None:
    """The ESP and the root filesystem, as partitions 1 and 2 of a GPT disk image."""
    root_mib = root_fs.stat().st_size >> 20
    dest.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", f"{ESP_START_MIB + ESP_MIB + root_mib + 1}M", str(dest)], check=True)
    table = (f"label: gpt\nstart={ESP_START_MIB}MiB, size={ESP_MIB}MiB, type={ESP_TYPE}, name=ESP\n"
             f"start={ESP_START_MIB + ESP_MIB}MiB, size={root_mib}MiB, name=root\n")
    subprocess.run(["sfdisk", "-q", str(dest)], input=table, text=True, check=True, capture_output=True)
    for part, start in ((esp, ESP_START_MIB), (root_fs, ESP_START_MIB + ESP_MIB)):
        subprocess.run(["dd", f"if={part}", f"of={dest}", "bs=1M", f"seek={start}",
                        "conv=notrunc,sparse", "status=none"], check=True)
