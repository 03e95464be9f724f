"""Benchmark: fetch and sha512-verify a large file resource, provision vs ``curl | sha512sum``.

A 1 GiB file (by default) is served from a loopback HTTP server (sendfile, so
the server is not the bottleneck). In the same run, alternating, we time:

- provision: a whole ``python`` process fetching the resource with
  ``provision.fetch.resource.fetch_to_file`` (sha512 verified on the fly,
  written to /dev/null); its peak RSS is read with wait4();
- ``curl -s URL | sha512sum`` as a shell pipeline.

Usage: ``python benchmarks/fetch_bench.py [--size-mib 1024] [--runs 3]``.
Prints a Markdown table for docs/performance.md (section "Fetching").
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
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

from tests.standins.http_server import LoopbackHTTPServer, Reply  # noqa: E402

PROVISION_FETCH = """
import sys
from provision.config.model import Resource, Verification
from provision.fetch.http import HttpClient
from provision.fetch.resource import fetch_to_file
url, digest, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
resource = Resource(source=url, verification=Verification("sha512-" + digest))
with open("/dev/null", "wb") as sink:
    n = fetch_to_file(resource, sink, HttpClient(), chunk_size=chunk)
print(n)
"""


def make_file(path: Path, size: int) -> str:
    """Write ``size`` bytes of varied content; return its sha512 hex digest."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha512()
    with path.open("wb") as f:
        written = 0
        counter = 0
        while written < size:
            piece = (counter.to_bytes(8, "big") + block[8:])[: size - written]
            f.write(piece)
            digest.update(piece)
            written += len(piece)
            counter += 1
    return digest.hexdigest()


def run_provision(url: str, digest: str, size: int, chunk: int) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one whole provision fetch process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", PROVISION_FETCH, url, digest, str(chunk)],
                            stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or int(out) != size:
        raise SystemExit(f"provision fetch failed (status {proc.returncode}): {out!r}")
    return elapsed, usage.ru_maxrss


def run_curl(url: str, digest: str) -> float:
    started = time.perf_counter()
    out = subprocess.run(["bash", "-c", f"curl -s {url} | sha512sum"], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    if not out.stdout.startswith(digest):
        raise SystemExit("curl | sha512sum produced a different digest")
    return elapsed


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk-kib", type=int, default=1024, help="provision's read size")
    args = parser.parse_args()
    if not shutil.which("curl") or not shutil.which("sha512sum"):
        print("curl and sha512sum are needed for the comparison", file=sys.stderr)
        return 2
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="fetch-bench-") as tmp:
        path = Path(tmp) / "payload.bin"
        digest = make_file(path, size)
        with LoopbackHTTPServer() as server:
            server.route("/payload.bin", Reply(file=str(path)))
            url = server.url("/payload.bin")
            run_curl(url, digest)  # warm the page cache and the server
            provision_times: list[float] = []
            curl_times: list[float] = []
            rss: list[int] = []
            for _ in range(args.runs):
                seconds, peak = run_provision(url, digest, size, args.chunk_kib << 10)
                provision_times.append(seconds)
                rss.append(peak)
                curl_times.append(run_curl(url, digest))
    mib = size / 2**20
    p_best, c_best = min(provision_times), min(curl_times)
    p_med, c_med = statistics.median(provision_times), statistics.median(curl_times)
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    print(f"date: {datetime.date.today().isoformat()}, payload {mib:.0f} MiB, {args.runs} runs each, "
          f"alternating; provision reads {args.chunk_kib} KiB at a time")
    print()
    print("| fetch + sha512 verify | best | median | throughput (best) | peak RSS |")
    print("|---|---|---|---|---|")
    print(f"| provision (whole process) | {p_best:.2f} s | {p_med:.2f} s | {mib / p_best:.0f} MiB/s "
          f"| {max(rss) / 1024:.1f} MiB |")
    print(f"| `curl -s URL \\| sha512sum` | {c_best:.2f} s | {c_med:.2f} s | {mib / c_best:.0f} MiB/s | - |")
    print()
    print(f"provision / curl time (median): {p_med / c_med:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
