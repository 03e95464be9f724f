"""Benchmark: cold time of `provision fetch --platform aws` against the AWS IMDS stand-in.

Each run is a whole new process, as at boot: interpreter start-up, imports,
IMDSv2 token PUT, user-data GET, parsing and validation, printing. Side by
side, in the same run: a bare ``python -c pass`` (the floor any Python tool
pays) and ``curl`` doing the same two HTTP requests (the floor for the
network part). Ignition and cloud-init cannot be pointed at a loopback IMDS
(their addresses are fixed), so they are not timed here.

Usage: ``python benchmarks/fetch_aws_bench.py [--runs 21]``; prints a Markdown
section for docs/performance.md ("provision fetch (AWS stand-in)").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.standins.aws_imds import AwsImds  # noqa: E402
from tests.standins.systree import make_sys_root  # noqa: E402

USER_DATA = {
    "provision": {"version": "1.0.0"},
    "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILgA4e7j1vd90q91GFaeAFUbWnUilgb/SsZOaKkMDX+1 core"]}]},
    "storage": {"files": [{"path": "/etc/motd", "mode": 420,
                           "contents": {"source": "data:,hello%0A"}}]},
    "systemd": {"units": [{"name": "hello.service", "enabled": True,
                           "contents": "[Service]\nExecStart=/bin/true\n"}]},
}


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    provision = [sys.executable, "-m", "provision"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PROVISION_") and k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp, AwsImds(json.dumps(USER_DATA).encode()) as imds:
        # Byte-code cached as in an installed package (the warm-up run writes it),
        # kept out of the source tree.
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        root = make_sys_root(Path(tmp) / "root", dmi={"sys_vendor": "Amazon EC2"})
        commands = {
            "provision fetch (detect + IMDSv2 + parse + validate)": [
                *provision, "fetch", "--sys-root", str(root), "--cmdline", "",
                "--metadata-url", imds.base_url],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        curl = shutil.which("curl")
        if curl:
            script = (f"t=$({curl} -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
                      f"{imds.base_url}/latest/api/token) && {curl} -sf -H "
                      f"\"X-aws-ec2-metadata-token: $t\" {imds.base_url}/latest/user-data")
            commands["curl: token PUT + user-data GET"] = ["sh", "-c", script]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():
            timed(argv, env)  # warm the page cache; "cold" means a new process, not a cold disk
        for _ in range(args.runs):
            for name, argv in commands.items():  # interleaved, so drift hits all alike
                times[name].append(timed(argv, env))
    print("## provision fetch (AWS stand-in)\n")
    print(f"Measured {datetime.date.today().isoformat()} on {platform.node()}: "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}.")
    print(f"`benchmarks/fetch_aws_bench.py --runs {args.runs}`: whole processes, interleaved, "
          "byte-code cached (as installed); the stand-in IMDS runs on 127.0.0.1 in the "
          "benchmark process.\n")
    print("| command | median | min | max |")
    print("|---|---|---|---|")
    for name, samples in times.items():
        print(f"| {name} | {statistics.median(samples) * 1000:.0f} ms | "
              f"{min(samples) * 1000:.0f} ms | {max(samples) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
