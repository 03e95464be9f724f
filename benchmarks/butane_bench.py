"""Benchmark: ``provision transpile`` of a Butane config with 1,000 files, whole process.

Each run is a whole process (``python -m provision transpile --files-dir D
big.bu -o out.json``), so start-up, imports, YAML parsing, Butane's sugar
(data: URLs, ``local`` files, a tree, mount units, ``contents_local``,
``ssh_authorized_keys_local``), the Ignition schema check of the produced
config, provision's own validation and writing the output are all counted.
The workload (variant fcos 1.5.0): 1,000 files (inline text, octal modes;
every tenth read with ``local:``), a tree of 20 files, 20 units (half from
``contents_local``) with drop-ins, 5 users with keys from a local file, two
filesystems with mount units. A bare interpreter run is timed in the same
loop, interleaved, for scale. The Butane binary itself is not installable
here (not packaged for Debian, no network to fetch a release), so it is not
timed side by side.

Usage: ``python benchmarks/butane_bench.py [--runs 11]``. Prints a Markdown
table for docs/performance.md (section "Butane configs").
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
FILES = 1000


def write_workload(folder: Path) -> Path:
    files_dir = folder / "files"
    (files_dir / "local").mkdir(parents=True)
    (files_dir / "tree").mkdir()
    for i in range(20):
        (files_dir / "tree" / f"t{i}.conf").write_text(f"setting_{i} = {i * 7}\n")
    (files_dir / "keys.pub").write_text(KEY + "\n")
    lines = ["variant: fcos", "version: 1.5.0", "storage:", "  files:"]
    for i in range(FILES):
        lines.append(f"    - path: /etc/app/conf.d/{i:04d}.conf")
        lines.append(f"      mode: {'0600' if i % 3 else '0644'}")
        if i % 10 == 0:
            (files_dir / "local" / f"{i}.conf").write_text(f"# file {i}\nvalue = {i}\n" * 5)
            lines.append(f"      contents: {{local: local/{i}.conf}}")
        else:
            lines += ["      contents:", "        inline: |",
                      f"          # generated file {i}", f"          key_{i} = value {i}", "          enabled = true"]
    lines += ["  trees:", "    - local: tree", "      path: /etc/tree", "  filesystems:"]
    for name in ("data", "logs"):
        lines += [f"    - device: /dev/disk/by-label/{name}", "      format: xfs", f"      path: /var/{name}",
                  "      with_mount_unit: true"]
    lines += ["systemd:", "  units:"]
    for i in range(20):
        lines += [f"    - name: app{i}.service", "      enabled: true"]
        if i % 2:
            (files_dir / f"app{i}.service").write_text(
                f"[Service]\nExecStart=/usr/bin/app --id {i}\n\n[Install]\nWantedBy=multi-user.target\n")
            lines.append(f"      contents_local: app{i}.service")
        else:
            lines += ["      contents: |", "        [Service]", f"        ExecStart=/usr/bin/app --id {i}", "",
                      "        [Install]", "        WantedBy=multi-user.target"]
        lines += ["      dropins:", "        - name: limits.conf", "          contents: |",
                  "            [Service]", "            LimitNOFILE=65536"]
    lines += ["passwd:", "  users:"]
    for i in range(5):
        lines += [f"    - name: user{i}", "      ssh_authorized_keys_local: [keys.pub]"]
    path = folder / "big.bu"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = write_workload(folder)
        out = folder / "out.json"
        python = sys.executable
        transpile = [python, "-m", "provision", "transpile", "--files-dir", str(folder / "files"),
                     str(big), "-o", str(out)]
        commands = {f"provision transpile (Butane, {FILES:,} files)": transpile, "`python -c pass`": [python, "-c", "pass"]}
        timed(transpile, cwd=ROOT)  # warms the bytecode and page caches
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                results[name].append(timed(argv, cwd=ROOT))
        sizes = f"Butane YAML {big.stat().st_size / 1024:.1f} KiB -> JSON {out.stat().st_size / 1024:.1f} KiB"
    print(f"Machine: {machine()}. Date: {datetime.date.today()}. {sizes}. {args.runs} runs each:\n")
    print("| command | median wall ms | min wall ms | median CPU ms | median wall per file |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in results.items():
        walls = [w for w, _ in samples]
        per_file = f"{statistics.median(walls) / FILES * 1000:.0f} µs" if "transpile" in name else ""
        print(f"| {name} | {statistics.median(walls):.1f} | {min(walls):.1f} | "
              f"{statistics.median(c for _, c in samples):.1f} | {per_file} |")


if __name__ == "__main__":
    main()
