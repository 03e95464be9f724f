"""Command-line options shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path


def _absolute(value: str) -> Path:
    # Tools given the root (useradd --root, chroots) need an absolute path.
    return Path(value).absolute()


def add_root_argument(parser: argparse.ArgumentParser, help: str = "the target root directory") -> None:
    parser.add_argument("--root", required=True, metavar="DIR", type=_absolute, help=help)
