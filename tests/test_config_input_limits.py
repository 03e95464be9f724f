"""Every command that reads a config reads it with validate's size cap and file checks:
/dev/zero, a FIFO nobody writes, or an oversized file is a clear error, never a hang
or a MemoryError. Run as real processes with a timeout, as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.source.loader import MAX_CONFIG_BYTES
from tests.standins.systree import make_sys_root


def _commands(tmp_path: Path, config: str) -> dict[str, list[str]]:
    root = tmp_path / "target"
    root.mkdir(exist_ok=True)
    sys_root = make_sys_root(tmp_path / "sysroot") if not (tmp_path / "sysroot").exists() else tmp_path / "sysroot"
    return {
        "validate": ["validate", config],
        "plan": ["plan", "--root", str(root), config],
        "apply": ["apply", "--root", str(root), config],
        "transpile": ["transpile", config],
        "fetch": ["fetch", "--sys-root", str(sys_root), "--config", config],
        "run": ["run", "--root", str(root), "--run-dir", str(tmp_path / "run"), "--sys-root", str(sys_root),
                "--config", config],
    }


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True,
                          text=True, timeout=30, env=env)


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "transpile", "fetch", "run"])
def test_dev_zero_and_a_fifo_are_refused_without_reading(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    for config, kind in (("/dev/zero", "character device"), (str(fifo), "FIFO")):
        done = _run(_commands(tmp_path, config)[command])
        assert done.returncode in (1, 2), done.stderr
        assert f"{config}" in done.stderr and kind in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "transpile", "fetch", "run"])
def test_an_oversized_config_is_refused_at_the_same_cap(tmp_path: Path, command: str) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as f:  # sparse: 16 MiB + 1 of NULs costs no disk
        f.truncate(MAX_CONFIG_BYTES + 1)
    done = _run(_commands(tmp_path, str(big))[command])
    assert done.returncode == 1, done.stderr
    assert "config is larger than 16 MiB" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert not any((tmp_path / "target").iterdir())  # nothing applied
