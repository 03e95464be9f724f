"""provision status: was a target root provisioned, when, how did each stage end."""

from __future__ import annotations

import argparse

from provision.commands.options import add_root_argument

HELP = "show whether, when and with which config a target root was provisioned"
DESCRIPTION = """\
Read DIR/etc/.provision/result.json and say whether the root was provisioned,
when, on which platform and instance, with which config (its sha256), and how
each stage ended (applied, empty, failed with item and cause, not run).

A record that is corrupt, empty, not a JSON object or not a regular file
(a directory, a FIFO, a symbolic link) is reported as such: the state of
the root is then unknown, and `provision apply` refuses it without --force.

Exit status: 0 provisioned successfully, 1 a run failed or is unfinished,
3 never provisioned, 4 the record is unreadable (state unknown), 2 usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_root_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the record as JSON")


def main(args: argparse.Namespace) -> int:
    import json

    from provision.apply.result import RESULT_PATH, BadResultRecord, read_result
    from provision.target.tree import TargetTree

    try:
        with TargetTree(args.root) as tree:
            record = read_result(tree)
    except BadResultRecord as exc:
        if args.json:
            print(json.dumps({"status": "unreadable", "error": exc.reason}))
        else:
            print(f"{args.root}: state unknown: the result record {RESULT_PATH} {exc.reason}")
        return 4
    if record is None:
        print(f"{args.root}: not provisioned (no {RESULT_PATH})")
        return 3
    if args.json:
        print(record.to_json(), end="")
        return 0 if record.status == "succeeded" else 1
    shown = record.status
    if shown == "running":
        shown = "unfinished (running now, or interrupted: apply the same config again to resume)"
    print(f"{args.root}: {shown}")
    print(f"  config sha256: {record.config_sha256}")
    print(f"  platform:      {record.platform or '-'}")
    print(f"  instance id:   {record.instance_id or '-'}")
    print(f"  started:       {record.started}")
    print(f"  finished:      {record.finished or '-'}")
    print(f"  provision:     {record.provision_version}")
    for stage in record.stages:
        timing = f" in {stage.seconds:.3f} s" if stage.seconds is not None else ""
        changes = f", {stage.changes} change(s)" if stage.changes is not None else ""
        print(f"  {stage.name:<10} {stage.status}{changes}{timing}")
        if stage.error:
            print(f"    {stage.item}: {stage.error}")
    return 0 if record.status == "succeeded" else 1
