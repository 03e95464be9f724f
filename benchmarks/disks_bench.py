"""Benchmark: 4 partitions + 4 filesystems on a 2 GiB loop image (root only).

Side by side in the same run, alternating, on a fresh sparse image each time:

- floor: a plain shell script doing the same work with the tools directly
  (one sgdisk, partx, mkfs.vfat, mkswap, mkfs.xfs, mkfs.ext4);
- provision: the whole process ``provision apply --root DIR --stages disks CONFIG``
  (start-up, config parsing and validation, planning, one sgdisk commit, the
  kernel refresh, waiting for nodes and links, probing, mkfs).

Usage: sudo .venv/bin/python benchmarks/disks_bench.py [--runs N]
Prints a Markdown table; the target is provision within 1.2x of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROVISION = [str(REPO / ".venv/bin/python"), "-m", "provision"]

MKFS_TAIL = """\
partx -u --nr 1:128 "$dev"
mkfs.vfat -n EFI "${dev}p1" >/dev/null
mkswap -L swap "${dev}p2" >/dev/null
mkfs.xfs -f -q -L var "${dev}p3"
mkfs.ext4 -F -q -L root "${dev}p4"
"""
FLOOR_SCRIPT = (
    "set -e\ndev=$1\n"
    "sgdisk -n1:0:+256M -t1:C12A7328-F81F-11D2-BA4B-00A0C93EC93B -c1:efi"
    " -n2:0:+256M -t2:0657FD6D-A4AB-43C4-84E5-0933C84B4F4F -c2:swap"
    ' -n3:0:+512M -c3:var -n4:0:0 -c4:root "$dev" >/dev/null\n' + MKFS_TAIL
)
# The same work with sfdisk instead of sgdisk: sgdisk sleeps a full second after
# writing on Linux (before asking the kernel to re-read), which the sgdisk floor
# pays and provision (writing with sfdisk) does not. This is the stricter floor.
FLOOR_SFDISK_SCRIPT = (
    "set -e\ndev=$1\n"
    "sfdisk --quiet --no-reread --no-tell-kernel \"$dev\" <<'EOF'\n"
    "label: gpt\n"
    "size=256MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=efi\n"
    "size=256MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap\n"
    "size=512MiB, name=var\n"
    "name=root\n"
    "EOF\n" + MKFS_TAIL
)


def provision_config(device: str) -> dict[str, object]:
    return {
        "provision": {"version": "1.0.0"},
        "storage": {
            "disks": [{"device": device, "partitions": [
                {"number": 1, "label": "efi", "sizeMiB": 256,
                 "typeGuid": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"},
                {"number": 2, "label": "swap", "sizeMiB": 256,
                 "typeGuid": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"},
                {"number": 3, "label": "var", "sizeMiB": 512},
                {"number": 4, "label": "root", "sizeMiB": 0},
            ]}],
            "filesystems": [
                {"device": "/dev/disk/by-partlabel/efi", "format": "vfat", "label": "EFI"},
                {"device": "/dev/disk/by-partlabel/swap", "format": "swap", "label": "swap"},
                {"device": "/dev/disk/by-partlabel/var", "format": "xfs", "label": "var"},
                {"device": "/dev/disk/by-partlabel/root", "format": "ext4", "label": "root"},
            ],
        },
    }


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def fresh_device(image: Path) -> str:
    with open(image, "wb") as handle:
        handle.truncate(2 << 30)
    return sh("losetup", "-P", "-f", "--show", str(image)).strip()


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def check_layout(device: str) -> None:
    """Both contenders must produce the same thing: 4 partitions, 4 signatures."""
    types = [sh("blkid", "-p", "-s", "TYPE", "-o", "value", f"{device}p{n}").strip()
             for n in range(1, 5)]
    if types != ["vfat", "swap", "xfs", "ext4"]:
        raise SystemExit(f"unexpected result on {device}: {types}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (loop devices)", file=sys.stderr)
        return 2
    times: dict[str, list[float]] = {
        "floor (shell + tools)": [], "floor with sfdisk": [], "provision apply": []}
    with tempfile.TemporaryDirectory(prefix="disks-bench-") as scratch:
        work = Path(scratch)
        image = work / "disk.img"
        script = work / "floor.sh"
        script.write_text(FLOOR_SCRIPT)
        sfdisk_script = work / "floor-sfdisk.sh"
        sfdisk_script.write_text(FLOOR_SFDISK_SCRIPT)
        env = {**os.environ, "PROVISION_STATE_DIR": str(work / "state")}
        for run in range(args.runs):
            order = list(times)
            if run % 2:
                order.reverse()
            for name in order:
                device = fresh_device(image)
                try:
                    if name == "floor with sfdisk":
                        seconds = timed(["bash", str(sfdisk_script), device])
                    elif name.startswith("floor"):
                        seconds = timed(["sh", str(script), device])
                    else:
                        root = work / f"root{run}"
                        root.mkdir()
                        config = work / "config.json"
                        config.write_text(json.dumps(provision_config(device)))
                        seconds = timed([*PROVISION, "apply", "--root", str(root),
                                         "--stages", "disks", str(config)], env)
                    check_layout(device)
                finally:
                    subprocess.run(["losetup", "-d", device], check=False)
                    image.unlink()
                times[name].append(seconds)
    floor = statistics.median(times["floor (shell + tools)"])
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"kernel {platform.release()}; {time.strftime('%Y-%m-%d')}; runs: {args.runs}")
    print()
    print("| contender | median s | min s | max s | vs floor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | "
              f"{median / floor:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
