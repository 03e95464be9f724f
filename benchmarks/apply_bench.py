#!/usr/bin/env python3
"""Benchmark: `provision apply` vs Ignition's files stage on the same config.

A generated config with 1,000 files (inline data: contents in 40 directories,
some with append and modes), 50 units (contents, a drop-in each, enabled with
[Install] sections, a few masked) and 10 users is applied into a fresh
minimal root, side by side in the same run:

- provision: `python -m provision apply --stages users,files,units --root R C`
  (a whole process: start-up, parse, validate, apply, result record);
- Ignition 2.14: `ignition -stage fetch` then `-stage files` with
  `-platform file` on the equivalent Ignition 3.3.0 config (its files stage
  stops at the SELinux relabel step, after everything is written).

Each side runs ROUNDS times on a fresh root; the median wall time and the peak
RSS (ru_maxrss of the process, via wait4) are reported. Usage:

    .venv/bin/python benchmarks/apply_bench.py [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")
FILES, UNITS, USERS = 1000, 50, 10


def ed25519_key(seed: int) -> str:
    """A well-formed OpenSSH ed25519 public key line (wire format: type, 32-byte key)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + bytes([seed]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} user{seed}@bench"


def body(with_users: bool = True) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    for i in range(FILES):
        entry: dict[str, Any] = {
            "path": f"/etc/bench/d{i % 40:02d}/file-{i:04d}.conf",
            "contents": {"source": "data:," + quote(f"# file {i}\nkey{i}=value {i}\n" * 4)},
        }
        if i % 10 == 0:
            entry["mode"] = 0o600
        if i % 25 == 0:
            entry["append"] = [{"source": "data:," + quote(f"extra={i}\n")}]
        files.append(entry)
    units: list[dict[str, Any]] = []
    for i in range(UNITS):
        name = f"bench-{i:02d}.service"
        if i % 10 == 9:
            units.append({"name": name, "mask": True})
            continue
        units.append({
            "name": name, "enabled": True,
            "contents": f"[Unit]\nDescription=bench {i}\n[Service]\nExecStart=/bin/true {i}\n"
                        "[Install]\nWantedBy=multi-user.target\n",
            "dropins": [{"name": "10-env.conf", "contents": f"[Service]\nEnvironment=N={i}\n"}],
        })
    users = [{"name": f"user{i:02d}", "uid": 2000 + i, "sshAuthorizedKeys": [ed25519_key(i)]}
             for i in range(USERS)]
    spec: dict[str, Any] = {"storage": {"files": files}, "systemd": {"units": units}}
    if with_users:
        spec["passwd"] = {"users": users}
    return spec


def fresh_root(path: Path) -> Path:
    etc = path / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\n")
    for name in ("shadow", "gshadow"):
        os.chmod(etc / name, 0o640)
    (path / "home").mkdir()
    return path


CPU: dict[str, list[float]] = {"provision": [], "ignition": []}


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS KiB, exit status, output tail) of one whole process.

    Its CPU time (user + system, less disturbed by a busy machine than wall
    time) is added to CPU under the side's name.
    """
    # Start from clean page cache state: provision's syncfs would otherwise also
    # flush what the previous contender (Ignition never syncs) left dirty.
    os.sync()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    side = "ignition" if argv[0] == str(IGNITION) else "provision"
    CPU[side].append(usage.ru_utime + usage.ru_stime)
    return wall, usage.ru_maxrss, proc.returncode, output.decode(errors="replace")[-600:]


def run_provision(work: Path, config: Path) -> tuple[float, int, dict[str, float]]:
    """(wall, peak RSS, seconds per stage as the run reports them)."""
    root = fresh_root(work / "provision-root")
    # As an installed package runs: with its byte-code cache (a warm-up round writes it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    wall, rss, status, out = timed([sys.executable, "-m", "provision", "apply", "--stages",
                                    "users,files,units", "--root", str(root), str(config)], env)
    if status != 0:
        raise SystemExit(f"provision apply failed ({status}):\n{out}")
    stages = {m[1]: float(m[2]) for m in re.finditer(r"^(\w+): applied \(\d+ changes, ([\d.]+) s\)", out, re.M)}
    return wall, rss, stages


def run_ignition(work: Path, config: Path) -> tuple[float, float, int]:
    root = fresh_root(work / "ignition-root")
    env = {**os.environ, "IGNITION_CONFIG_FILE": str(config)}
    common = ["-platform", "file", "-root", str(root), "-log-to-stdout",
              "-config-cache", str(work / "ign-cache.json"), "-state-file", str(work / "ign-state")]
    fetch_wall, fetch_rss, status, out = timed([str(IGNITION), "-stage", "fetch", *common], env)
    if status != 0:
        raise SystemExit(f"ignition fetch failed:\n{out}")
    files_wall, files_rss, status, out = timed([str(IGNITION), "-stage", "files", *common], env)
    if status != 0 and "relabel" not in out:
        raise SystemExit(f"ignition files failed:\n{out}")
    written = sum(1 for _ in (root / "etc/bench").rglob("*.conf"))
    if written != FILES:
        raise SystemExit(f"ignition wrote {written} of {FILES} files")
    return fetch_wall + files_wall, files_wall, max(fetch_rss, files_rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-users", action="store_true",
                        help="leave the users out: compare the files and units work alone")
    args = parser.parse_args()

    spec = body(with_users=not args.no_users)
    ours: list[tuple[float, int, dict[str, float]]] = []
    theirs: list[tuple[float, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # Ignition writes SSH keys as the user: the path must be traversable
        ours_config = work / "provision.json"
        ours_config.write_text(json.dumps({"provision": {"version": "1.0.0"}, **spec}))
        ign_config = work / "ignition.ign"
        ign_config.write_text(json.dumps({"ignition": {"version": "3.3.0"}, **spec}))
        warm = Path(tempfile.mkdtemp(dir=work))
        os.chmod(warm, 0o755)
        run_provision(warm, ours_config)  # writes the byte-code cache; not counted
        CPU["provision"].clear()
        shutil.rmtree(warm)
        for _ in range(args.rounds):
            for side in ("provision", "ignition"):
                round_dir = Path(tempfile.mkdtemp(dir=work))
                os.chmod(round_dir, 0o755)
                if side == "provision":
                    ours.append(run_provision(round_dir, ours_config))
                elif IGNITION.exists():
                    theirs.append(run_ignition(round_dir, ign_config))
                shutil.rmtree(round_dir)
    result: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
                   f"Python {platform.python_version()}, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "config": f"{FILES} files, {UNITS} units, {0 if args.no_users else USERS} users",
        "rounds": args.rounds,
        "provision_wall_s": round(statistics.median(w for w, _, _ in ours), 3),
        "provision_peak_rss_mib": round(max(r for _, r, _ in ours) / 1024, 1),
    }
    result["provision_cpu_s"] = round(statistics.median(CPU["provision"]), 3)
    for stage in ("users", "files", "units"):
        result[f"provision_{stage}_stage_s"] = round(statistics.median(s.get(stage, 0.0) for _, _, s in ours), 3)
    if theirs:
        result.update({
            "ignition_fetch_plus_files_wall_s": round(statistics.median(t for t, _, _ in theirs), 3),
            "ignition_files_wall_s": round(statistics.median(f for _, f, _ in theirs), 3),
            "ignition_peak_rss_mib": round(max(r for _, _, r in theirs) / 1024, 1),
            # fetch + files processes of one round, summed
            "ignition_cpu_s": round(statistics.median(
                a + b for a, b in zip(CPU["ignition"][::2], CPU["ignition"][1::2], strict=True)), 3),
        })
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:34} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
