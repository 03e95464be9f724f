"""RAID1, LUKS2 and btrfs subvolumes made by a real first boot (QEMU, TCG).

This test machine's kernel has neither md nor device-mapper, so the disks
stage's arrays and encrypted volumes are proven here, in a guest whose
kernel has both. Boot 1 provisions three blank disks from a fw_cfg config;
the host then checks them with independent tools (mdadm --examine,
cryptsetup luksDump and --test-passphrase, blkid, an ext4 mount of a RAID1
member's data area). Boot 2 is a normal boot with the first-boot flag still
set: nothing is provisioned again and no disk changes. Boot 3 runs a small
check program as the initramfs' init (the host cannot open md or LUKS):
it assembles the array and opens both volumes read-only, with the keys the
root keeps, and prints the files written on them.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vm import guest
from tests.vm.conftest import VmEnv
from tests.vm.guest import record_timings

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

BOOT_TIMEOUT = 300
FIRSTBOOT = "root=/dev/vda ro provision.firstboot panic=-1"
FEATURES = "ext4 btrfs raid luks"
KEY = b"vm vault key: correct horse battery staple\n"
# Cheap key derivation: argon2's default benchmark costs seconds under TCG.
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
FILES = {
    "/var/lib/mirror/hello.txt": "on the mirror\n",
    "/var/lib/vault/secret.txt": "in the vault\n",
    "/var/lib/scratch/note.txt": "behind a random key\n",
    "/srv/data/d.txt": "in subvolume data\n",
    "/srv/logs/l.txt": "in subvolume logs\n",
}
CHECK_MARKER = "RAIDLUKS-CHECK"


def data_url(data: bytes) -> str:
    return "data:;base64," + base64.b64encode(data).decode()


def config() -> dict[str, object]:
    return {
        "provision": {"version": "1.0.0"},
        "storage": {
            "disks": [
                {"device": "/dev/vdb", "wipeTable": True,
                 "partitions": [{"number": 1, "label": "mirror-a", "sizeMiB": 40}]},
                {"device": "/dev/vdc", "wipeTable": True,
                 "partitions": [{"number": 1, "label": "mirror-b", "sizeMiB": 40}]},
                {"device": "/dev/vdd", "wipeTable": True, "partitions": [
                    {"number": 1, "label": "vault", "sizeMiB": 40},
                    {"number": 2, "label": "scratch", "sizeMiB": 40},
                    {"number": 3, "label": "pool", "sizeMiB": 0},
                ]},
            ],
            "raid": [{"name": "mirror", "level": "raid1",
                      "devices": ["/dev/disk/by-partlabel/mirror-a", "/dev/disk/by-partlabel/mirror-b"]}],
            "luks": [
                {"name": "vault", "device": "/dev/disk/by-partlabel/vault", "label": "vault-luks",
                 "keyFile": {"source": data_url(KEY)}, "discard": True, "options": FAST_KDF},
                {"name": "scratch", "device": "/dev/disk/by-partlabel/scratch",
                 "label": "scratch-luks", "options": FAST_KDF},
            ],
            "filesystems": [
                {"device": "/dev/md/mirror", "format": "ext4", "label": "MIRROR",
                 "path": "/var/lib/mirror"},
                {"device": "/dev/mapper/vault", "format": "ext4", "label": "VAULT",
                 "path": "/var/lib/vault"},
                {"device": "/dev/mapper/scratch", "format": "ext4", "label": "SCRATCH",
                 "path": "/var/lib/scratch"},
                {"device": "/dev/disk/by-partlabel/pool", "format": "btrfs", "label": "POOL",
                 "subvolumes": [{"name": "data", "path": "/srv/data"},
                                {"name": "logs", "path": "/srv/logs"}]},
            ],
            "files": [
                {"path": path, "mode": 0o644, "contents": {"source": data_url(text.encode())}}
                for path, text in FILES.items()
            ],
        },
    }


@dataclass(frozen=True)
class Disks:
    root: Path
    mirror_a: Path
    mirror_b: Path
    crypt: Path

    @property
    def data(self) -> list[Path]:
        return [self.mirror_a, self.mirror_b, self.crypt]

    def all(self) -> list[Path]:
        return [self.root, *self.data]


def digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: guest.sha256_file(p) for p in paths}


def assert_booted(boot: guest.Boot) -> None:
    assert boot.status == 0 and guest.INIT_MARKER in boot.console, (
        f"the guest did not reach its root filesystem ({boot.stopped_at}):\n{boot.console[-6000:]}"
    )


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode(errors="replace")


# --- the initramfs with RAID and LUKS tooling, and the check program ---------------

@pytest.fixture(scope="module")
def raid_luks_initrd(vm_env: VmEnv) -> Path:
    """The hooks' initramfs with PROVISION_DISK_FEATURES naming raid, luks and btrfs."""
    kver = guest.kernel_version()
    assert kver is not None
    return guest.build_initramfs(vm_env.workdir / "initrd-raid-luks.img", vm_env.workdir, kver,
                                 env={"PROVISION_DISK_FEATURES": FEATURES})


