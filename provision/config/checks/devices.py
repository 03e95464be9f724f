"""Checks on software RAID arrays and LUKS volumes."""

from __future__ import annotations

from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import (
    GUID_HINT,
    check_path,
    describe,
    duplicate_errors,
    is_guid,
)
from provision.diagnostics import ConfigPath, Diagnostic, error

# Fewest active (non-spare) members mdadm creates an array of without --force.
MIN_ACTIVE_DEVICES = {"linear": 1, "0": 1, "1": 2, "4": 2, "5": 2, "6": 4, "10": 2}
MAX_LUKS_LABEL = 47


def raid_level(level: str) -> str:
    """Level names with and without the "raid" prefix are the same level."""
    return level.removeprefix("raid")


def _device_name_problem(name: str) -> str | None:
    if "/" in name:
        return "device names cannot contain slashes"
    if name in (".", ".."):
        return "device name cannot be . or .."
    return None


def check_raid(config: model.Config) -> Iterator[Diagnostic]:
    arrays = config.storage.raid
    yield from duplicate_errors(
        ((r.name, ("storage", "raid", i, "name")) for i, r in enumerate(arrays)), "RAID array name"
    )
    for i, array in enumerate(arrays):
        yield from _check_array(array, ("storage", "raid", i))
    members = (
        (device, ("storage", "raid", i, "devices", j))
        for i, array in enumerate(arrays)
        for j, device in enumerate(array.devices)
    )
    yield from duplicate_errors(members, "RAID member device", "a device can be in one array only")


def _check_array(array: model.Raid, where: ConfigPath) -> Iterator[Diagnostic]:
    problem = _device_name_problem(array.name)
    if problem:
        yield error(problem, (*where, "name"))
    for j, device in enumerate(array.devices):
        yield from check_path(device, (*where, "devices", j))
    level = raid_level(array.level)
    if level not in MIN_ACTIVE_DEVICES:
        yield error("unrecognized raid level", (*where, "level"))
        return
    if not array.devices:
        yield error("raid devices required", (*where, "devices"))
        return
    if array.spares and level in ("linear", "0"):
        yield error("spares unsupported for linear and raid0 arrays", (*where, "spares"))
        return
    if array.spares >= len(array.devices):
        yield error(
            f"{array.spares} spares leave no active device among {len(array.devices)} devices",
            (*where, "spares"),
        )
        return
    active, needed = len(array.devices) - array.spares, MIN_ACTIVE_DEVICES[level]
    if active < needed and "--force" not in array.options:
        yield error(
            f"{array.level} needs at least {needed} active devices, got {active}",
            (*where, "devices"),
        )


def check_luks(config: model.Config) -> Iterator[Diagnostic]:
    volumes = config.storage.luks
    yield from duplicate_errors(
        ((v.name, ("storage", "luks", i, "name")) for i, v in enumerate(volumes)), "LUKS name"
    )
    yield from duplicate_errors(
        ((v.device, ("storage", "luks", i, "device")) for i, v in enumerate(volumes)), "LUKS device"
    )
    for i, volume in enumerate(volumes):
        yield from _check_volume(volume, ("storage", "luks", i))


def _check_volume(volume: model.Luks, where: ConfigPath) -> Iterator[Diagnostic]:
    problem = _device_name_problem(volume.name)
    if problem:
        yield error(problem, (*where, "name"))
    yield from check_path(volume.device, (*where, "device"))
    if volume.label is not None and len(volume.label.encode()) > MAX_LUKS_LABEL:
        yield error(
            f"luks device labels cannot be longer than {MAX_LUKS_LABEL} characters",
            (*where, "label"),
        )
    if volume.uuid and not is_guid(volume.uuid):
        yield error("LUKS uuid is not a UUID", (*where, "uuid"), GUID_HINT)
    if volume.clevis and any(v not in (None, False, [], {}) for v in volume.clevis.values()):
        yield error(
            "LUKS clevis bindings (TPM2, Tang) are not supported yet",
            (*where, "clevis"),
            "use a keyFile, or leave keyFile unset for a random key kept in the root",
        )
    if volume.cex and volume.cex.get("enabled"):
        yield error("LUKS cex (IBM secure keys) is not supported", (*where, "cex"))


def check_raid_luks_overlap(config: model.Config) -> Iterator[Diagnostic]:
    """A device cannot be both a RAID member and a LUKS container."""
    members = {
        device: ("storage", "raid", i, "devices", j)
        for i, array in enumerate(config.storage.raid)
        for j, device in enumerate(array.devices)
    }
    for i, volume in enumerate(config.storage.luks):
        member = members.get(volume.device)
        if member:
            yield error(
                f"device is also a RAID member in {describe(member)}",
                ("storage", "luks", i, "device"),
            )


CHECKS = (check_raid, check_luks, check_raid_luks_overlap)
