"""Semantic checks: the second validation layer, run on the newest model.

The schema has already checked structure and types; these checks find what a
schema cannot express (paths that clash, partitions that overlap, units that
do not parse, keys that are not keys). Each check is a small function taking
the whole config and yielding diagnostics tagged with the config path (spec
key names); the validation pipeline attaches source positions from the path.

Modules, one area each: paths and nodes (files, directories, links),
resources (URLs, hashes, headers), inline (data: URLs decoded and verified),
disks, devices (RAID, LUKS), filesystems, systemd, passwd (with sshkeys),
containers and registries, meta (proxy, kernel arguments), network.

Start-up time matters at boot: regular expressions are kept as pattern
strings (compiled and cached by ``re`` on first use) and heavy modules
(passlib, ipaddress, hashlib) are imported only when a value needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from provision.config import model
from provision.config.checks import (
    containers,
    devices,
    disks,
    filesystems,
    inline,
    meta,
    network,
    nodes,
    passwd,
    paths,
    registries,
    resources,
    systemd,
)
from provision.diagnostics import Diagnostic

Check = Callable[[model.Config], Iterable[Diagnostic]]

ALL_CHECKS: tuple[Check, ...] = (
    *meta.CHECKS,
    *resources.CHECKS,
    *inline.CHECKS,
    *disks.CHECKS,
    *devices.CHECKS,
    *filesystems.CHECKS,
    *paths.CHECKS,
    *nodes.CHECKS,
    *systemd.CHECKS,
    *passwd.CHECKS,
    *containers.CHECKS,
    *registries.CHECKS,
    *network.CHECKS,
)


def run_checks(config: model.Config) -> list[Diagnostic]:
    """All semantic findings for ``config``, in config order per area."""
    return [d for check in ALL_CHECKS for d in check(config)]


__all__ = ["ALL_CHECKS", "Check", "run_checks"]
