#!/usr/bin/env python3
"""Benchmark: boot-to-login of the real Debian image, with and without provisioning.

The disk of tests/vm/test_debian.py (the cached mmdebstrap root, systemd-boot
on an ESP, OVMF, this machine's kernel, the initramfs with provision's hooks),
booted under QEMU (TCG, 1 vCPU, 1 GiB) in three ways, one after the other,
each on a fresh copy of the disk:

- plain: the entry without ``provision.firstboot`` (the hooks do nothing);
- provision: first boot with a config from fw_cfg (ext4 on a blank disk, a
  mount unit and a service, a user and root with SSH keys, a file);
- provision+kargs: the same config with kernel arguments, so the first boot
  edits the entry and reboots once before provisioning.

For each: the guest's uptime when multi-user.target is reached (console) and
when the SSH login works (asked over SSH), the host's wall time from QEMU start
to the first successful login, and the engine's time per stage (its
``provision: timing:`` lines). Run as root, one VM at a time:

    .venv/bin/python benchmarks/debian_boot_bench.py [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.vm import debian, debian_image, guest
from tests.vm.test_debian import READY, config


def one_boot(work: Path, initrd: Path, kver: str, spec: dict[str, object] | None) -> dict[str, object]:
    disk = debian.make_efi_disk(debian_image.ensure_image(), work / "disk.img", kver,
                                Path(f"/boot/vmlinuz-{kver}"), initrd)
    if spec is None:  # no first-boot flag in the entry
        entry = debian.read_esp(disk, debian.ENTRY_NAME).replace(" provision.firstboot", "")
        debian.write_esp(disk, debian.ENTRY_NAME, entry, work)
    cfg = work / "config.json"
    cfg.write_text(json.dumps(spec or {}))
    port = debian.free_port()
    vm = guest.Vm(Path(), Path(), [disk, guest.blank_disk(work / "data.img", 64)], "",
                  fw_cfg=cfg if spec else None, ssh_port=port, memory_mib=1024,
                  firmware=debian.OVMF, allow_reboot=True)
    ssh = debian.Ssh(port, work / "id_ed25519")
    with vm.running(work / "serial.log", timeout=600) as run:
        ready = run.wait_for(READY)
        wall_ready = round(time.monotonic() - run.started, 1)
        user = "alice" if spec else "root"
        logged_in = spec is not None and ssh.wait(run, user)
        wall = round(time.monotonic() - run.started, 1)
        login_uptime = float(ssh.run(user, "cut -d' ' -f1 /proc/uptime").stdout) if logged_in else None
        if logged_in:
            ssh.run("root", "systemctl poweroff")
            run.wait_exit()
        console = run.console
    starts = [m.start() for m in re.finditer(r"Linux version \S+", console)] + [len(console)]
    boots = [guest.Boot(0, console[a:b], wall) for a, b in itertools.pairwise(starts)]
    return {
        "ready_uptime_s": float(ready.group(1)) if ready else None,
        "ssh_login_uptime_s": login_uptime,
        "host_wall_to_ready_s": wall_ready,
        "host_wall_to_login_s": wall if logged_in else None,
        "kernel_boots": len(boots),
        # One entry per kernel boot (two when the kernel arguments changed).
        "engine_seconds_per_stage": [b.stage_timings() for b in boots],
        "process_seconds": [b.process_timings() for b in boots],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kver = guest.kernel_version()
    assert kver is not None, "no kernel in /boot"
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        initrd = guest.build_initramfs(base / "initrd.img", base, kver)
        key = debian.ssh_key(base)
        spec = config(key.with_suffix(".pub").read_text().strip())
        plain_spec = {k: v for k, v in spec.items() if k != "kernelArguments"}
        for name, boot_spec in (("plain", None), ("provision", plain_spec), ("provision+kargs", spec)):
            work = base / name
            work.mkdir()
            for f in ("id_ed25519", "id_ed25519.pub"):
                (work / f).write_bytes((base / f).read_bytes())
            (work / "id_ed25519").chmod(0o600)
            results[name] = one_boot(work, initrd, kver, boot_spec)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "load": os.getloadavg()[0], "accelerator": "tcg"}
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
    else:
        print(json.dumps(meta))
        for name, values in results.items():
            print(f"{name}: {json.dumps(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