CHECK_INIT = f"""#!/bin/sh
# Boot 3's init, inside the initramfs: open everything read-only, print, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /run
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mkdir -p /run/mdadm /run/cryptsetup /mnt/root /mnt/m /mnt/v /mnt/s /mnt/d /mnt/l
say() {{ echo "{CHECK_MARKER} $*"; }}
for m in virtio_pci virtio_blk ext4 btrfs raid1 dm_crypt xts; do modprobe "$m" || say "modprobe $m failed"; done
n=0; while [ ! -e /sys/class/block/vdd3 ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n+1)); done
mount -o ro /dev/vda /mnt/root || say "root mount failed"
mdadm --assemble --readonly /dev/md/mirror /dev/vdb1 /dev/vdc1 2>&1 || say "mdadm failed"
say "md $(cat /sys/block/md*/md/level) $(cat /sys/block/md*/md/raid_disks) $(grep -o '\\[UU\\]' /proc/mdstat)"
cryptsetup open --readonly --key-file /mnt/root/etc/luks/vault /dev/vdd1 vault || say "open vault failed"
cryptsetup open --readonly --key-file /mnt/root/etc/luks/scratch /dev/vdd2 scratch || say "open scratch failed"
mount -o ro,noload /dev/md/mirror /mnt/m || say "mount mirror failed"
mount -o ro,noload /dev/mapper/vault /mnt/v || say "mount vault failed"
mount -o ro,noload /dev/mapper/scratch /mnt/s || say "mount scratch failed"
mount -t btrfs -o ro,subvol=data /dev/vdd3 /mnt/d || say "mount data failed"
mount -t btrfs -o ro,subvol=logs /dev/vdd3 /mnt/l || say "mount logs failed"
for f in /mnt/m/hello.txt /mnt/v/secret.txt /mnt/s/note.txt /mnt/d/d.txt /mnt/l/l.txt; do
  say "file $f $(base64 -w0 < "$f")"
done
say "done"
umount /mnt/m /mnt/v /mnt/s /mnt/d /mnt/l /mnt/root
cryptsetup close vault; cryptsetup close scratch; mdadm --stop /dev/md/mirror
sync
busybox poweroff -f || echo o > /proc/sysrq-trigger
sleep 10
"""


def check_initrd(base: Path, out: Path) -> Path:
    """``base`` with an uncompressed cpio appended that adds /provision-check (the kernel
    unpacks concatenated archives in order): boot it with rdinit=/provision-check."""
    tree = out.with_suffix(".tree")
    tree.mkdir(parents=True, exist_ok=True)
    script = tree / "provision-check"
    script.write_text(CHECK_INIT)
    script.chmod(0o755)
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=tree,
                             input=b"provision-check\n", capture_output=True, check=True).stdout
    head = base.read_bytes()
    # The kernel looks for the next archive only at 4-byte boundaries (zeros between).
    out.write_bytes(head + b"\0" * (-len(head) % 512) + archive)
    return out


