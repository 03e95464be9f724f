"""Checks on disks and their GPT partitions."""

from __future__ import annotations

from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import (
    GUID_HINT,
    check_path,
    describe,
    duplicate_errors,
    find_duplicates,
    is_guid,
)
from provision.diagnostics import ConfigPath, Diagnostic, error, warning

MAX_PARTITION_LABEL = 36  # UTF-16 code units in a GPT partition entry


def _partitions(config: model.Config) -> Iterator[tuple[model.Partition, ConfigPath]]:
    for d, disk in enumerate(config.storage.disks):
        for p, part in enumerate(disk.partitions):
            yield part, ("storage", "disks", d, "partitions", p)


def check_disk_devices(config: model.Config) -> Iterator[Diagnostic]:
    disks = config.storage.disks
    for d, disk in enumerate(disks):
        yield from check_path(disk.device, ("storage", "disks", d, "device"))
    yield from duplicate_errors(
        ((disk.device, ("storage", "disks", d, "device")) for d, disk in enumerate(disks)),
        "disk device",
    )


def check_partition_numbers(config: model.Config) -> Iterator[Diagnostic]:
    for d, disk in enumerate(config.storage.disks):
        base = ("storage", "disks", d, "partitions")
        for later, first in _number_clashes(disk.partitions, base):
            yield error(f"partition numbers collide with {describe(first)}", later)


def _number_clashes(
    parts: tuple[model.Partition, ...], base: ConfigPath
) -> Iterator[tuple[ConfigPath, ConfigPath]]:
    seen: dict[int, ConfigPath] = {}
    for p, part in enumerate(parts):
        if part.number == 0:
            continue
        where = (*base, p, "number")
        if part.number in seen:
            yield where, seen[part.number]
        else:
            seen[part.number] = where


def check_partition_overlap(config: model.Config) -> Iterator[Diagnostic]:
    """Explicit ranges (start and size both given, non-zero) must not overlap."""
    for d, disk in enumerate(config.storage.disks):
        placed: list[tuple[int, int, int]] = []
        for p, part in enumerate(disk.partitions):
            if not part.start_mib or not part.size_mib or not part.should_exist:
                continue
            start, end = part.start_mib, part.start_mib + part.size_mib
            for q, other_start, other_end in placed:
                if start < other_end and other_start < end:
                    yield error(
                        f"partitions overlap: MiB {start}-{end} and partitions[{q}] "
                        f"MiB {other_start}-{other_end}",
                        ("storage", "disks", d, "partitions", p),
                    )
                    break
            placed.append((p, start, end))


def check_partition_labels(config: model.Config) -> Iterator[Diagnostic]:
    labelled = [
        (part.label, (*where, "label")) for part, where in _partitions(config) if part.label
    ]
    for label, where in labelled:
        if len(label.encode("utf-16-le")) // 2 > MAX_PARTITION_LABEL:
            yield error(f"partition labels may not exceed {MAX_PARTITION_LABEL} characters", where)
        if ":" in label:
            yield error("partition label will be truncated to text before the colon", where)
    # On one disk a label identifies the partition: twice is an error (as in
    # Ignition). Across disks it makes /dev/disk/by-partlabel/ ambiguous.
    for later, first in find_duplicates(labelled):
        if later[2] == first[2]:
            yield error("cannot use the same partition label twice on a disk", later)
        else:
            yield warning(
                f"partition label also used by {describe(first)}",
                later,
                "/dev/disk/by-partlabel/ can name only one of them",
            )


def check_partition_guids(config: model.Config) -> Iterator[Diagnostic]:
    for part, where in _partitions(config):
        for key, value in (("typeGuid", part.type_guid), ("guid", part.guid)):
            if value and not is_guid(value):
                yield error(
                    'doesn\'t match the form "01234567-89AB-CDEF-EDCB-A98765432101"',
                    (*where, key),
                    GUID_HINT,
                )


def check_partition_identity(config: model.Config) -> Iterator[Diagnostic]:
    """A partition is matched by number or label; without either it cannot be found again."""
    for part, where in _partitions(config):
        if part.number == 0 and part.label is None:
            yield error("a partition number >= 1 or a label must be specified", where)


def check_should_not_exist(config: model.Config) -> Iterator[Diagnostic]:
    for part, where in _partitions(config):
        if part.should_exist:
            continue
        others = [
            key
            for key, is_set in (
                ("label", part.label is not None),
                ("typeGuid", bool(part.type_guid)),
                ("guid", bool(part.guid)),
                ("startMiB", part.start_mib is not None),
                ("sizeMiB", part.size_mib is not None),
                ("resize", part.resize),
            )
            if is_set
        ]
        if others:
            yield error(
                "shouldExist specified false with other options also specified: "
                + ", ".join(others),
                (*where, "shouldExist"),
                "a partition that should not exist is matched by number only",
            )
    # Deleting a partition while others have number 0 is allowed (Ignition allows it since
    # "stages/disks: Allow deleting a partition while creating number 0"): deletions happen
    # first, and the deleted numbers are free for number 0.


CHECKS = (
    check_disk_devices,
    check_partition_numbers,
    check_partition_overlap,
    check_partition_labels,
    check_partition_guids,
    check_partition_identity,
    check_should_not_exist,
)
