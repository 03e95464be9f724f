"""What every benchmark here needs: one whole process timed, and the machine named.

Run as ``python benchmarks/<name>.py``, so this module is importable as
``process_timing`` (the script's folder is first on sys.path).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Collection, Mapping
from pathlib import Path


def timed(argv: list[str], env: Mapping[str, str] | None = None, *, cwd: Path | None = None,
          ok: Collection[int] = (0,)) -> tuple[float, float]:
    """(wall ms, CPU ms) of one whole process; CPU is user+sys from wait4().

    Exits the benchmark with the command's stderr when its status is not in ``ok``:
    a figure for a failed run would be meaningless.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd,
                            env=None if env is None else dict(env))
    assert proc.stderr is not None
    err = proc.stderr.read()  # before wait4: a full pipe would stall the child
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {code}: {err.decode(errors='replace')[:500]}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """CPU count and model, Python version and load (the figures mean nothing without them)."""
    return (f"{os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at start")