# --- boot 1 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def first_boot(vm_env: VmEnv, raid_luks_initrd: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[guest.Boot, Disks]:
    work = tmp_path_factory.mktemp("raidluks")
    disks = Disks(guest.build_root_image(work / "root.img"),
                  guest.blank_disk(work / "mirror-a.img", 48),
                  guest.blank_disk(work / "mirror-b.img", 48),
                  guest.blank_disk(work / "crypt.img", 320))
    cfg = work / "config.json"
    cfg.write_text(json.dumps(config()))
    vm = guest.Vm(vm_env.kernel, raid_luks_initrd, disks.all(), FIRSTBOOT, fw_cfg=cfg)
    boot = vm.boot(work / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("fw_cfg first boot: RAID1, 2 LUKS2 volumes, btrfs subvolumes", boot)
    return boot, disks


def _member_partition(image: Path) -> guest.Partition:
    (part,) = guest.partitions(image)
    return part


def test_raid1_members_carry_the_array_and_its_ext4(
    first_boot: tuple[guest.Boot, Disks], tmp_path: Path
) -> None:
    boot, disks = first_boot
    assert_booted(boot)
    uuids = set()
    for image, label in ((disks.mirror_a, "mirror-a"), (disks.mirror_b, "mirror-b")):
        part = _member_partition(image)
        assert part.name == label and part.size == 40 << 20
        with guest.loop_device(image, part) as dev:
            assert guest.probe(dev)["TYPE"] == "linux_raid_member"
            # mdadm reads the superblock itself: no md driver needed.
            examine = sh("mdadm", "--examine", dev)
        assert re.search(r"Raid Level : raid1\b", examine), examine
        assert re.search(r"Raid Devices : 2\b", examine), examine
        assert re.search(r"Name : (\S+:)?mirror\b", examine), examine
        uuids.add(re.search(r"Array UUID : (\S+)", examine).group(1))  # type: ignore[union-attr]
        # Metadata 1.2 keeps the data after a gap: mount the ext4 found there.
        offset = int(re.search(r"Data Offset : (\d+) sectors", examine).group(1))  # type: ignore[union-attr]
        size = int(re.search(r"Array Size : (\d+) KiB", examine).group(1)) * 2  # type: ignore[union-attr]
        data = guest.Partition(part.number, label, part.start + offset * 512, size * 512)
        with guest.loop_device(image, data) as dev:
            fs = guest.probe(dev)
        assert (fs["TYPE"], fs["LABEL"]) == ("ext4", "MIRROR")
        with guest.mounted(image, tmp_path / f"mnt-{label}", data) as mnt:
            assert (mnt / "hello.txt").read_text() == FILES["/var/lib/mirror/hello.txt"]
    assert len(uuids) == 1  # both members of one array


def test_luks2_volumes_have_their_labels_keys_and_crypttab(
    first_boot: tuple[guest.Boot, Disks], tmp_path: Path
) -> None:
    boot, disks = first_boot
    assert_booted(boot)
    parts = {p.name: p for p in guest.partitions(disks.crypt)}
    assert set(parts) == {"vault", "scratch", "pool"}
    with guest.mounted(disks.root, tmp_path / "mnt-root") as root:
        crypttab = (root / "etc/crypttab").read_text()
        keys = {name: root / "etc/luks" / name for name in ("vault", "scratch")}
        modes = {name: key.stat().st_mode & 0o777 for name, key in keys.items()}
        key_bytes = {name: key.read_bytes() for name, key in keys.items()}
        assert (root / "etc/luks").stat().st_mode & 0o777 == 0o700
        record = json.loads((root / "etc/.provision/result.json").read_text())
        # The mount stage's mounts were undone: the files are on their disks only.
        leftovers = [p for p in FILES if (root / p.lstrip("/")).exists()]
    assert record["status"] == "succeeded"
    assert leftovers == []
    assert modes == {"vault": 0o400, "scratch": 0o400}
    assert key_bytes["vault"] == KEY
    assert len(key_bytes["scratch"]) >= 32 and key_bytes["scratch"] != KEY

    lines = {line.split()[0]: line.split() for line in crypttab.splitlines() if line.strip()}
    for name, label in (("vault", "vault-luks"), ("scratch", "scratch-luks")):
        with guest.loop_device(disks.crypt, parts[name]) as dev:
            found = guest.probe(dev)
            dump = sh("cryptsetup", "luksDump", dev)
            uuid = sh("cryptsetup", "luksUUID", dev).strip()
            # The key the root keeps opens the volume (key slot check, no dm needed).
            (tmp_path / name).write_bytes(key_bytes[name])
            sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(tmp_path / name), dev)
        assert (found["TYPE"], found["VERSION"], found["LABEL"]) == ("crypto_LUKS", "2", label)
        assert re.search(r"^Version:\s+2$", dump, re.M) and re.search(rf"^Label:\s+{label}$", dump, re.M)
        assert lines[name][:3] == [name, f"UUID={uuid}", f"/etc/luks/{name}"]
        if name == "vault":
            assert "allow-discards" in dump
            assert "discard" in lines[name][3].split(",")
    # The config's own key file opens the vault too; a wrong key does not.
    (tmp_path / "config.key").write_bytes(KEY)
    (tmp_path / "wrong.key").write_bytes(b"not the key\n")
    with guest.loop_device(disks.crypt, parts["vault"]) as dev:
        sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(tmp_path / "config.key"), dev)
        wrong = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file",
                                str(tmp_path / "wrong.key"), dev], capture_output=True)
        assert wrong.returncode != 0


