"""Benchmark: ``provision validate`` vs ``ignition-validate``, whole processes, cold.

Two workloads, each written twice from the same data (a provision 1.0.0
config and the equivalent Ignition 3.3.0 config):

- small: ``examples/users-and-ssh-keys.json`` (only Ignition fields, so its
  Ignition twin differs in the version key alone);
- large: a generated config with 1,000 files (every tenth with a sha512
  verification hash), 50 systemd units (with [Install] sections, enabled) and
  10 users with SSH keys.

Every run is a fresh process (nothing kept warm but the OS page cache). The
commands are interleaved run by run so that load from other processes on the
machine hits both tools alike. Python runs with compiled bytecode, as an
installed package would (kept in a temporary PYTHONPYCACHEPREFIX, so the
working tree is not touched). Reported: median wall time and median CPU time
(user+sys, from wait4), which is steadier than wall time on a busy machine.

Usage: ``python benchmarks/validate_bench.py [--runs 30] [--importtime]``.
Prints a Markdown table (and, with --importtime, the slowest imports of one
``provision validate`` run) for docs/performance.md, section
"provision validate".
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from process_timing import machine as machine_summary
from process_timing import timed

ROOT = Path(__file__).resolve().parent.parent
PROVISION = Path(sys.executable).with_name("provision")
IGNITION_VALIDATE = shutil.which("ignition-validate")
SMALL_EXAMPLE = ROOT / "examples" / "users-and-ssh-keys.json"


# -- workloads ---------------------------------------------------------------


def data_url(text: str) -> str:
    return "data:," + urllib.parse.quote(text, safe="")


def generated_sections(files: int, units: int, users: int) -> dict[str, Any]:
    """storage/systemd/passwd sections valid in both provision 1.0.0 and Ignition 3.3.0."""
    file_entries = []
    for i in range(files):
        body = f"# generated file {i}\nkey_{i} = value {i * 7}\n"
        entry: dict[str, Any] = {
            "path": f"/etc/bench/{i // 100:02d}/file-{i:04d}.conf",
            "mode": 0o644,
            "overwrite": True,
            "contents": {"source": data_url(body)},
        }
        if i % 10 == 0:
            digest = hashlib.sha512(body.encode()).hexdigest()
            entry["contents"]["verification"] = {"hash": f"sha512-{digest}"}
        file_entries.append(entry)
    unit_entries = [
        {
            "name": f"bench-{i:02d}.service",
            "enabled": True,
            "contents": (
                f"[Unit]\nDescription=Benchmark service {i}\nAfter=network-online.target\n\n"
                f"[Service]\nType=oneshot\nExecStart=/usr/bin/true {i}\n\n"
                "[Install]\nWantedBy=multi-user.target\n"
            ),
        }
        for i in range(units)
    ]
    user_entries = [
        {
            "name": f"user{i:02d}",
            "uid": 2000 + i,
            "groups": ["wheel"] if i % 2 else [],
            "shell": "/bin/bash",
            "sshAuthorizedKeys": [
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPyGVOfUfmw27/F78v6TXWD0VBXaYwXWsfjVmmMwnLJ6"
                f" user{i}@bench"
            ],
        }
        for i in range(users)
    ]
    return {
        "storage": {"files": file_entries},
        "systemd": {"units": unit_entries},
        "passwd": {"users": user_entries},
    }


def as_provision(sections: dict[str, Any]) -> dict[str, Any]:
    return {"provision": {"version": "1.0.0"}, **sections}


def as_ignition(sections: dict[str, Any]) -> dict[str, Any]:
    return {"ignition": {"version": "3.3.0"}, **sections}


@dataclass
class Workload:
    name: str
    provision_config: Path
    ignition_config: Path | None  # None: provision only (e.g. the YAML form)


def write_workloads(directory: Path) -> list[Workload]:
    small = json.loads(SMALL_EXAMPLE.read_text())
    small_sections = {k: v for k, v in small.items() if k != "provision"}
    large_sections = generated_sections(files=1000, units=50, users=10)
    workloads = []
    for name, sections in (("small", small_sections), ("large", large_sections)):
        own, ign = directory / f"{name}.provision.json", directory / f"{name}.ign.json"
        own.write_text(json.dumps(as_provision(sections), indent=2))
        ign.write_text(json.dumps(as_ignition(sections), indent=2))
        workloads.append(Workload(name, own, ign))
    # The same large config as YAML: the loader's other path (Ignition reads JSON only).
    import yaml

    own_yaml = directory / "large.provision.yaml"
    own_yaml.write_text(yaml.safe_dump(as_provision(large_sections), sort_keys=False))
    workloads.append(Workload("large, as YAML", own_yaml, None))
    return workloads


# -- timing ------------------------------------------------------------------


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median_ms(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


def bench_env(pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def commands(workload: Workload) -> dict[str, list[str]]:
    found = {"provision validate": [str(PROVISION), "validate", str(workload.provision_config)]}
    if IGNITION_VALIDATE and workload.ignition_config is not None:
        found["ignition-validate"] = [IGNITION_VALIDATE, str(workload.ignition_config)]
    return found


def baseline(runs: int, env: dict[str, str]) -> Samples:
    """A bare interpreter start (``python -c pass``): the floor under any Python tool."""
    samples = Samples()
    for _ in range(runs):
        wall, cpu = timed([sys.executable, "-c", "pass"], env)
        samples.wall.append(wall)
        samples.cpu.append(cpu)
    return samples


def measure(workload: Workload, runs: int, env: dict[str, str]) -> dict[str, Samples]:
    argvs = commands(workload)
    samples = {name: Samples() for name in argvs}
    for argv in argvs.values():  # warm-up: bytecode cache, page cache
        for _ in range(3):
            timed(argv, env)
    for _ in range(runs):
        for name, argv in argvs.items():
            wall, cpu = timed(argv, env)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
    return samples


# -- report ------------------------------------------------------------------


def machine() -> str:
    ignition = "not installed"
    if IGNITION_VALIDATE:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ignition"],
                              capture_output=True, text=True)
        ignition = done.stdout.strip() or "installed"
    return f"{machine_summary()}, ignition {ignition}"


def importtime(workload: Workload, env: dict[str, str], top: int = 12) -> str:
    """The slowest imports (cumulative) of one ``provision validate`` process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "provision", "validate",
         str(workload.provision_config)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        self_us, cumulative_us, name = int(parts[0]), int(parts[1]), parts[2]
        if not name.startswith("   "):  # two-space indent per level: keep top level only
            rows.append((cumulative_us, self_us, name.strip()))
    rows.sort(reverse=True)
    lines = ["| top-level import | cumulative ms | self ms |", "|---|---:|---:|"]
    lines += [f"| `{n}` | {c / 1000:.1f} | {s / 1000:.1f} |" for c, s, n in rows[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--importtime", action="store_true",
                        help="also list the slowest imports of one provision validate run")
    args = parser.parse_args()
    if not PROVISION.exists():
        raise SystemExit(f"{PROVISION} not found: run from the project's virtualenv")
    if not IGNITION_VALIDATE:
        print("ignition-validate not found (apt-get install ignition): timing provision alone",
              file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
        directory = Path(tmp)
        env = bench_env(directory / "pycache")
        workloads = write_workloads(directory)
        print(f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
              f"Median of {args.runs} interleaved runs each.\n")
        print("| config | size | tool | median wall ms | median CPU ms |")
        print("|---|---:|---|---:|---:|")
        for workload in workloads:
            for name, samples in measure(workload, args.runs, env).items():
                wall, cpu = samples.median_ms()
                config = workload.provision_config
                if name == "ignition-validate" and workload.ignition_config is not None:
                    config = workload.ignition_config
                size = config.stat().st_size / 1024
                print(f"| {workload.name} | {size:.1f} KiB | {name} | {wall:.1f} | {cpu:.1f} |",
                      flush=True)
        wall, cpu = baseline(args.runs, env).median_ms()
        print(f"| (none) | | `python -c pass` | {wall:.1f} | {cpu:.1f} |")
        if args.importtime:
            print()
            print(importtime(workloads[0], env))


if __name__ == "__main__":
    main()
