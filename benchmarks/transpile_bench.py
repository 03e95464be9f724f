"""Benchmark: ``provision transpile`` of a human YAML config with 1,000 files, cold.

Each run is a whole process (``python -m provision transpile big.yaml -o
out.json``; Python's bytecode cache warm, as for an installed package), so
start-up, imports, YAML parsing, sugar expansion, encoding the data: URLs,
validating the output and writing it are all counted. The workload: 1,000
files (inline text, octal-string modes; every tenth read with ``local:``), a
tree of 20 files, 20 units with drop-ins, 5 users, a container with
shorthands. For scale, ``provision validate`` of the produced JSON and a bare
interpreter run are timed in the same loop, interleaved. (Butane is not
packaged for Debian, so it is not compared.)

Usage: ``python benchmarks/transpile_bench.py [--runs 21]``. Prints a Markdown
table for docs/performance.md (section "provision transpile").
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
from pathlib import Path

from process_timing import machine, timed

ROOT = Path(__file__).resolve().parent.parent
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINCCbOZxo6OA8Crr09NZT74nQF/4+r4/d+QEYfDToQEi ops@bastion"


def write_workload(folder: Path, files: int = 1000) -> Path:
    (folder / "local").mkdir()
    tree = folder / "tree"
    tree.mkdir()
    for i in range(20):
        (tree / f"t{i}.conf").write_text(f"setting_{i} = {i * 7}\n")
    lines = ["variant: provision", "version: 1.0.0", "storage:", "  files:"]
    for i in range(files):
        lines.append(f"    - path: /etc/app/conf.d/{i:04d}.conf")
        lines.append(f"      mode: \"{'0600' if i % 3 else '0644'}\"")
        if i % 10 == 0:
            (folder / "local" / f"{i}.conf").write_text(f"# file {i}\nvalue = {i}\n" * 5)
            lines.append(f"      contents: {{local: local/{i}.conf}}")
        else:
            lines.append("      contents:")
            lines.append("        inline: |")
            lines += [f"          # generated file {i}", f"          key_{i} = value {i}", "          enabled = true"]
    lines += ["  trees:", "    - local: tree", "      path: /etc/tree", "systemd:", "  units:"]
    for i in range(20):
        lines += [f"    - name: app{i}.service", "      enabled: true", "      contents: |",
                  "        [Service]", f"        ExecStart=/usr/bin/app --id {i}", "",
                  "        [Install]", "        WantedBy=multi-user.target",
                  "      dropins:", "        - name: limits.conf", "          contents: |",
                  "            [Service]", "            LimitNOFILE=65536"]
    lines += ["passwd:", "  users:"]
    for i in range(5):
        lines += [f"    - name: user{i}", f"      ssh_authorized_keys: [{KEY!r}]"]
    lines += ["containers:", "  runtime: docker", "  containers:", "    - name: web",
              "      image: docker.io/library/nginx:1.27", '      ports: ["8080:80"]',
              "      env: [A=1]", '      volumes: ["/srv:/usr/share/nginx/html:ro"]']
    path = folder / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = write_workload(folder)
        out = folder / "out.json"
        python = sys.executable
        commands = {
            "provision transpile (1,000 files)": [python, "-m", "provision", "transpile", str(big), "-o", str(out)],
            "provision validate (its JSON output)": [python, "-m", "provision", "validate", str(out)],
            "`python -c pass`": [python, "-c", "pass"],
        }
        timed(commands["provision transpile (1,000 files)"], cwd=ROOT)  # writes out.json, warms the caches
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                results[name].append(timed(argv, cwd=ROOT))
        sizes = f"YAML {big.stat().st_size / 1024:.1f} KiB -> JSON {out.stat().st_size / 1024:.1f} KiB"
    print(f"Machine: {machine()}. Date: {datetime.date.today()}. {sizes}. Median of {args.runs} runs each:\n")
    print("| command | median wall ms | min wall ms | median CPU ms |")
    print("|---|---:|---:|---:|")
    for name, samples in results.items():
        walls = [w for w, _ in samples]
        print(f"| {name} | {statistics.median(walls):.1f} | {min(walls):.1f} | "
              f"{statistics.median(c for _, c in samples):.1f} |")


if __name__ == "__main__":
    main()
