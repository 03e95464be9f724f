"""Staging: memory bounded by a budget whatever the config's shape; bytes kept inside the target.

The attack is a config with hundreds of gzip ``data:`` URLs that each
inflate to a quarter MiB: inflated all at once in memory that is 100 MiB.
The run's peak memory (measured by the kernel, in a separate process) must
not grow with it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from apply_fixtures import REPO, make_root, write_config

from provision.config.build import build_config
from provision.config.model import Resource
from provision.stages.staging import STAGING_DIR, Need, Staging

INFLATED = 256 << 10
COUNT = 400


def _gzip_url(payload: bytes) -> str:
    return "data:;base64," + base64.b64encode(gzip.compress(payload)).decode()


def _peak_rss_kib(*argv: str) -> int:
    """Peak resident memory of ``provision argv`` (kernel's figure via getrusage of the child)."""
    wrapper = (
        "import resource, subprocess, sys;"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stderr.write(done.stderr);"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "provision", *argv],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    status, peak = proc.stdout.split()
    assert status == "0", proc.stderr
    return int(peak)


def test_many_gzip_data_urls_do_not_inflate_in_memory_at_once(tmp_path: Path) -> None:
    def spec(payload: bytes) -> dict[str, object]:
        # Each file different (a numbered first line), so nothing can be shared.
        return {"storage": {"files": [
            {"path": f"/data/{i:04}", "contents": {"source": _gzip_url(b"%d\n" % i + payload),
                                                   "compression": "gzip"}}
            for i in range(COUNT)]}}

    small = write_config(tmp_path / "small.json", spec(b"x"))
    large = write_config(tmp_path / "large.json", spec(bytes(INFLATED)))
    baseline = _peak_rss_kib("apply", "--stages", "files", "--root", str(make_root(tmp_path / "a")), str(small))
    peak = _peak_rss_kib("apply", "--stages", "files", "--root", str(make_root(tmp_path / "b")), str(large))
    written = sum(p.stat().st_size for p in (tmp_path / "b/data").iterdir())
    assert written > COUNT * INFLATED  # the files really are that big
    grown_mib = (peak - baseline) / 1024
    # 100 MiB inflated; the budget (8 MiB) plus chunks and allocator slack is all it may cost.
    assert grown_mib < 32, f"peak memory grew by {grown_mib:.0f} MiB for {written >> 20} MiB of files"


def test_the_budget_holds_and_large_resources_go_to_files_inside_the_target(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    config = build_config({"provision": {"version": "1.0.0"}})
    payloads = [os.urandom(10_000) for _ in range(20)] + [os.urandom(200_000)]
    with Staging(config, root, budget=64_000, small=16_000) as staging:
        for index, payload in enumerate(payloads):
            url = "data:;base64," + base64.b64encode(payload).decode()
            staging.fetch("files", Need(str(index), f"/f{index}", Resource(source=url)))
        assert staging.in_memory <= 64_000
        on_disk = sorted((root / STAGING_DIR.lstrip("/")).iterdir())
        # The large one and everything past the budget are files in the target's state directory.
        assert len(on_disk) == len(payloads) - staging.in_memory // 10_000
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in on_disk)
        assert (root / STAGING_DIR.lstrip("/")).stat().st_mode & 0o777 == 0o700
        for index, payload in enumerate(payloads):
            with staging.open("files", str(index)) as handle:
                assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(payload).digest()
    assert not (root / STAGING_DIR.lstrip("/")).exists()


def test_leftovers_of_a_killed_run_are_cleared(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    stale = root / STAGING_DIR.lstrip("/")
    stale.mkdir(parents=True)
    (stale / "1.part").write_bytes(b"old")
    config = build_config({"provision": {"version": "1.0.0"}})
    with Staging(config, root, small=0) as staging:
        staging.fetch("files", Need("k", "/k", Resource(source="data:,new")))
        assert sorted(p.name for p in stale.iterdir()) == ["1.part"]
        with staging.open("files", "k") as handle:
            assert handle.read() == b"new"
    assert not stale.exists()
    assert json.loads(json.dumps(sorted(os.listdir(root / "etc/.provision")))) == ["journal"]
