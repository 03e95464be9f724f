"""Partition planning as pure data: Ignition spec 3.x semantics on GPT.

Given a disk's current table and the configured partitions, compute the final
table and the operations that produce it, or fail with a message naming the
rule that was broken. Nothing here touches a device, so the whole plan is
known (and shown) before anything is written, and a plan that fails leaves
the disk untouched.

The rules (Ignition's documented partition semantics):

- An existing partition is matched by ``number``; it matches when every field
  the config sets (label, startMiB, sizeMiB, typeGuid, guid) agrees.
- ``number`` 0 means the lowest free slot; such partitions are placed after
  all numbered ones and never match an existing partition.
- ``startMiB`` 0 is the start of the largest free block; ``sizeMiB`` 0 fills
  the free block the partition starts in. Unset start/size on an existing
  partition means "keep what is there" (unless wipePartitionEntry); so does
  startMiB 0 (a deliberate difference: Ignition re-resolves it against the
  other partitions and can reject its own earlier result on a second run).
- A mismatch is an error unless ``wipePartitionEntry`` (delete and recreate)
  or ``resize`` with only the size differing (recreated in place, same GUIDs
  and label). provision grows partitions only: shrinking would cut off data.
- ``shouldExist: false`` deletes a partition only with ``wipePartitionEntry``.
- ``wipeTable`` starts from an empty table.

Start and size are resolved the way Ignition resolves them: every referenced
partition is taken out of the table and the configured ones are placed back
in list order, so a zero start or size sees the space it would really get.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from provision.config import model
from provision.errors import ProvisionError

MIB = 1024 * 1024
LINUX_FILESYSTEM_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ENTRIES = 128


class LayoutError(ProvisionError):
    """The configured partitions cannot be reconciled with the disk."""


@dataclass(frozen=True)
class PartitionEntry:
    """One GPT entry. ``guid`` "" means "let the partitioner pick a random one"."""

    number: int
    start: int  # first sector
    size: int  # sectors
    type_guid: str = LINUX_FILESYSTEM_GUID
    guid: str = ""
    label: str = ""

    @property
    def end(self) -> int:
        return self.start + self.size - 1


@dataclass(frozen=True)
class Table:
    """A disk's partition table as read from the device."""

    sector_size: int
    total_sectors: int  # logical sectors
    first_usable: int
    last_usable: int
    partitions: tuple[PartitionEntry, ...] = ()
    kind: str | None = "gpt"  # "gpt", "dos", ... or None (no table)

    @classmethod
    def fresh_gpt(cls, sector_size: int, total_sectors: int) -> Table:
        """The usable range of a new GPT with the standard 128 entries."""
        array_sectors = (GPT_ENTRIES * 128 + sector_size - 1) // sector_size
        reserved = 1 + array_sectors  # header + entry array, at each end
        return cls(
            sector_size=sector_size,
            total_sectors=total_sectors,
            first_usable=1 + reserved,
            last_usable=total_sectors - 1 - reserved,
            kind=None,
        )


@dataclass(frozen=True)
class PartitionOp:
    """What happens to one configured partition.

    ``kind``: create, delete, recreate (wipePartitionEntry), resize, keep, absent.
    """

    kind: str
    number: int
    new: PartitionEntry | None = None
    old: PartitionEntry | None = None
    reason: str = ""

    @property
    def changes(self) -> bool:
        return self.kind in ("create", "delete", "recreate", "resize")

    def describe(self, sector_size: int) -> str:
        def where(e: PartitionEntry) -> str:
            name = f" label {e.label!r}" if e.label else ""
            return (
                f"start {e.start * sector_size // MIB} MiB, size "
                f"{_mib_text(e.size * sector_size)}{name}"
            )

        if self.new is not None and self.old is not None and self.kind == "resize":
            return f"grow from {_mib_text(self.old.size * sector_size)} to {where(self.new)}"
        if self.new is not None:
            return where(self.new) + (f" ({self.reason})" if self.reason else "")
        return self.reason


def _mib_text(size_bytes: int) -> str:
    mib = size_bytes / MIB
    return f"{mib:.0f} MiB" if mib == int(mib) else f"{mib:.2f} MiB"


