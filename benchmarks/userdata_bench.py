"""Benchmark: ``provision validate`` of cloud-init user data, whole processes, cold.

Workloads:

- multipart: a MIME message as cloud-init's make-mime writes it — a
  cloud-config with users, write_files and runcmd, two shell scripts, a
  boothook and a Jinja cloud-config (rendered against an instance-data.json);
- corpus: every document of tests/corpus/cloud-init (165 of cloud-init's
  documented examples) in one ``provision validate`` process;
- the multipart's cloud-config part alone, for comparison;
- ``python -c pass`` for the interpreter's own start-up.

Every run is a fresh process, the commands interleaved run by run; Python
runs with compiled bytecode kept in a temporary PYTHONPYCACHEPREFIX.
Reported: median and minimum wall time, median CPU time (user+sys).

Usage: ``python benchmarks/userdata_bench.py [--runs 21]``; prints a
Markdown table for docs/performance.md, section "cloud-init user data".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from process_timing import machine, timed

ROOT = Path(__file__).resolve().parent.parent

CLOUD_CONFIG = """#cloud-config
users:
  - name: alice
    groups: [sudo, docker]
    shell: /bin/bash
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q alice@laptop
write_files:
  - path: /etc/app/config.toml
    permissions: '0640'
    content: |
      listen = "0.0.0.0:8080"
runcmd:
  - systemctl restart app
"""
JINJA = """## template: jinja
#cloud-config
hostname: {{ v1.local_hostname }}
write_files:
  - path: /etc/instance
    content: "{{ v1.instance_id }} {{ v1.region }}"
"""
INSTANCE_DATA = {"v1": {"instance_id": "i-0abc", "local_hostname": "web-1", "region": "eu-west-1"}}


def multipart() -> bytes:
    outer = MIMEMultipart(boundary="===============bench==")
    outer.attach(MIMEText(CLOUD_CONFIG, "cloud-config"))
    outer.attach(MIMEText("#!/bin/sh\necho one\n", "x-shellscript"))
    outer.attach(MIMEText("#!/bin/sh\necho two\n", "x-shellscript"))
    outer.attach(MIMEText("#cloud-boothook\n#!/bin/sh\necho early\n", "cloud-boothook"))
    outer.attach(MIMEText(JINJA, "jinja2"))
    return outer.as_bytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    corpus = sorted(str(p) for p in (ROOT / "tests/corpus/cloud-init").rglob("*") if p.suffix != ".md" and p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        user_data = Path(tmp) / "user-data"
        user_data.write_bytes(multipart())
        plain = Path(tmp) / "cloud-config.yaml"
        plain.write_text(CLOUD_CONFIG)
        instance = Path(tmp) / "instance-data.json"
        instance.write_text(json.dumps(INSTANCE_DATA))
        env = dict(os.environ, PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"), PROVISION_INSTANCE_DATA=str(instance))
        provision = [sys.executable, "-m", "provision", "validate"]
        commands = {
            "provision validate (multipart user data)": [*provision, str(user_data)],
            "provision validate (its cloud-config part alone)": [*provision, str(plain)],
            f"provision validate ({len(corpus)} corpus documents, one process)": [*provision, *corpus],
            "`python -c pass`": [sys.executable, "-c", "pass"],
        }
        for argv in commands.values():  # warm the bytecode cache and the page cache
            timed(argv, env, ok=(0, 1))  # 1: some corpus documents are refused
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                results[name].append(timed(argv, env, ok=(0, 1)))
    print(f"Machine: {machine()}. Date: {datetime.date.today()}. Median of {args.runs} runs:\n")
    print("| command | median wall ms | min wall ms | median CPU ms |\n|---|---:|---:|---:|")
    for name, runs in results.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"| {name} | {statistics.median(walls):.1f} | {min(walls):.1f} | {statistics.median(cpus):.1f} |")


if __name__ == "__main__":
    main()
