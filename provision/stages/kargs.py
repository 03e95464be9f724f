"""Kernel arguments: ``kernelArguments.shouldExist/shouldNotExist`` written into
the target's boot loader configuration (provision.bootloader does the editing).

The arguments take effect on the next boot. From the initramfs, the disks
boot stage runs this stage first, against the root's boot filesystems, and
when anything changed it reboots into the new command line before any disk
is touched, as Ignition does; that boot finds nothing left to change and
provisions. ``provision apply`` on an image tree just edits the files.
"""

from __future__ import annotations

from functools import partial

from provision.bootloader.cmdline import ArgChange
from provision.bootloader.edit import BootLoaderEdit, plan_edit, write_edit
from provision.config.model import Config
from provision.stages.base import Action, Plan, Target, apply_item
from provision.target.tree import TargetTree


def _change(config: Config) -> ArgChange:
    args = config.kernel_arguments
    return ArgChange(tuple(args.should_exist), tuple(args.should_not_exist))


class KernelArgumentsStage:
    name = "kargs"

    def is_empty(self, config: Config) -> bool:
        return not _change(config)

    def plan(self, config: Config, target: Target) -> Plan:
        from provision.errors import ProvisionError, StageError

        change = _change(config)
        try:
            with TargetTree(target.root) as tree:
                edit = plan_edit(tree, change)
        except ProvisionError as exc:
            raise StageError(self.name, "boot loader", str(exc)) from exc
        if edit.loader == "helper":
            actions = [Action("run", "kargs-helper", change.describe())]
        else:
            actions = [Action("replace", e.path, f"{e.what}: {change.describe()}") for e in edit.edits]
            actions += [Action("unchanged", p) for p in edit.unchanged]
        return Plan(self.name, actions, edit)

    def apply(self, plan: Plan, target: Target) -> None:
        from provision.bootloader.helper import run_helper

        edit: BootLoaderEdit = plan.data
        if target.dry_run:
            return
        if edit.loader == "helper":
            changed: list[bool] = []
            apply_item(self.name, "kargs-helper",
                       lambda: changed.append(run_helper(target.root, edit.change)))
            # The helper knows whether it changed anything; the plan says so
            # from now on (the boot reboots when the plan has changes).
            plan.actions = [Action("replace" if changed[0] else "unchanged", "kargs-helper",
                                   edit.change.describe())]
            return
        with TargetTree(target.root) as tree:
            for file_edit in edit.edits:
                apply_item(self.name, file_edit.path, partial(write_edit, tree, file_edit))


STAGE = KernelArgumentsStage()