@dataclass(frozen=True)
class LayoutPlan:
    device: str
    wipe_table: bool
    sector_size: int
    ops: tuple[PartitionOp, ...]
    result: tuple[PartitionEntry, ...]  # the whole table after applying

    @property
    def changes(self) -> bool:
        return self.wipe_table or any(op.changes for op in self.ops)


@dataclass(frozen=True)
class _Resolved:
    spec: model.Partition
    number: int
    start: int | None  # None: not placed (shouldExist false)
    size: int | None
    old: PartitionEntry | None


def plan_layout(device: str, disk: model.Disk, table: Table) -> LayoutPlan:
    """Reconcile ``disk.partitions`` with ``table``; raise LayoutError on conflict."""
    if table.kind not in (None, "gpt") and not disk.wipe_table:
        raise LayoutError(
            f"{device} has a {table.kind!r} partition table; provision writes GPT only "
            "and will not convert it (set wipeTable to replace it)"
        )
    if disk.wipe_table or table.kind is None:
        fresh = Table.fresh_gpt(table.sector_size, table.total_sectors)
        table = replace(fresh, kind=table.kind)
        existing: dict[int, PartitionEntry] = {}
    else:
        existing = {p.number: p for p in table.partitions}

    resolved = _resolve(device, disk.partitions, table, existing)
    ops = [_decide(device, r, table.sector_size) for r in resolved]

    final = {} if disk.wipe_table else dict(existing)
    for op in ops:
        if op.kind == "delete":
            final.pop(op.number, None)
        elif op.new is not None:
            final[op.number] = op.new
    return LayoutPlan(
        device=device,
        wipe_table=disk.wipe_table,
        sector_size=table.sector_size,
        ops=tuple(ops),
        result=tuple(sorted(final.values(), key=lambda e: e.number)),
    )


def _resolve(
    device: str,
    specs: Sequence[model.Partition],
    table: Table,
    existing: dict[int, PartitionEntry],
) -> list[_Resolved]:
    per_mib = MIB // table.sector_size
    # Partitions the config deletes are gone before anything is placed, wherever
    # they are in the list (as in Ignition, which deletes first).
    deleted = {p.number for p in specs if not p.should_exist and p.number}
    occupied = {n: (e.start, e.end) for n, e in existing.items() if n not in deleted}
    # Numbered partitions first, then number 0 in list order (stable).
    ordered = sorted(specs, key=lambda p: p.number == 0)
    out: list[_Resolved] = []
    for spec in ordered:
        start = None if spec.start_mib is None else spec.start_mib * per_mib
        size = None if spec.size_mib is None else spec.size_mib * per_mib
        old = existing.get(spec.number) if spec.number else None
        if old is not None:
            occupied.pop(old.number, None)
            if not spec.wipe_partition_entry:
                # startMiB 0 on an existing partition means "where it is": a
                # second run must match what the first one made (Ignition
                # re-resolves 0 and can fail a re-run; we deliberately do not).
                start = start or old.start
                size = old.size if size is None else size
        if not spec.should_exist:
            out.append(_Resolved(spec, spec.number, None, None, old))
            continue
        number = spec.number or _first_free_number(occupied, device)
        if number in occupied:
            raise LayoutError(f"{device}: partition {number} is configured more than once")
        start, size = _place(device, number, start, size, occupied, table)
        occupied[number] = (start, start + size - 1)
        out.append(_Resolved(spec, number, start, size, old))
    return out


def _first_free_number(occupied: dict[int, tuple[int, int]], device: str) -> int:
    for number in range(1, GPT_ENTRIES + 1):
        if number not in occupied:
            return number
    raise LayoutError(f"{device}: no free partition number (GPT holds {GPT_ENTRIES})")


def free_blocks(
    occupied: Iterable[tuple[int, int]], first: int, last: int
) -> list[tuple[int, int]]:
    """Free sector ranges (inclusive) between ``first`` and ``last``."""
    blocks = []
    cursor = first
    for start, end in sorted(occupied):
        if start > cursor:
            blocks.append((cursor, min(start - 1, last)))
        cursor = max(cursor, end + 1)
    if cursor <= last:
        blocks.append((cursor, last))
    return [b for b in blocks if b[0] <= b[1]]


