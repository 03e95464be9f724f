"""provision transpile: human YAML (and every other accepted format) to strict machine JSON."""

from __future__ import annotations

import argparse
import sys

HELP = "turn human YAML, Butane, Ignition 3.x, #cloud-config or network config into machine JSON"
DESCRIPTION = """\
Translate one or more configs — human YAML (variant: provision), Butane
(variant: fcos, flatcar, openshift, r4e, fiot), provision JSON, Ignition 3.x
JSON, #cloud-config or cloud-init network config (v1, v2, network_data.json)
— into one strict machine config of spec 1.1.0. Several inputs merge in
order, the later winning: keyed lists (files by path, units and users by
name, ...) merge by key as Ignition merges; a field two inputs set differently is a warning naming both lines.

The output is validated before it is written; a diagnostic about it points
at the input line that produced it. Local files (local:, storage.trees,
contents_local, ssh_authorized_keys_local) are read from --files-dir,
default the folder of the YAML file, and may not escape it.

With --platform the output is checked against that platform's user-data
limit; when it does not fit, its gzip form is written instead where that
fits and the platform can carry it (a note on stderr says how to pass it on).

Diagnostics go to stderr. Exit status: 0 written (warnings allowed), 1
invalid (nothing written), 2 usage error or an unreadable file. --strict
turns warnings into errors.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from provision.commands.report import add_format_argument
    from provision.transpile.platforms import PLATFORMS

    parser.add_argument("files", nargs="+", metavar="FILE", help="input configs, merged in order ('-' for stdin)")
    parser.add_argument("-o", "--output", metavar="OUT", help="write the result here (default: stdout)")
    parser.add_argument("--files-dir", metavar="DIR",
                        help="folder local files are read from (default: each YAML file's folder)")
    parser.add_argument("--platform", choices=sorted(PLATFORMS),
                        help="check the output against this platform's user-data limit")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON output")
    parser.add_argument("--to-human", action="store_true",
                        help="write human YAML instead of machine JSON (e.g. to convert an Ignition config)")
    add_format_argument(parser)


def main(args: argparse.Namespace) -> int:
    import os

    from provision.commands.report import print_diagnostics
    from provision.diagnostics import has_errors, strictened
    from provision.errors import UsageError
    from provision.source.loader import read_config_file
    from provision.transpile.convert import transpile
    from provision.transpile.inputs import load_input

    if args.files_dir is not None and not os.path.isdir(args.files_dir):
        raise UsageError(f"--files-dir {args.files_dir}: not a directory")
    if args.to_human and args.platform:
        raise UsageError("--platform checks machine JSON; it cannot be combined with --to-human")
    if args.files.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    inputs = [load_input(read_config_file(path), path, args.files_dir) for path in args.files]
    result = transpile(inputs, pretty=args.pretty, to_human=args.to_human, platform=args.platform)
    found = strictened(result.diagnostics) if args.strict else result.diagnostics
    sources = {i.name: i.document.quotable_lines() for i in inputs if i.document is not None}
    print_diagnostics(found, args.format, sources, stream=sys.stderr)
    if has_errors(found) or result.output is None:
        if args.format == "text":
            print(f"provision transpile: nothing written ({sum(d.is_error for d in found)} error(s))",
                  file=sys.stderr)
        return 1
    if args.format != "json":  # keep stderr one JSON document for machines
        for note in result.notes:
            print(f"provision transpile: note: {note}", file=sys.stderr)
    _write(result.output, args.output)
    return 0


def _write(data: bytes, output: str | None) -> None:
    """To stdout, or atomically to a file of mode 0600 (a config may carry hashes and credentials)."""
    import os
    import tempfile

    from provision.errors import UsageError

    if output is None or output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    folder = os.path.dirname(os.path.abspath(output))
    try:
        fd, temp = tempfile.mkstemp(prefix=".transpile-", dir=folder)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temp, output)
    except OSError as exc:
        os.unlink(temp)
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None
