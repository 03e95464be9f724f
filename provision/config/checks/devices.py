"""Checks on software RAID arrays and LUKS volumes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

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
    if volume.clevis:
        yield from _check_clevis(volume.clevis, (*where, "clevis"))
    if volume.systemd_tpm2 is not None and volume.clevis and _clevis_present(volume.clevis):
        yield error("a LUKS volume is bound either with clevis or with systemdTpm2, not both",
                    (*where, "systemdTpm2"), "remove one of clevis and systemdTpm2")
    if volume.cex and volume.cex.get("enabled"):
        yield error("LUKS cex (IBM secure keys) is not supported", (*where, "cex"))


def _clevis_present(clevis: dict[str, Any]) -> bool:
    # Imported here: the validate path stays light unless both binders are configured.
    from provision.disks.clevis import is_present

    return is_present(clevis)


def _check_clevis(clevis: dict[str, Any], where: ConfigPath) -> Iterator[Diagnostic]:
    """Ignition's clevis rules, plus what clevis itself would refuse only at bind time."""
    from provision.disks.clevis import CUSTOM_PINS

    custom = clevis.get("custom") or {}
    servers = clevis.get("tang") or []
    tpm2 = clevis.get("tpm2") is True
    threshold = clevis.get("threshold")
    if custom.get("pin") and (servers or tpm2 or threshold):
        yield error("cannot use custom clevis config with tpm2, tang, or threshold", where)
        return
    if custom.get("pin") or custom.get("config") or custom.get("needsNetwork") is True:
        yield from _check_custom(custom, (*where, "custom"), CUSTOM_PINS)
        return
    yield from duplicate_errors(
        ((t.get("url"), (*where, "tang", i, "url")) for i, t in enumerate(servers) if t.get("url")),
        "Tang server URL",
    )
    for i, server in enumerate(servers):
        yield from _check_tang(server, (*where, "tang", i))
    pins = len(servers) + int(tpm2)
    if threshold is not None and threshold != 0:
        if threshold < 0:
            yield error("clevis threshold cannot be negative", (*where, "threshold"))
        elif threshold > pins:
            yield error(
                f"clevis threshold {threshold} is more than the {pins} pin(s) configured "
                "(Tang servers plus tpm2)",
                (*where, "threshold"),
                "the volume could never be unlocked",
            )


def _check_custom(custom: dict[str, Any], where: ConfigPath, known: tuple[str, ...]) -> Iterator[Diagnostic]:
    pin = custom.get("pin")
    if not pin:
        yield error("missing required custom clevis pin", (*where, "pin"))
    elif pin not in known:
        yield error(f"unsupported clevis pin {pin!r}", (*where, "pin"), f"one of {', '.join(known)}")
    config = custom.get("config")
    if not config:
        yield error("missing required custom clevis config", (*where, "config"))
        return
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        yield error(f"custom clevis config is not valid JSON: {exc}", (*where, "config"))
        return
    if not isinstance(parsed, dict):
        yield error("custom clevis config must be a JSON object", (*where, "config"))


def _check_tang(server: dict[str, Any], where: ConfigPath) -> Iterator[Diagnostic]:
    from urllib.parse import urlsplit

    url = server.get("url") or ""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        yield error("Tang server URL must be http:// or https://", (*where, "url"))
    thumbprint = server.get("thumbprint")
    if not thumbprint:
        yield error("thumbprint is required", (*where, "thumbprint"),
                    "the thumbprint of the server's signing key, as tang-show-keys prints it")
    advertisement = server.get("advertisement")
    if not advertisement:
        return
    try:
        parsed = json.loads(advertisement)
    except ValueError:
        yield error("advertisement is not valid JSON", (*where, "advertisement"))
        return
    if thumbprint:
        from provision.disks.clevis import ClevisError, key_for_thumbprint

        try:
            key_for_thumbprint(parsed, thumbprint)
        except ClevisError as exc:
            yield error(str(exc), (*where, "thumbprint"), "the advertisement and the thumbprint must match")


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