def _place(
    device: str,
    number: int,
    start: int | None,
    size: int | None,
    occupied: dict[int, tuple[int, int]],
    table: Table,
) -> tuple[int, int]:
    align = max(1, MIB // table.sector_size)
    blocks = free_blocks(occupied.values(), table.first_usable, table.last_usable)
    what = f"{device}: partition {number}"
    if not start:
        # The largest free block; the first of equals wins (as sgdisk picks).
        block = max(blocks, key=lambda b: (b[1] - b[0], -b[0]), default=(0, -1))
        start = -(-block[0] // align) * align
        if start > block[1]:
            raise LayoutError(
                f"{what}: no free space left on the disk (partitions with a number are "
                "placed before those with number 0)"
            )
    else:
        block = next((b for b in blocks if b[0] <= start <= b[1]), (0, -1))
        if block[1] < 0:
            raise LayoutError(
                f"{what}: start {start // align} MiB "
                + _conflict(start, start, occupied, table)
            )
    end = block[1] if not size else start + size - 1
    if end > block[1]:
        raise LayoutError(
            f"{what}: {size * table.sector_size // MIB if size else 0} MiB at "
            f"{start // align} MiB " + _conflict(start, end, occupied, table)
        )
    return start, end - start + 1


def _conflict(start: int, end: int, occupied: dict[int, tuple[int, int]], table: Table) -> str:
    for other, (s, e) in sorted(occupied.items()):
        if s <= end and start <= e:
            return f"overlaps partition {other}"
    if end > table.last_usable:
        return "runs past the end of the disk"
    return "is outside the usable area of the disk"


def _mismatches(old: PartitionEntry, r: _Resolved) -> list[str]:
    spec = r.spec
    out = []
    if r.start != old.start:
        out.append(f"start (wanted sector {r.start}, found {old.start})")
    if r.size != old.size:
        out.append(f"size (wanted {r.size} sectors, found {old.size})")
    if spec.type_guid and spec.type_guid.upper() != old.type_guid.upper():
        out.append(f"typeGuid (wanted {spec.type_guid.upper()}, found {old.type_guid})")
    if spec.guid and spec.guid.upper() != old.guid.upper():
        out.append(f"guid (wanted {spec.guid.upper()}, found {old.guid})")
    if spec.label is not None and spec.label != old.label:
        out.append(f"label (wanted {spec.label!r}, found {old.label!r})")
    return out


def _decide(device: str, r: _Resolved, sector_size: int) -> PartitionOp:
    spec, old, number = r.spec, r.old, r.number
    if not spec.should_exist:
        if old is None:
            return PartitionOp("absent", number, reason="does not exist, as configured")
        if not spec.wipe_partition_entry:
            raise LayoutError(
                f"{device}: partition {number} exists but shouldExist is false and "
                "wipePartitionEntry is not set (Ignition deletes only with wipePartitionEntry)"
            )
        return PartitionOp("delete", number, old=old, reason="shouldExist is false")

    assert r.start is not None and r.size is not None
    new = PartitionEntry(
        number=number,
        start=r.start,
        size=r.size,
        type_guid=(spec.type_guid or LINUX_FILESYSTEM_GUID).upper(),
        guid=(spec.guid or "").upper(),
        label=spec.label or "",
    )
    if old is None:
        return PartitionOp("create", number, new=new)
    problems = _mismatches(old, r)
    if not problems:
        return PartitionOp("keep", number, new=old, old=old, reason="matches")
    if spec.wipe_partition_entry:
        return PartitionOp("recreate", number, new=new, old=old, reason="; ".join(problems))
    if spec.resize and all(p.startswith("size") for p in problems):
        if r.size < old.size:
            raise LayoutError(
                f"{device}: partition {number}: resize would shrink it from "
                f"{old.size * sector_size // MIB} MiB to {r.size * sector_size // MIB} MiB; "
                "provision only grows partitions (use wipePartitionEntry to recreate it)"
            )
        grown = replace(old, size=r.size)
        return PartitionOp("resize", number, new=grown, old=old)
    raise LayoutError(
        f"{device}: partition {number} exists but does not match the config: "
        + "; ".join(problems)
        + " (set wipePartitionEntry to recreate it"
        + (", or resize to grow it)" if not spec.resize else ")")
    )
