"""The mount stage: mount the configured filesystems under the target root.

Shallowest first, so the files stage writes into the filesystems the machine
will boot with. The mounts stay for the stages after this one; the framework
calls :func:`unmount_all` when they are done (or failed), or uses
:func:`mounted` around them in one process. A failure while mounting
unmounts what this stage mounted before raising.

Also installs what the disks stage left for the target: LUKS keys under
/etc/luks and their /etc/crypttab lines (the root may not have been mounted
while the volumes were made).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from provision.config import model
from provision.disks import luks, mounting, references
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.staging import Staging


@dataclass
class MountPlan:
    entries: list[mounting.MountEntry]
    volumes: list[str]


class MountStage(StageBase):
    name = "mount"
    phase = "mount"

    def is_empty(self, config: model.Config) -> bool:
        return not mounting.plan_mounts(config.storage.filesystems) and not config.storage.luks

    def make_plan(self, config: model.Config, target: Target) -> Plan:
        entries = mounting.plan_mounts(config.storage.filesystems)
        actions = []
        for entry in entries:
            detail = entry.device + (f" ({entry.fstype})" if entry.fstype else "")
            if entry.options:
                detail += f" with {','.join(entry.options)}"
            actions.append(Action("create", f"mount {entry.path}", detail))
        volumes = [v.name for v in config.storage.luks]
        for name in volumes:
            actions.append(Action("create", f"{luks.TARGET_KEY_DIR}/{name}", "key and /etc/crypttab line"))
        return Plan(self.name, actions, MountPlan(entries, volumes))

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[list[Step]]:
        data: MountPlan = plan.data
        root = target.root.resolve()
        steps = [Step(f"mount {e.path}", partial(_mount, e, root)) for e in data.entries]
        if data.volumes:
            steps.append(Step(luks.TARGET_KEY_DIR, partial(luks.install_in_target, root)))
        try:
            yield steps
        except BaseException:  # a half-mounted tree is given back whole
            with contextlib.suppress(Exception):
                mounting.unmount_all(root)
            raise

    def release(self, target: Target) -> None:
        unmount_all(target)


def _mount(entry: mounting.MountEntry, root: Path) -> None:
    mounting.mount_one(entry, references.existing_device(entry.device), root)


def unmount_all(target: Target) -> list[str]:
    """Unmount what the mount stage mounted under ``target.root`` (deepest first)."""
    return mounting.unmount_all(target.root.resolve())


@contextlib.contextmanager
def mounted(config: model.Config, target: Target) -> Iterator[Plan]:
    """Mount for the duration of the block; unmounted afterwards, even after a failure."""
    plan = STAGE.plan(config, target)
    STAGE.apply(plan, target)
    try:
        yield plan
    finally:
        unmount_all(target)


STAGE = MountStage()
