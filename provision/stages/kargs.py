"""Kernel arguments: accepted in configs (Ignition has them), not applied yet.

Changing them means editing the boot loader's configuration and rebooting,
which this version does not do. Rather than drop them silently, a config
that sets any fails here, first, before any disk or file is touched.
"""

from __future__ import annotations

from provision.config.model import Config
from provision.errors import StageError
from provision.stages.base import Plan, StageBase, Target


class KernelArgumentsStage(StageBase):
    name = "kargs"
    # In the first phase: a config it refuses stops the boot before any disk is touched.
    phase = "disks"

    def is_empty(self, config: Config) -> bool:
        args = config.kernel_arguments
        return not args.should_exist and not args.should_not_exist

    def make_plan(self, config: Config, target: Target) -> Plan:
        args = config.kernel_arguments
        listed = ", ".join([*args.should_exist, *(f"!{a}" for a in args.should_not_exist)])
        raise StageError(
            self.name, "kernelArguments",
            f"changing kernel arguments ({listed}) is not supported yet; set them in the image's boot loader",
        )


STAGE = KernelArgumentsStage()
