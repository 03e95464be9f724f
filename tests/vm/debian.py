"""The Debian guest: a test's copy of the cached image made bootable, the test
harness as its boot loader, and SSH into the running system.

The boot loader. The guest boots the way a Boot Loader Specification loader
(systemd-boot, or GRUB with blscfg) boots it: the entry in
/boot/loader/entries/*.conf names the kernel, the initramfs and the command
line (``options``), and :func:`boot_entry` reads exactly that from the disk
before every boot and hands it to QEMU as -kernel/-initrd/-append. So what
provision's kargs stage wrote into the entry is what the next boot's kernel
gets, as on a machine with a real boot loader; what is not exercised is the
loader's own code. The first-boot flag follows the convention of
docs/embedding.md: ``provision.firstboot`` is added while /boot/provision.firstboot
exists (the GRUB snippet there does the same).
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

STAMP = "boot/provision.firstboot"
ENTRIES = "boot/loader/entries"
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


def make_disk(cached: Path, dest: Path, kver: str, kernel: Path, initrd: Path) -> Path:
    """A copy of the cached image with this machine's kernel, the initramfs with
    provision's hooks, a BLS entry, the first-boot stamp and the unit that
    removes it (what an image build would add last)."""
    subprocess.run(["cp", "--sparse=always", str(cached), str(dest)], check=True)
    with mounted_rw(dest, dest.with_suffix(".mnt")) as root:
        boot = root / "boot"
        shutil.copyfile(kernel, boot / f"vmlinuz-{kver}")
        shutil.copyfile(initrd, boot / f"initrd.img-{kver}")
        entries = root / ENTRIES
        entries.mkdir(parents=True, exist_ok=True)
        (entries / f"debian-{kver}.conf").write_text(
            "title   Debian GNU/Linux (provision test image)\n"
            f"version {kver}\n"
            f"linux   /boot/vmlinuz-{kver}\n"
            f"initrd  /boot/initrd.img-{kver}\n"
            f"options {BASE_OPTIONS}\n"
        )
        (root / STAMP).touch()
        units = root / "usr/lib/systemd/system"
        shutil.copyfile(FIRSTBOOT_UNIT, units / FIRSTBOOT_UNIT.name)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / FIRSTBOOT_UNIT.name).symlink_to(f"/usr/lib/systemd/system/{FIRSTBOOT_UNIT.name}")
    return dest


@dataclass(frozen=True)
class BootEntry:
    kernel: Path
    initrd: Path
    options: str


def _entry_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            # options may be given more than once: loaders join them.
            fields[key] = f"{fields[key]} {value.strip()}" if key in fields and key == "options" \
                else value.strip()
    return fields


def boot_entry(disk: Path, workdir: Path, *, force_firstboot: bool = False) -> BootEntry:
    """What a BLS loader would boot from ``disk``: the first entry (by file name),
    its kernel and initramfs copied out, and its options, plus the first-boot flag
    while the stamp exists (or when ``force_firstboot``, a stamp that was not removed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with guest.mounted(disk, workdir / "mnt") as root:
        entries = sorted((root / ENTRIES).glob("*.conf"))
        assert entries, f"no boot loader entry in {disk}"
        fields = _entry_fields(entries[0].read_text())
        kernel = workdir / "vmlinuz"
        initrd = workdir / "initrd.img"
        shutil.copyfile(root / fields["linux"].lstrip("/"), kernel)
        shutil.copyfile(root / fields["initrd"].lstrip("/"), initrd)
        options = fields.get("options", "")
        if force_firstboot or (root / STAMP).exists():
            options += " provision.firstboot"
    return BootEntry(kernel, initrd, options)


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
