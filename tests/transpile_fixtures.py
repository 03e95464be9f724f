"""Helpers for the transpile and human-YAML tests: run the command on YAML text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision.cli import main

HEADER = "variant: provision\nversion: 1.0.0\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINCCbOZxo6OA8Crr09NZT74nQF/4+r4/d+QEYfDToQEi ops@bastion"


@dataclass
class Outcome:
    status: int
    spec: dict[str, Any] | None
    diagnostics: list[dict[str, Any]]
    stderr: str

    def messages(self, severity: str | None = None) -> list[str]:
        return [d["message"] for d in self.diagnostics if severity in (None, d["severity"])]

    def only(self, severity: str) -> dict[str, Any]:
        found = [d for d in self.diagnostics if d["severity"] == severity]
        assert len(found) == 1, self.diagnostics
        return found[0]


def run_transpile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *texts: str, options: tuple[str, ...] = (),
    name: str = "config.yaml",
) -> Outcome:
    """Write each text to a file in tmp_path, transpile them in order, parse what comes out."""
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / (name if len(texts) == 1 else f"{i}-{name}")
        path.write_text(text)
        paths.append(str(path))
    out = tmp_path / "out.json"
    if out.exists():
        out.unlink()
    capsys.readouterr()
    status = main(["transpile", "--format", "json", *options, "-o", str(out), *paths])
    captured = capsys.readouterr()
    diagnostics = json.loads(captured.err[: captured.err.rindex("]") + 1]) if captured.err.startswith("[") else []
    spec = json.loads(out.read_text()) if out.exists() and status == 0 and "--to-human" not in options else None
    return Outcome(status, spec, diagnostics, captured.err)
