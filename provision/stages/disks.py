"""The disks stage: partitions, then RAID, then LUKS, then filesystems.

``plan`` reads every disk (never writes), computes each partition table to
be, and decides every filesystem whose device exists and is not about to
change, so a conflict (a partition that does not match, an existing
filesystem of another format) fails before anything is written. ``apply``
then writes each disk's table once, makes the kernel see it, waits for the
exact device nodes and links, and goes on with arrays, volumes, filesystems
and btrfs subvolumes in that order.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from provision.config import model
from provision.disks import (
    clevis,
    devices,
    filesystems,
    inuse,
    kernel,
    layout,
    luks,
    raid,
    references,
)
from provision.disks.layout import LayoutPlan
from provision.disks.probe import probe
from provision.errors import ProvisionError
from provision.run import have_tool, run
from provision.stages.base import Action, Plan, StageBase, Step, Target, just
from provision.stages.staging import Need, Staging

log = logging.getLogger(__name__)

_KIND_NAMES = {
    "create": "create",
    "delete": "delete",
    "recreate": "replace",
    "resize": "resize",
    "keep": "unchanged",
    "absent": "unchanged",
}


@dataclass
class DiskWork:
    config_device: str
    device: str  # real node path
    layout: LayoutPlan
    nodes: dict[int, str] = field(default_factory=dict)  # filled by apply


@dataclass
class FilesystemWork:
    spec: model.Filesystem
    planned: references.Planned | None
    device: str | None  # real node, when it exists at plan time and will not change
    action: filesystems.FilesystemAction | None  # decided at plan time when possible


@dataclass
class DisksPlan:
    disks: list[DiskWork]
    raids: list[model.Raid]
    volumes: list[model.Luks]
    filesystems: list[FilesystemWork]
    refs: references.References


class DisksStage(StageBase):
    name = "disks"
    phase = "disks"

    def is_empty(self, config: model.Config) -> bool:
        s = config.storage
        return not (s.disks or s.raid or s.luks or s.filesystems)

    def needs(self, config: model.Config, target: Target) -> list[Need]:
        """LUKS key files and Tang advertisements: fetched before any disk is touched."""
        needs = [Need(_key_need(v), f"LUKS volume {v.name} key file", v.key_file)
                 for v in config.storage.luks if v.key_file is not None and v.key_file.source is not None]
        for volume in config.storage.luks:
            for server in _tang_to_fetch(volume):
                needs.append(Need(_tang_need(volume, server.url),
                                  f"LUKS volume {volume.name} Tang server {server.url}",
                                  model.Resource(source=clevis.advertisement_url(server.url))))
        return needs

    # ---- planning -------------------------------------------------------

    def make_plan(self, config: model.Config, target: Target) -> Plan:
        storage = config.storage
        refs = references.References()
        actions: list[Action] = []
        disks = [self._plan_disk(d, refs, actions) for d in storage.disks]
        if storage.raid and not raid.md_available():
            raise ProvisionError("the config has RAID arrays but this kernel has no md driver")
        enrolled = [v.name for v in storage.luks if v.systemd_tpm2 is not None]
        if enrolled:
            _check_cryptenroll_tool()
            _check_image_systemd(target, enrolled)
        if storage.luks and not kernel.has_dm_crypt():
            raise ProvisionError("the config has LUKS volumes but this kernel has no dm-crypt")
        for array in storage.raid:
            raid.check_array(array)
            refs.add_raid(array.name)
            exists = os.path.exists(raid.array_path(array.name))
            detail = f"{raid.LEVELS[array.level]} over {', '.join(array.devices)}"
            if array.spares:
                detail += f", {array.spares} spare(s)"
            actions.append(
                Action("unchanged" if exists else "create", raid.array_path(array.name),
                       "already assembled" if exists else detail)
            )
        if any(clevis.is_present(v.clevis) for v in storage.luks):
            for tool in ("clevis", "jose"):
                if not have_tool(tool):
                    raise ProvisionError(f"the config binds LUKS volumes with clevis but {tool!r} is not installed")
        for volume in storage.luks:
            refs.add_luks(volume.name)
            actions.append(self._plan_luks(volume, refs))
        fs_work = [self._plan_filesystem(fs, refs, actions) for fs in storage.filesystems]
        data = DisksPlan(disks, list(storage.raid), list(storage.luks), fs_work, refs)
        return Plan(self.name, actions, data)

    def _plan_disk(
        self, disk: model.Disk, refs: references.References, actions: list[Action]
    ) -> DiskWork:
        from provision.disks.partition_table import read_table

        device = references.existing_device(disk.device)
        name = devices.kernel_name(device)
        if devices.is_partition(name):
            raise ProvisionError(f"{disk.device} is a partition, not a whole disk")
        busy = inuse.busy_reason(device)
        try:
            table = read_table(device)
        except ProvisionError:
            if busy:  # a disk in use may not even be readable (a container's root)
                raise inuse.DeviceBusyError(f"refusing to partition {disk.device}: {busy}") from None
            raise
        plan = layout.plan_layout(disk.device, disk, table)
        if plan.changes:
            if busy:
                raise inuse.DeviceBusyError(f"refusing to partition {disk.device}: {busy}")
            if devices.loop_without_partscan(name):
                raise ProvisionError(
                    f"{disk.device} is a loop device attached without partition scanning; "
                    "attach it with `losetup -P`"
                )
        if plan.wipe_table:
            actions.append(Action("delete", disk.device, "wipeTable: the partition table is replaced"))
        changed = {op.number for op in plan.ops if op.changes} | (
            {e.number for e in plan.result} if plan.wipe_table else set()
        )
        for op in plan.ops:
            actions.append(
                Action(_KIND_NAMES[op.kind], f"{disk.device} partition {op.number}",
                       op.describe(plan.sector_size))
            )
        for entry in plan.result:
            node = "/dev/" + devices.partition_node_name(name, entry.number)
            refs.add_partition(
                device, node, entry.number, entry.label, entry.guid, entry.number in changed
            )
        return DiskWork(disk.device, device, plan)

    def _plan_luks(self, volume: model.Luks, refs: references.References) -> Action:
        from provision.disks.cryptenroll import enrollment

        bound = clevis.binding(volume.clevis)
        enrolled = enrollment(volume.systemd_tpm2)
        action = self._plan_luks_device(volume, refs)
        if bound is not None:
            return Action(action.kind, action.item, f"{action.detail}, bound with clevis ({bound.describe()})")
        if enrolled is not None:
            return Action(action.kind, action.item, f"{action.detail}, enrolled with {enrolled.describe()}")
        return action

    def _plan_luks_device(self, volume: model.Luks, refs: references.References) -> Action:
        planned = refs.lookup(volume.device)
        if planned is not None and planned.changed:
            return Action("create", luks.mapper_path(volume.name), f"LUKS2 on {volume.device}")
        device = references.existing_device(volume.device)
        decision = luks.decide(volume, probe(device))
        if decision.kind != "reuse":
            inuse.refuse_if_busy(device, "encrypt")
        kind = "unchanged" if decision.kind == "reuse" else "create"
        return Action(kind, luks.mapper_path(volume.name), f"{decision.reason} on {volume.device}")

    def _plan_filesystem(
        self, fs: model.Filesystem, refs: references.References, actions: list[Action]
    ) -> FilesystemWork:
        fmt = fs.format or "none"
        item = f"{fmt} on {fs.device}"
        planned = refs.lookup(fs.device)
        if planned is not None and planned.kind == "partition" and not planned.changed:
            # A partition that stays as it is; the kernel may not show it yet.
            device = planned.node if os.path.exists(planned.node) else None
        elif planned is not None:
            device = None
        else:
            device = references.existing_device(fs.device)
        if device is None:
            actions.append(Action("create", item, "decided once the device exists"))
            return FilesystemWork(fs, planned, None, None)
        action = filesystems.decide(fs, probe(device))
        if action.kind in ("create", "wipe-create", "wipe"):
            inuse.refuse_if_busy(device, "make a filesystem on")
        kind = {"create": "create", "wipe-create": "replace", "wipe": "delete"}.get(
            action.kind, "unchanged"
        )
        actions.append(Action(kind, item, action.reason))
        for sub in fs.subvolumes:
            actions.append(Action("create", f"btrfs subvolume {sub.name} on {fs.device}",
                                  "if missing"))
        return FilesystemWork(fs, None, device, action)

    # ---- applying -------------------------------------------------------

    def steps(self, plan: Plan, target: Target, staged: Staging) -> contextlib.AbstractContextManager[Iterable[Step]]:
        data: DisksPlan = plan.data
        # Every Tang advertisement is checked against its thumbprint before the
        # first step: a wrong one fails closed, with nothing written.
        adverts = {v.name: self._verified_advertisements(v, staged) for v in data.volumes}
        steps = [Step(d.config_device, partial(self._apply_disk, d)) for d in data.disks]
        steps += [Step(raid.array_path(a.name), partial(self._apply_raid, a, data)) for a in data.raids]
        steps += [Step(luks.mapper_path(v.name), partial(self._apply_luks, v, data, staged, adverts[v.name]))
                  for v in data.volumes]
        steps += [Step(f"{w.spec.format or 'none'} on {w.spec.device}", partial(self._apply_filesystem, w, data))
                  for w in data.filesystems]
        return just(steps)

    def _apply_disk(self, work: DiskWork) -> None:
        from provision.disks import partition_table, waiting

        plan = work.layout
        partition_table.write_table(plan)
        factor = plan.sector_size // 512
        geometry = {e.number: (e.start * factor, e.size * factor) for e in plan.result}
        name = devices.kernel_name(work.device)
        if plan.changes or not _kernel_matches(name, geometry):
            waiting.refresh_partitions(work.device, geometry)
        work.nodes = waiting.wait_for_partitions(work.device, geometry)
        table = partition_table.read_table(work.device) if plan.changes else None
        entries = table.partitions if table is not None else plan.result
        links = {}
        for entry in entries:
            node = work.nodes.get(entry.number)
            if node is None:
                continue
            if entry.label:
                links[f"by-partlabel/{devices.encode_link_name(entry.label)}"] = node
            if entry.guid:
                links[f"by-partuuid/{entry.guid.lower()}"] = node
        waiting.wait_for_links(links)

    def _resolve(self, path: str, data: DisksPlan) -> str:
        """The real node for a config device reference, now that earlier steps ran."""
        planned = data.refs.lookup(path)
        if planned is not None and planned.kind == "partition":
            for disk in data.disks:
                if disk.device == planned.key and planned.number in disk.nodes:
                    return disk.nodes[planned.number]
        if planned is not None and planned.kind == "raid":
            return os.path.realpath(raid.array_path(planned.key))
        if planned is not None and planned.kind == "luks":
            return os.path.realpath(luks.mapper_path(planned.key))
        return references.existing_device(path)

    def _apply_raid(self, array: model.Raid, data: DisksPlan) -> None:
        from provision.disks import waiting

        path = raid.array_path(array.name)
        if os.path.exists(path):
            log.info("RAID %s already exists", path)
            return
        if not raid.md_available():
            raise ProvisionError(f"cannot create RAID {array.name}: this kernel has no md driver")
        members = [self._resolve(d, data) for d in array.devices]
        for member in members:
            inuse.refuse_if_busy(member, "add to a RAID array")
        run("mdadm", raid.create_args(array, members))
        waiting.wait_for_block_device(path)

    def _verified_advertisements(self, volume: model.Luks, staged: Staging) -> dict[str, Any]:
        from provision.errors import StageError

        verified = {}
        for server in _tang_to_fetch(volume):
            with staged.open(self.name, _tang_need(volume, server.url)) as handle:
                data = handle.read()
            try:
                verified[server.url] = clevis.verify_advertisement(server.url, server.thumbprint, data)
            except ProvisionError as exc:
                raise StageError(self.name, luks.mapper_path(volume.name), str(exc)) from None
        return verified

    def _apply_luks(self, volume: model.Luks, data: DisksPlan, staged: Staging, adverts: dict[str, Any]) -> None:
        from provision.disks import waiting

        device = self._resolve(volume.device, data)
        decision = luks.decide(volume, probe(device))
        if decision.kind != "reuse":
            inuse.refuse_if_busy(device, "encrypt")
        key_path = luks.format_volume(volume, device, decision, lambda _: staged.open(self.name, _key_need(volume)))
        mapped = luks.open_volume(volume, device, key_path)
        luks.bind_volume(volume, device, key_path, adverts)
        luks.enroll_volume(volume, device, key_path)
        waiting.wait_for_block_device(mapped)

    def _apply_filesystem(self, work: FilesystemWork, data: DisksPlan) -> None:
        from provision.disks import subvolumes

        fs = work.spec
        device = work.device or self._resolve(fs.device, data)
        action = work.action
        if action is None:
            action = filesystems.decide(fs, probe(device))
            if action.kind in ("create", "wipe-create", "wipe"):
                inuse.refuse_if_busy(device, "make a filesystem on")
        filesystems.apply_filesystem(fs, device, action)
        if fs.subvolumes:
            subvolumes.create_subvolumes(device, fs.subvolumes)
        if action.kind in ("create", "wipe-create"):
            _link_filesystem(device)


def _check_cryptenroll_tool() -> None:
    """systemd-cryptenroll is here and new enough (251: --tpm2-with-pin, $NEWPIN)."""
    from provision.disks.cryptenroll import MIN_SYSTEMD

    if not have_tool("systemd-cryptenroll"):
        raise ProvisionError("the config enrolls LUKS volumes with the TPM2 but 'systemd-cryptenroll' "
                             "is not installed")
    shown = run("systemd-cryptenroll", ["--version"], check=False).stdout.split()
    version = int(shown[1]) if len(shown) > 1 and shown[1].isdigit() else 0
    if version < MIN_SYSTEMD:
        raise ProvisionError(f"systemd-cryptenroll here is systemd {version or 'unknown'}; "
                             f"TPM2 enrollment needs {MIN_SYSTEMD} or newer")


def _check_image_systemd(target: Target, enrolled: list[str]) -> None:
    """The image that will unlock the enrolled volumes has systemd 251 or newer: checked
    here, before any disk changes (the mount stage looks again before crypttab is written)."""
    from provision.disks.cryptenroll import refuse_unless_image_unlocks, systemd_version

    if target.image is not None:  # at boot: read from the root device before this phase
        refuse_unless_image_unlocks(enrolled, target.image.where, target.image.systemd,
                                    target.image.unreadable)
    else:
        refuse_unless_image_unlocks(enrolled, f"the target root {target.root}", systemd_version(target.root))


def _key_need(volume: model.Luks) -> str:
    return f"luks {volume.name}"


def _tang_need(volume: model.Luks, url: str) -> str:
    return f"tang {volume.name} {url}"


def _tang_to_fetch(volume: model.Luks) -> tuple[clevis.TangServer, ...]:
    """The volume's Tang servers whose advertisement the config does not carry."""
    bound = clevis.binding(volume.clevis)
    return tuple(t for t in bound.tang if t.advertisement is None) if bound is not None else ()


def _kernel_matches(disk_name: str, geometry: dict[int, tuple[int, int]]) -> bool:
    seen = devices.partitions_of(disk_name)
    if set(seen) != set(geometry):
        return False
    for number, (start, size) in geometry.items():
        base = devices.SYS_BLOCK / seen[number]
        try:
            if (int((base / "start").read_text()), int((base / "size").read_text())) != (start, size):
                return False
        except (OSError, ValueError):
            return False
    return True


def _link_filesystem(device: str) -> None:
    """by-uuid/by-label links for a new filesystem (made by udev, or by us without it)."""
    from provision.disks import waiting

    found = probe(device)
    links = {}
    if found.uuid:
        links[f"by-uuid/{found.uuid}"] = device
    if found.label:
        links[f"by-label/{devices.encode_link_name(found.label)}"] = device
    if links:
        waiting.announce_change(device)
    waiting.wait_for_links(links)


STAGE = DisksStage()
