"""provision validate: check configs against their spec, structurally and semantically."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.config.pipeline import ParsedConfig

HELP = ("check configs (provision, human YAML, Butane, Ignition 3.x, #cloud-config, network config) "
        "without applying them")
DESCRIPTION = """\
Check one or more configs: first against the JSON Schema of their spec
version, then semantically (paths, modes, hashes, partitions, units, users,
containers ...). Every finding names file, line, column and config path.

Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error or an
unreadable file. --strict turns warnings into errors.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from provision.commands.report import add_format_argument

    parser.add_argument("files", nargs="+", metavar="FILE", help="config files ('-' for stdin)")
    add_format_argument(parser)
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--files-dir", metavar="DIR",
                        help="folder the local files of human YAML and Butane configs are read from "
                        "(default: each config file's folder)")


def _parse(data: bytes, path: str, files_dir: str | None) -> ParsedConfig:
    from provision.config.pipeline import parse_config

    if files_dir is None:
        return parse_config(data, path)
    from provision.importers.human import (
        using_files_dir,  # only then: validate start-up stays light
    )

    with using_files_dir(files_dir):
        return parse_config(data, path)


def main(args: argparse.Namespace) -> int:
    from provision.gcpause import cyclic_gc_paused

    # From here on: the imports of the validation modules too (see provision.gcpause).
    with cyclic_gc_paused():
        return _validate(args)


def _validate(args: argparse.Namespace) -> int:
    import os

    from provision.commands.report import print_diagnostics
    from provision.diagnostics import has_errors, strictened, to_json
    from provision.errors import UsageError
    from provision.source.loader import read_config_file

    if args.files_dir is not None and not os.path.isdir(args.files_dir):
        raise UsageError(f"--files-dir {args.files_dir}: not a directory")
    status = 0
    results = []
    for path in args.files:
        try:
            data = read_config_file(path)
        except UsageError as exc:
            print(f"provision validate: {exc}", file=sys.stderr)
            results.append({"file": path, "valid": False, "error": str(exc), "diagnostics": []})
            status = 2
            continue
        parsed = _parse(data, path, args.files_dir)
        found = strictened(parsed.diagnostics) if args.strict else parsed.diagnostics
        valid = not has_errors(found)
        if not valid:
            status = max(status, 1)
        if args.format == "json":
            results.append({
                "file": path, "valid": valid, "kind": parsed.kind, "version": parsed.version,
                "diagnostics": [to_json(d) for d in found],
            })
            continue
        # Lines for snippets (text only), with their secrets marked for masking.
        lines: Sequence[str] = []
        if found and args.format == "text":
            lines = (parsed.document.quotable_lines() if parsed.document
                     else data.decode("utf-8", "replace").splitlines())
        sources = {path: lines}
        print_diagnostics(found, args.format, sources, stream=sys.stdout)
        if args.format == "text":
            errors = sum(d.is_error for d in found)
            warnings = len(found) - errors
            verdict = "valid" if valid else "invalid"
            counts = f" ({errors} error(s), {warnings} warning(s))" if found else ""
            print(f"{path}: {verdict}{counts}", file=sys.stdout if valid else sys.stderr)
    if args.format == "json":
        json.dump({"valid": status == 0, "files": results}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return status
