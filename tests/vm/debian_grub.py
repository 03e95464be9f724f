"""The Debian guest booted by GRUB, as Debian sets GRUB up on a UEFI machine.

The root is tests/vm/debian_image.py's GRUB flavour (grub-efi-amd64 installed,
the image's settings in /etc/default/grub.d, the first-boot stamp test in
/etc/grub.d/05_provision). Into a copy of it go this machine's kernel and
the initramfs built with provision's hooks (in /boot, where Debian keeps
them), the stamp /boot/provision.firstboot, and the ESP in fstab at
/boot/efi. Then the image's own ``update-grub`` writes /boot/grub/grub.cfg,
run in a chroot of the mounted root (:func:`chroot_env`: this machine has no
udev and its disks are loop devices, which update-grub handles differently
from a real disk; there grub.cfg says root=UUID=... as on a real machine).

The ESP holds GRUB's EFI image as the removable-media loader
(EFI/BOOT/BOOTX64.EFI), made by the image's grub-mkimage as grub-install
makes it: a small core that finds the root filesystem by UUID and loads
``normal`` and grub.cfg from /boot/grub there. OVMF boots it, so the
``linux`` lines of grub.cfg are the next kernel's command line, and a reboot
is a reboot inside the same QEMU.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.vm import debian

GRUB_CFG = "boot/grub/grub.cfg"
STAMP = "boot/provision.firstboot"
# Enough for the core to find /boot/grub; everything else is loaded from there.
CORE_MODULES = ("part_gpt", "ext2", "search_fs_uuid")
DEVICE = "provision-test-root"  # the root's device while update-grub runs (see chroot_env)
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def _run(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def chroot_env(root: Path) -> Iterator[tuple[Path, str]]:
    """The mounted root as update-grub needs to see it; yields (where to chroot, the UUID).

    Its /dev holds only what update-grub reads: the root's device, named as a
    disk (``DEVICE``, the loop device's numbers: 10_linux gives up on a
    device named loopN, file-backed as it may be) with the by-uuid link udev
    would have made, and null, zero, urandom. grub-probe finds the device
    from the mount table, so the root is mounted a second time from inside,
    by that name, and that mount is the chroot.
    """
    loop = _run("findmnt", "-n", "-o", "SOURCE", "--mountpoint", str(root)).strip()
    uuid = _run("blkid", "-s", "UUID", "-o", "value", loop).strip()
    inner = root / "mnt"
    mounted: list[Path] = []
    try:
        _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(root / "dev"))
        mounted.append(root / "dev")
        dev = root / "dev"
        for name, source in (("null", "/dev/null"), ("zero", "/dev/zero"), ("urandom", "/dev/urandom")):
            os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.stat(source).st_rdev)
        os.mknod(dev / DEVICE, 0o600 | stat.S_IFBLK, os.stat(loop).st_rdev)
        (dev / "disk/by-uuid").mkdir(parents=True)
        (dev / "disk/by-uuid" / uuid).symlink_to(f"../../{DEVICE}")
        subprocess.run(["chroot", str(root), "mount", f"/dev/{DEVICE}", "/mnt"], check=True,
                       capture_output=True, env=CHROOT_ENV)
        mounted.append(inner)
        for name, argv in (("proc", ["-t", "proc", "proc"]), ("sys", ["--bind", "/sys"]),
                           ("dev", ["--bind", str(dev)])):
            _run("mount", *argv, str(inner / name))
            mounted.append(inner / name)
        yield inner, uuid
    finally:
        for where in reversed(mounted):
            subprocess.run(["umount", str(where)], check=False, capture_output=True)


def in_chroot(root: Path, *argv: str) -> str:
    done = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True,
                          env=CHROOT_ENV)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in the image failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def make_grub_disk(cached: Path, dest: Path, kver: str, kernel: Path, initrd: Path) -> Path:
    """A GPT disk: an ESP with GRUB's EFI image, then the Debian root with the
    kernel, the initramfs, the first-boot stamp and the grub.cfg update-grub wrote."""
    work = dest.with_suffix(".parts")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    root_fs = work / "root.img"
    subprocess.run(["cp", "--sparse=always", str(cached), str(root_fs)], check=True)
    efi_image = work / "BOOTX64.EFI"
    with debian.mounted_rw(root_fs, work / "mnt") as root:
        shutil.copyfile(kernel, root / f"boot/vmlinuz-{kver}")
        shutil.copyfile(initrd, root / f"boot/initrd.img-{kver}")
        with (root / "etc/fstab").open("a") as fstab:
            fstab.write("LABEL=ESP\t/boot/efi\tvfat\tumask=0077\t0\t1\n")
        (root / "boot/efi").mkdir(exist_ok=True)
        debian.add_modules(root, kver, ("kernel/fs/fat", "kernel/fs/nls"))
        debian.enable_firstboot_complete(root)
        (root / STAMP).touch()
        with chroot_env(root) as (inner, uuid):
            in_chroot(inner, "update-grub")
            (inner / "tmp/load.cfg").write_text(
                f"search.fs_uuid {uuid} root\nset prefix=($root)/boot/grub\n")
            in_chroot(inner, "grub-mkimage", "-O", "x86_64-efi", "-o", "/tmp/BOOTX64.EFI",
                      "-c", "/tmp/load.cfg", "-p", "/boot/grub", *CORE_MODULES)
        shutil.move(root / "tmp/BOOTX64.EFI", efi_image)
        (root / "tmp/load.cfg").unlink()
    esp = work / "esp.img"
    subprocess.run(["mkfs.vfat", "-C", "-n", "ESP", str(esp), str(debian.ESP_MIB * 1024)], check=True,
                   capture_output=True)
    for directory in ("EFI", "EFI/BOOT"):
        debian.mtools("mmd", "-i", str(esp), f"::/{directory}")
    debian.mtools("mcopy", "-i", str(esp), str(efi_image), "::/EFI/BOOT/BOOTX64.EFI")
    debian.gpt_disk(dest, esp, root_fs)
    shutil.rmtree(work)
    return dest


def read_root(disk: Path, path: str, workdir: Path) -> str:
    """A file of the disk's root filesystem (partition 2), read-only."""
    from tests.vm import guest

    part = next(p for p in guest.partitions(disk) if p.number == 2)
    with guest.mounted(disk, workdir / "peek", part) as root:
        return (root / path).read_text()
