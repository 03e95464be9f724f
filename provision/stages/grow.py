"""The grow stage: partitions, and what they hold, grown to fill their disks.

Runs in the mount phase, after the mount stage: the root (and the config's
filesystems) are mounted, which XFS and btrfs need to grow. What to grow is
``storage.grow.devices`` (spec 1.1.0; cloud-config ``growpart``), or, when
the config does not say, the root if the image's settings ask for it
(``grow_root``, as cloud-init images grow their root by default).

An explicitly named device that cannot be grown is an error; the image's
default is best effort: a root that is not on a partition (LVM, RAID, a
directory in development) is left alone and said so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from provision.config.model import Config
from provision.errors import ProvisionError
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.staging import Staging

NAME = "grow"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GrowItem:
    name: str  # as the config (or the image) named it
    device: str
    mountpoint: str | None
    resize_contents: bool


def _wanted(config: Config, target: Target) -> tuple[list[str], bool, bool]:
    """(what to grow, explicitly asked, grow what the partitions hold)."""
    grow = config.storage.grow
    resize = grow is None or grow.resize_filesystems is not False
    if grow is not None and grow.devices is not None:
        return list(grow.devices), True, resize
    from provision.instance.image import read_image_settings

    return (["/"] if read_image_settings(target.root).grow_root else []), False, resize


def _resolve(name: str, target: Target, explicit: bool, resize: bool) -> GrowItem | None:
    from provision.disks.grow import device_of, growable_device, mount_of

    if name.startswith("/dev/"):
        device = device_of(name)
        mountpoint = None
    else:
        inside = target.root / name.lstrip("/")
        mounted = mount_of(inside)
        if mounted is None:
            if explicit:
                raise ProvisionError(f"{name}: nothing is mounted there in the target")
            log.info("grow: %s is not a mount point; not growing it", inside)
            return None
        device, mountpoint = device_of(mounted.device), mounted.mountpoint
    if not growable_device(device):
        if explicit:
            raise ProvisionError(f"{name} ({device}) is not a partition; only partitions are grown")
        log.info("grow: %s (%s) is not a partition; not growing it", name, device)
        return None
    return GrowItem(name, device, mountpoint, resize)


class GrowStage(StageBase):
    name = NAME
    phase = "mount"

    def is_empty(self, config: Config) -> bool:
        grow = config.storage.grow
        return grow is not None and grow.devices == ()

    def make_plan(self, config: Config, target: Target) -> Plan:
        names, explicit, resize = _wanted(config, target)
        items = [item for name in names
                 if (item := _resolve(name, target, explicit, resize)) is not None]
        actions = [Action("grow", item.name, f"{item.device}: partition to the end of the free "
                          f"space after it{', then what it holds' if item.resize_contents else ''}")
                   for item in items]
        return Plan(NAME, actions, items)

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[list[Step]]:
        from provision.disks.grow import grow

        items: list[GrowItem] = plan.data

        def change(item: GrowItem) -> bool:
            result = grow(item.device, item.mountpoint, resize_contents=item.resize_contents)
            log.info("grow: %s: partition %s%s", item.device,
                     "grown" if result.partition_grown else "already full",
                     f", {result.contents} grown" if result.contents else "")
            return result.partition_grown

        yield [Step(item.name, lambda item=item: change(item)) for item in items]  # type: ignore[misc]


STAGE = GrowStage()
