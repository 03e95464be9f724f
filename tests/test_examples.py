"""Every example validates, and the examples README explains each one."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.cli import main
from provision.config.pipeline import parse_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIGS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in {".json", ".yaml", ".yml", ".ign"})


def test_there_are_enough_examples() -> None:
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_is_valid_without_warnings(path: Path) -> None:
    parsed = parse_config(path.read_bytes(), str(path))
    assert parsed.diagnostics == []
    assert parsed.ok


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_is_explained(path: Path) -> None:
    assert f"`{path.name}`" in (EXAMPLES / "README.md").read_text()


def test_validate_cli_accepts_all_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, CONFIGS)]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid") == len(CONFIGS)


def test_aws_example_fits_user_data_limit() -> None:
    assert (EXAMPLES / "aws-node.json").stat().st_size <= 16 * 1024
