"""The ``provision`` command: argument parsing and dispatch to subcommands.

Subcommands live in :mod:`provision.commands`, one module each, registered in
:data:`COMMANDS` in the order ``--help`` lists them. A command module exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``main(args) -> int``, and
keeps heavy imports inside ``main`` so start-up stays fast.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from provision import __version__
from provision.errors import ProvisionError

COMMANDS: dict[str, str] = {
    "validate": "provision.commands.validate",
    "transpile": "provision.commands.transpile",
    "detect": "provision.commands.detect",
    "fetch": "provision.commands.fetch",
    "plan": "provision.commands.plan",
    "apply": "provision.commands.apply",
    "status": "provision.commands.status",
    "run": "provision.commands.boot",
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter with the width given, so it does not import shutil
    (and with it bz2 and lzma) on every run just to ask the terminal's size."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(2).columns
            except (ValueError, OSError):
                width = 80
        super().__init__(prog, indent_increment, max_help_position, max(width - 2, 40))


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="provision",
        description="First-boot provisioning: fetch, validate and apply a declarative machine config.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"provision {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback on internal errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            continue  # one sub-parser is all a known command needs
        module = _load(name)
        sp = sub.add_parser(
            name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=_Formatter,
        )
        module.add_arguments(sp)
    return parser


def _requested_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def _configure_logging(verbosity: int) -> None:
    # Without -v, logging is left to the modules that use it (warnings still
    # reach stderr): importing it here would cost every run start-up time.
    if verbosity == 0:
        return
    import logging

    level = logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="provision: %(levelname)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only import the one command module we need; --help imports them all.
    parser = build_parser(only=_requested_command(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args.verbose)
    module = _load(args.command)
    try:
        return int(module.main(args))
    except ProvisionError as exc:
        print(f"provision {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"provision {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (`provision ... | head`): not an error worth a trace.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug: say so in one line, trace only on request
        if args.debug:
            raise
        print(
            f"provision {args.command}: internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in provision; rerun with --debug for a traceback and report it",
            file=sys.stderr,
        )
        return 70


def run() -> NoReturn:
    """The ``provision`` program itself: the console script, ``python -m provision``, the zipapp.

    Tests call :func:`main`, which leaves the process as it found it.
    """
    status = main()
    # The process ends here. Interpreter shutdown would still search all it
    # built for reference cycles (4 ms after validating a 1,000-file config),
    # only to free memory the OS takes back anyway: frozen objects are not
    # searched. Output, logging and atexit handlers are flushed as usual.
    gc.freeze()
    raise SystemExit(status)