def test_btrfs_pool_has_its_subvolumes(first_boot: tuple[guest.Boot, Disks], tmp_path: Path) -> None:
    boot, disks = first_boot
    assert_booted(boot)
    pool = {p.name: p for p in guest.partitions(disks.crypt)}["pool"]
    with guest.loop_device(disks.crypt, pool) as dev:
        fs = guest.probe(dev)
        assert (fs["TYPE"], fs["LABEL"]) == ("btrfs", "POOL")
        top = tmp_path / "mnt-pool"
        top.mkdir()
        sh("mount", "-t", "btrfs", "-o", "ro", dev, str(top))
        try:
            listing = sh("btrfs", "subvolume", "list", str(top))
            # Mounted by name in the guest: each file landed in its own subvolume.
            contents = {p: (top / p).read_text() for p in ("data/d.txt", "logs/l.txt")}
            stray = sorted(str(p.relative_to(top)) for p in top.rglob("*.txt"))
        finally:
            sh("umount", str(top))
    assert sorted(line.split()[-1] for line in listing.splitlines()) == ["data", "logs"]
    assert contents == {"data/d.txt": FILES["/srv/data/d.txt"], "logs/l.txt": FILES["/srv/logs/l.txt"]}
    assert stray == ["data/d.txt", "logs/l.txt"]


# --- boots 2 and 3 --------------------------------------------------------------------

def test_second_boot_changes_nothing_and_the_volumes_open_with_the_roots_keys(
    first_boot: tuple[guest.Boot, Disks], vm_env: VmEnv, raid_luks_initrd: Path, tmp_path: Path
) -> None:
    first, disks = first_boot
    assert_booted(first)
    before = digests(disks.data)
    cfg = tmp_path / "other.json"
    other = config()
    other["storage"]["files"] = []  # type: ignore[index]
    cfg.write_text(json.dumps(other))
    second = guest.Vm(vm_env.kernel, raid_luks_initrd, disks.all(), FIRSTBOOT, fw_cfg=cfg).boot(
        tmp_path / "serial-2.log", timeout=BOOT_TIMEOUT)
    record_timings("second boot of the RAID/LUKS disks (skipped)", second)
    assert_booted(second)
    assert "not provisioning again" in second.console
    assert "provision: disks:" not in second.console
    assert digests(disks.data) == before

    initrd = check_initrd(raid_luks_initrd, tmp_path / "initrd-check.img")
    third = guest.Vm(vm_env.kernel, initrd, disks.all(),
                     "rdinit=/provision-check panic=-1").boot(tmp_path / "serial-3.log",
                                                               timeout=BOOT_TIMEOUT)
    console = third.console
    assert f"{CHECK_MARKER} done" in console, console[-6000:]
    problems = [line for line in console.splitlines() if "failed" in line and CHECK_MARKER in line]
    assert problems == [], console[-6000:]
    assert re.search(rf"{CHECK_MARKER} md raid1 2 \[UU\]", console), console[-6000:]
    printed = {
        m.group(1): base64.b64decode(m.group(2)).decode()
        for m in re.finditer(rf"{CHECK_MARKER} file (\S+) (\S*)", console)
    }
    assert digests(disks.data) == before  # all opened read-only
    assert printed == {
        "/mnt/m/hello.txt": FILES["/var/lib/mirror/hello.txt"],
        "/mnt/v/secret.txt": FILES["/var/lib/vault/secret.txt"],
        "/mnt/s/note.txt": FILES["/var/lib/scratch/note.txt"],
        "/mnt/d/d.txt": FILES["/srv/data/d.txt"],
        "/mnt/l/l.txt": FILES["/srv/logs/l.txt"],
    }
