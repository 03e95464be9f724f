"""Printing diagnostics in the formats every config-reading command offers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from provision.diagnostics import Diagnostic, render_github, render_text, sort_key, to_json

FORMATS = ("text", "json", "github")


def add_format_argument(parser: object) -> None:
    parser.add_argument(  # type: ignore[attr-defined]
        "--format", choices=FORMATS, default="text", help="diagnostics format (default: text)"
    )


def print_diagnostics(
    diagnostics: Iterable[Diagnostic],
    fmt: str = "text",
    sources: Mapping[str, Sequence[str]] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print diagnostics sorted by position; ``sources`` maps file name -> its lines."""
    out = stream or sys.stderr
    ordered = sorted(diagnostics, key=sort_key)
    if fmt == "json":
        json.dump([to_json(d) for d in ordered], out, indent=2)
        out.write("\n")
        return
    for d in ordered:
        if fmt == "github":
            print(render_github(d), file=out)
        else:
            lines = (sources or {}).get(d.file or "")
            print(render_text(d, lines), file=out)
