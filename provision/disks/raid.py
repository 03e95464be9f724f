"""Software RAID arrays with mdadm (linear, raid0/1/4/5/6/10, spares, options)."""

from __future__ import annotations

from provision.config import model
from provision.errors import ProvisionError

# Ignition's level names; mdadm accepts each of them as written.
LEVELS = {
    "linear": "linear",
    "raid0": "raid0", "0": "raid0", "stripe": "raid0",
    "raid1": "raid1", "1": "raid1", "mirror": "raid1",
    "raid4": "raid4", "4": "raid4",
    "raid5": "raid5", "5": "raid5",
    "raid6": "raid6", "6": "raid6",
    "raid10": "raid10", "10": "raid10",
}
# Smallest number of active members mdadm accepts per level.
_MIN_ACTIVE = {"linear": 1, "raid0": 1, "raid1": 1, "raid4": 2, "raid5": 2, "raid6": 4, "raid10": 2}


class RaidError(ProvisionError):
    """An array that cannot be built as configured."""


def array_path(name: str) -> str:
    return f"/dev/md/{name}"


def check_array(raid: model.Raid) -> str:
    """Validate level and member counts; return mdadm's level name."""
    level = LEVELS.get(raid.level)
    if level is None:
        raise RaidError(f"RAID {raid.name}: unknown level {raid.level!r} (use one of {', '.join(sorted(set(LEVELS.values())))})")
    active = len(raid.devices) - raid.spares
    if raid.spares < 0 or active < _MIN_ACTIVE[level]:
        raise RaidError(
            f"RAID {raid.name}: {level} needs at least {_MIN_ACTIVE[level]} active devices; "
            f"{len(raid.devices)} devices with {raid.spares} spares leaves {active}"
        )
    if level in ("linear", "raid0") and raid.spares:
        raise RaidError(f"RAID {raid.name}: {level} has no redundancy and cannot use spares")
    return level


def create_args(raid: model.Raid, devices: list[str]) -> list[str]:
    """mdadm --create arguments for ``raid`` over the resolved member ``devices``."""
    level = check_array(raid)
    args = [
        "--create", array_path(raid.name),
        "--force", "--run", "--homehost=any",
        f"--level={level}",
        f"--raid-devices={len(devices) - raid.spares}",
    ]
    if raid.spares:
        args.append(f"--spare-devices={raid.spares}")
    return [*args, *raid.options, *devices]


def md_available() -> bool:
    """The kernel has the md driver (this test machine's kernel does not)."""
    from provision.disks.kernel import has_md

    return has_md()
