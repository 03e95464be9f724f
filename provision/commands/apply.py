"""provision apply: apply a config to a target root, exactly once."""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import TYPE_CHECKING

from provision.commands.options import add_root_argument

if TYPE_CHECKING:
    from provision.config.model import Config

HELP = "apply a config to a target root (once; a rerun of the same config is a no-op)"
DESCRIPTION = """\
Apply CONFIG (provision, Ignition 3.x, #cloud-config or cloud-init network
config; JSON or YAML) to the target root DIR: disks, mounts, users, files,
network, systemd units and the container runtime, in that order. The outcome is recorded in DIR/etc/.provision/result.json;
applying the same config again does nothing and says so, unless --force;
a root provisioned with another config is refused, unless --force. A run
that was interrupted or failed resumes (stages already applied are kept)
and converges to the tree an uninterrupted run makes.

Exit status: 0 applied (or already applied), 1 a stage failed or the config
is invalid, 2 usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--force", action="store_true", help="apply again even if already applied")
    parser.add_argument("--platform", help="platform name to record (default: none)")
    parser.add_argument("--instance-id", help="instance id to record")
    parser.add_argument(
        "--stages", help="comma-separated subset of stages to run (default: all, in order)"
    )


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    add_root_argument(parser)
    parser.add_argument("config", metavar="CONFIG", help="config file ('-' for stdin)")


def read_config(path: str) -> tuple[Config, str]:
    """The validated config and the sha256 of its bytes; diagnostics printed on error.

    ``provision.config.merge``/``replace`` references are fetched, verified
    and merged exactly as ``provision run`` does (:mod:`provision.fetch.configrefs`);
    the sha256 stays that of the bytes given, which a user can check.
    """
    from provision.commands.report import print_diagnostics
    from provision.config.pipeline import parse_config
    from provision.diagnostics import has_errors
    from provision.errors import ConfigError
    from provision.source.loader import read_config_file

    data = read_config_file(path)  # the same size cap and file checks as validate
    parsed = parse_config(data, path)
    errors = [d for d in parsed.diagnostics if d.is_error]
    if parsed.config is None or has_errors(parsed.diagnostics):
        sources = {path: parsed.document.quotable_lines()} if parsed.document else None
        print_diagnostics(errors or parsed.diagnostics, "text", sources, stream=sys.stderr)
        raise ConfigError(errors or parsed.diagnostics)
    digest = hashlib.sha256(data).hexdigest()
    references = parsed.config.provision.config
    if not references.merge and (references.replace is None or references.replace.source is None):
        return parsed.config, digest
    from provision.fetch.configrefs import resolve_references
    from provision.platforms.base import default_client
    from provision.platforms.settings import Settings

    with default_client(Settings()) as client:
        try:
            resolved = resolve_references(parsed, client)
        except ConfigError as exc:
            # A referenced (or the merged) config is wrong: say which one and where.
            print_diagnostics(exc.diagnostics, "text", None, stream=sys.stderr)
            raise
        if resolved.client is not client:
            resolved.client.close()
    return resolved.config, digest


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages

    config, digest = read_config(args.config)
    names = [n.strip() for n in args.stages.split(",") if n.strip()] if args.stages else None
    stages = load_stages(names)
    request = ApplyRequest(
        config=config, config_sha256=digest, root=Path(args.root),
        platform=args.platform, instance_id=args.instance_id, force=args.force,
    )
    # One process runs every stage here: give mounts back when it ends.
    outcome = apply_config(request, stages, report=lambda line: print(line, flush=True), release=True)
    if outcome.already_done:
        record = outcome.record
        print(
            f"already provisioned with this config (sha256 {digest[:12]}...) at "
            f"{record.finished or record.started}; nothing to do (use --force to apply again)"
        )
        return 0
    print(f"provisioned {args.root}")
    return 0
