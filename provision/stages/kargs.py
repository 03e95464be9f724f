"""Kernel arguments: ``kernelArguments.shouldExist/shouldNotExist`` written into
the target's boot loader configuration (provision.bootloader does the editing).

The arguments take effect on the next boot. From the initramfs, the disks
phase runs this stage first, on its own, against the root's boot filesystems
(provision.boot.bootfs), and when anything changed it reboots into the new
command line before any disk is touched, as Ignition does; that boot finds
nothing left to change and provisions. ``provision apply`` on an image tree
just edits the files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from provision.bootloader.cmdline import ArgChange
from provision.bootloader.edit import BootLoaderEdit, plan_edit, write_edit
from provision.config.model import Config
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.target.tree import TargetTree

if TYPE_CHECKING:
    from provision.stages.staging import Staging


def _change(config: Config) -> ArgChange:
    args = config.kernel_arguments
    return ArgChange(tuple(args.should_exist), tuple(args.should_not_exist))


class KernelArgumentsStage(StageBase):
    name = "kargs"
    # First in the first phase: the reboot (or a refusal) comes before any disk is touched.
    phase = "disks"

    def is_empty(self, config: Config) -> bool:
        return not _change(config)

    def make_plan(self, config: Config, target: Target) -> Plan:
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

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[Iterable[Step]]:
        edit: BootLoaderEdit = plan.data
        if edit.loader == "helper":
            yield [Step("kargs-helper", partial(self._run_helper, plan, target, edit))]
            return
        with TargetTree(target.root) as tree:
            yield [Step(e.path, partial(write_edit, tree, e)) for e in edit.edits]

    @staticmethod
    def _run_helper(plan: Plan, target: Target, edit: BootLoaderEdit) -> bool:
        from provision.bootloader.helper import run_helper

        changed = run_helper(target.root, edit.change)
        # Only the helper knows whether it changed anything; the plan says so
        # from now on (the boot reboots when the plan has changes).
        plan.actions = [Action("replace" if changed else "unchanged", "kargs-helper",
                               edit.change.describe())]
        return changed


STAGE = KernelArgumentsStage()
