"""A real Debian root for the VM tests, built once and cached between runs.

``mmdebstrap --variant=minbase`` from this machine's apt sources, with
systemd as PID 1, udev, openssh-server and systemd-networkd (DHCP on the
virtio NIC), packed into an ext4 image labelled ``root``. The image is cached
under /var/cache/provision-tests/ (``PROVISION_TEST_CACHE`` overrides it),
named by a hash of its recipe (suite, packages, the customisation script), so
changing the recipe builds a new one and an unchanged recipe never rebuilds.

What the cached image does not hold, because it changes with every commit of
provision or every kernel update of this machine: the kernel, the initramfs
(built by this machine's mkinitramfs with provision's hooks) and the boot
loader with its entry; tests/vm/debian.py puts those into each test's disk.
Kernel modules: the initramfs loads the virtio, ext4 and network drivers the
guest needs and they stay loaded; the image has no /lib/modules of its own
(a distribution kernel's modules would triple its size) except the few each
test disk adds (vfat for the ESP).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("PROVISION_TEST_CACHE", "/var/cache/provision-tests"))
IMAGE_SIZE_MIB = 1024  # sparse: about 300 MiB are used
SUITE = "bookworm"
PACKAGES = (
    "systemd", "systemd-sysv", "udev", "kmod", "openssh-server", "e2fsprogs", "iproute2",
    "ca-certificates",
)
# Printed on the serial console when the booted system is up (multi-user.target).
READY_MARKER = "GUEST-DEBIAN: multi-user.target reached"

# Run by mmdebstrap with the root as $1, after the packages are installed.
CUSTOMIZE = r"""
set -eu
root=$1
echo debian-image >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian-image\n' >"$root/etc/hosts"
printf 'LABEL=root\t/\text4\terrors=remount-ro\t0\t1\n' >"$root/etc/fstab"
# A machine that has never booted: systemd makes the id on first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# The network: DHCP on the virtio NIC, as a cloud image does.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/20-wired.network"
chroot "$root" systemctl enable systemd-networkd.service ssh.service
# Say on the console when the system is up (the tests time boot-to-login with it).
cat >"$root/etc/systemd/system/boot-report.service" <<'EOF'
[Unit]
Description=Report boot completion on the console
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "@READY@, uptime $(cut -d" " -f1 /proc/uptime) s" >/dev/console'
[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable boot-report.service
# Nothing the tests do needs these, and under TCG every unit costs time.
chroot "$root" systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer 2>/dev/null || true
# sshd: no DNS lookups of the client (there is no resolver behind restrict=on).
printf 'UseDNS no\n' >"$root/etc/ssh/sshd_config.d/10-tests.conf"
# Root has no password and logs in only with keys; the tests use the provisioned user.
chroot "$root" passwd -l root >/dev/null
rm -rf "$root/var/cache/apt/"*.bin "$root/var/lib/apt/lists/"* "$root/usr/share/doc/"* \
    "$root/usr/share/man/"* "$root/usr/share/locale/"*
""".replace("@READY@", READY_MARKER)


def apt_sources() -> list[str]:
    """This machine's apt sources, one text per file (deb822 or one-line; mmdebstrap
    takes each file as one MIRROR argument and tells the formats apart)."""
    found = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and path.suffix in (".list", ".sources", ""):
            text = path.read_text()
            if any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
                found.append((path, text))
    if not found:
        raise RuntimeError("no apt sources on this machine to build the Debian test image from")
    return [text for _, text in found]


@dataclass(frozen=True)
class Flavour:
    """One cached image: the base recipe, or the base plus what some tests need."""

    name: str  # the cached file's prefix
    packages: tuple[str, ...] = PACKAGES
    customize: str = CUSTOMIZE
    extra: tuple[tuple[str, str], ...] = ()  # more recipe entries (the base has none: its hash stays)


BASE = Flavour("debian")

# GRUB as the boot loader, set up the way Debian and Ubuntu VM images have it:
# the image's own settings in a drop-in below /etc/default/grub.d (update-grub
# reads it after /etc/default/grub), the first-boot flag as a GRUB variable on
# every `linux` line with the stamp test before the menu (docs/embedding.md,
# "First boot only"), and the modules where grub-install puts them, so that the
# EFI image tests/vm/debian.py makes loads them from the root filesystem.
GRUB_CUSTOMIZE = CUSTOMIZE + r"""
mkdir -p "$root/etc/default/grub.d"
cat >"$root/etc/default/grub.d/50-image.cfg" <<'END'
GRUB_TIMEOUT=0
GRUB_TERMINAL=console
GRUB_DISABLE_OS_PROBER=true
GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0 panic=-1"
END
sed -i -e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="\\\${provision_firstboot}"/' "$root/etc/default/grub"
grep -qF '"\${provision_firstboot}"' "$root/etc/default/grub"
cat >"$root/etc/grub.d/05_provision" <<'END'
#!/bin/sh
cat <<'CFG'
set provision_firstboot=""
if [ -f /provision.firstboot ]; then set provision_firstboot="provision.firstboot"; fi
if [ -f /boot/provision.firstboot ]; then set provision_firstboot="provision.firstboot"; fi
CFG
END
chmod 755 "$root/etc/grub.d/05_provision"
mkdir -p "$root/boot/grub"
cp -r "$root/usr/lib/grub/x86_64-efi" "$root/boot/grub/"
"""
GRUB = Flavour("debian-grub", (*PACKAGES, "grub-efi-amd64"), GRUB_CUSTOMIZE, (("grub", "efi-1"),))


def recipe(flavour: Flavour = BASE) -> dict[str, object]:
    # The sources are not part of the recipe: a mirror change must not rebuild.
    return {"format": 1, "suite": SUITE, "packages": flavour.packages, "customize": flavour.customize,
            "size_mib": IMAGE_SIZE_MIB, "variant": "minbase", **dict(flavour.extra)}


def recipe_hash(flavour: Flavour = BASE) -> str:
    return hashlib.sha256(json.dumps(recipe(flavour), sort_keys=True).encode()).hexdigest()[:16]


def cached_image(flavour: Flavour = BASE) -> Path:
    return CACHE / f"{flavour.name}-{SUITE}-{recipe_hash(flavour)}.img"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time (parallel sessions wait for the first one's image)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_image(log: Path | None = None, flavour: Flavour = BASE) -> Path:
    """The cached image, built first if missing (a few minutes: downloads ~100 MiB)."""
    image = cached_image(flavour)
    if image.exists():
        return image
    with _locked(CACHE / f".{flavour.name}-image.lock"):
        if image.exists():
            return image
        _build(image, log, flavour)
    return image


def _build(image: Path, log: Path | None, flavour: Flavour) -> None:
    work = CACHE / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    tree = work / "root"
    tree.mkdir(parents=True)
    sources = []
    for number, text in enumerate(apt_sources()):
        sources.append(work / f"sources-{number}")
        sources[-1].write_text(text)
    hook = work / "customize.sh"
    hook.write_text(flavour.customize)
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
            "--include=" + ",".join(flavour.packages),
            f"--customize-hook=sh {hook} \"$1\"",
            SUITE, str(tree), *map(str, sources)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
        if log is not None:
            log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed ({done.returncode}):\n{done.stderr[-3000:]}")
        partial = work / "image.img"
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(partial),
                        f"{IMAGE_SIZE_MIB}M"], check=True, capture_output=True)
        partial.rename(image)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Images of older recipes are dead weight.
    for old in CACHE.glob(f"{flavour.name}-{SUITE}-*.img"):
        if old != image:
            old.unlink(missing_ok=True)


if __name__ == "__main__":  # build (or find) the images: python -m tests.vm.debian_image
    for each in (BASE, GRUB):
        print(ensure_image(flavour=each))
