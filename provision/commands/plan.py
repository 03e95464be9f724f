"""provision plan: show what apply would change, changing nothing."""

from __future__ import annotations

import argparse

HELP = "show what apply would change in a target root, without changing anything"
DESCRIPTION = """\
Print, per stage and item, what `provision apply` would do to DIR: create,
replace, append, update (mode or owner only), delete or unchanged. Nothing is
written. Items owned by users the same config creates are planned as if the
users stage had run.

Exit status: 0 (whether or not there are changes), 1 the config is invalid
or an item could not be applied as written (e.g. overwrite is false and a
file exists), 2 usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from provision.commands.apply import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument("--stages", help="comma-separated subset of stages to plan")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from provision.apply.orchestrator import load_stages, plan_config
    from provision.apply.result import BadResultRecord, read_result
    from provision.commands.apply import read_config
    from provision.target.tree import TargetTree

    config, digest = read_config(args.config)
    names = [n.strip() for n in args.stages.split(",") if n.strip()] if args.stages else None
    stages = load_stages(names)
    try:
        with TargetTree(args.root) as tree:
            previous = read_result(tree)
    except BadResultRecord as exc:
        print(f"note: {exc}; apply refuses this root without --force")
        previous = None
    if (
        previous is not None and previous.config_sha256 == digest
        and all(previous.outcome(s.name).status in ("applied", "empty") for s in stages)
    ):
        print(f"already provisioned with this config at {previous.finished or previous.started}; "
              "apply would do nothing (apply --force re-applies it)")
        return 0
    plans = plan_config(config, Path(args.root), stages)
    changes = 0
    for plan in plans:
        for action in plan.actions:
            detail = f"  ({action.detail})" if action.detail else ""
            print(f"{plan.stage:<10} {action.kind:<9} {action.item}{detail}")
        changes += len(plan.changes)
    print(f"{changes} change(s)")
    return 0
