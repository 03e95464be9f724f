"""Linters and typing run as ordinary tests, plus the project's own rules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/test installs it)")
    return path


def test_ruff() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "provision", "tests", "tools", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports_subprocess(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "subprocess" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "subprocess":
            return True
        func = getattr(node, "func", None)
        if getattr(func, "attr", None) in {"system", "popen"} and getattr(
            getattr(func, "value", None), "id", None
        ) == "os":
            return True
    return False


def test_only_the_runner_runs_commands() -> None:
    """External commands go through provision/run.py and nowhere else."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "provision").rglob("*.py"))
        if path.name != "run.py" or path.parent.name != "provision"
        if _imports_subprocess(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == []
