"""Partition planning (pure data): Ignition spec 3.x partition rules, no devices.

Expected layouts are worked out by hand from the documented rules; the root
tests (test_disks_partitions.py) check the same rules on real devices.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from provision.config import model
from provision.disks.layout import (
    LINUX_FILESYSTEM_GUID,
    MIB,
    LayoutError,
    PartitionEntry,
    Table,
    free_blocks,
    plan_layout,
)

SECTOR = 512
PER_MIB = MIB // SECTOR
# A 100 MiB disk with a fresh GPT: usable sectors 34 .. 204766.
BLANK = Table.fresh_gpt(SECTOR, 100 * PER_MIB)


def table(*entries: PartitionEntry) -> Table:
    return Table(SECTOR, BLANK.total_sectors, BLANK.first_usable, BLANK.last_usable, entries, "gpt")


def part(number: int, start_mib: int, size_mib: int, label: str = "", guid: str = "") -> PartitionEntry:
    return PartitionEntry(number, start_mib * PER_MIB, size_mib * PER_MIB, LINUX_FILESYSTEM_GUID,
                          guid, label)


def disk(*partitions: model.Partition, wipe_table: bool = False) -> model.Disk:
    return model.Disk(device="/dev/test", wipe_table=wipe_table, partitions=partitions)


def test_fresh_gpt_usable_range_matches_sgdisk() -> None:
    """A new GPT with 128 entries leaves sectors 34 .. N-34 usable (as sgdisk -p reports)."""
    assert (BLANK.first_usable, BLANK.last_usable) == (34, 204766)


def test_number_zero_takes_lowest_free_slot() -> None:
    """Ignition: number 0 = the next free partition number."""
    plan = plan_layout("/dev/test", disk(model.Partition(label="new", size_mib=5)),
                       table(part(1, 1, 10), part(3, 30, 10)))
    (op,) = plan.ops
    assert (op.kind, op.number) == ("create", 2)


def test_start_zero_is_start_of_largest_free_block() -> None:
    """Ignition: startMiB 0 = start of the largest free block (here 41..100 MiB, not 11..20)."""
    plan = plan_layout("/dev/test", disk(model.Partition(number=3, start_mib=0, size_mib=5)),
                       table(part(1, 1, 10), part(2, 21, 20)))
    assert plan.ops[0].new is not None
    assert plan.ops[0].new.start == 41 * PER_MIB


def test_size_zero_fills_the_free_block_it_starts_in() -> None:
    """Ignition: sizeMiB 0 = as large as possible; the block ends where partition 2 begins."""
    plan = plan_layout("/dev/test", disk(model.Partition(number=3, start_mib=11, size_mib=0)),
                       table(part(1, 1, 10), part(2, 21, 20)))
    new = plan.ops[0].new
    assert new is not None and (new.start, new.end) == (11 * PER_MIB, 21 * PER_MIB - 1)


def test_numbered_partitions_are_placed_before_number_zero() -> None:
    """Ignition processes number-0 partitions last, whatever their place in the list."""
    plan = plan_layout("/dev/test", disk(
        model.Partition(label="first", size_mib=10),
        model.Partition(number=1, label="one", size_mib=20),
    ), BLANK)
    by_label = {e.label: e for e in plan.result}
    assert by_label["one"].start == PER_MIB and by_label["first"].number == 2
    assert by_label["first"].start == 21 * PER_MIB


def test_unset_start_and_size_keep_an_existing_partition() -> None:
    """An existing partition with unset start/size matches where it is."""
    plan = plan_layout("/dev/test", disk(model.Partition(number=1, label="a")),
                       table(part(1, 5, 10, label="a")))
    assert [op.kind for op in plan.ops] == ["keep"] and not plan.changes


def test_mismatch_without_wipe_is_an_error_naming_the_field() -> None:
    """Ignition: a partition that exists but differs fails unless wipePartitionEntry."""
    with pytest.raises(LayoutError, match=r"partition 1 .*label \(wanted 'b', found 'a'\)"):
        plan_layout("/dev/test", disk(model.Partition(number=1, label="b")),
                    table(part(1, 5, 10, label="a")))


def test_wipe_partition_entry_recreates_a_mismatch() -> None:
    plan = plan_layout("/dev/test", disk(
        model.Partition(number=1, label="b", size_mib=20, wipe_partition_entry=True)),
        table(part(1, 1, 10, label="a")))
    (op,) = plan.ops
    assert op.kind == "recreate" and op.new is not None and op.new.size == 20 * PER_MIB


def test_should_exist_false_needs_wipe_partition_entry() -> None:
    """Ignition: shouldExist false deletes only with wipePartitionEntry; absent is fine."""
    existing = table(part(1, 1, 10))
    with pytest.raises(LayoutError, match="wipePartitionEntry is not set"):
        plan_layout("/dev/test", disk(model.Partition(number=1, should_exist=False)), existing)
    plan = plan_layout("/dev/test", disk(model.Partition(
        number=1, should_exist=False, wipe_partition_entry=True)), existing)
    assert plan.ops[0].kind == "delete" and plan.result == ()
    plan = plan_layout("/dev/test", disk(model.Partition(number=2, should_exist=False)), existing)
    assert plan.ops[0].kind == "absent" and not plan.changes


def test_resize_grows_in_place_keeping_identity() -> None:
    """Ignition: resize recreates a partition matching in all but size, same start/GUID/label."""
    old = part(1, 1, 10, label="root", guid="11111111-2222-3333-4444-555555555555")
    plan = plan_layout("/dev/test", disk(model.Partition(number=1, label="root", size_mib=0,
                                                         resize=True)), table(old))
    (op,) = plan.ops
    assert op.kind == "resize" and op.new is not None
    assert (op.new.start, op.new.guid, op.new.label) == (old.start, old.guid, "root")
    assert op.new.end == BLANK.last_usable


def test_resize_never_shrinks() -> None:
    with pytest.raises(LayoutError, match="only grows"):
        plan_layout("/dev/test", disk(model.Partition(number=1, size_mib=5, resize=True)),
                    table(part(1, 1, 10)))


def test_explicit_overlap_is_an_error_naming_the_other_partition() -> None:
    with pytest.raises(LayoutError, match=r"partition 2: start 5 MiB overlaps partition 1$"):
        plan_layout("/dev/test", disk(model.Partition(number=2, start_mib=5, size_mib=10)),
                    table(part(1, 1, 10)))


def test_partition_past_the_end_is_an_error() -> None:
    with pytest.raises(LayoutError, match="runs past the end"):
        plan_layout("/dev/test", disk(model.Partition(number=1, start_mib=90, size_mib=20)), BLANK)


def test_other_table_types_are_not_converted_without_wipe_table() -> None:
    dos = Table(SECTOR, BLANK.total_sectors, 0, 0, (), kind="dos")
    with pytest.raises(LayoutError, match="'dos' partition table"):
        plan_layout("/dev/test", disk(model.Partition(size_mib=5)), dos)
    assert plan_layout("/dev/test", disk(model.Partition(size_mib=5), wipe_table=True), dos).changes


def test_wipe_table_starts_from_nothing() -> None:
    plan = plan_layout("/dev/test", disk(model.Partition(number=2, size_mib=5), wipe_table=True),
                       table(part(1, 1, 10), part(2, 20, 10)))
    assert [(e.number, e.start) for e in plan.result] == [(2, PER_MIB)]


# ---- properties ----------------------------------------------------------

partition_specs = st.lists(
    st.builds(
        model.Partition,
        number=st.integers(0, 6),
        start_mib=st.one_of(st.none(), st.integers(0, 99)),
        size_mib=st.one_of(st.none(), st.integers(0, 40)),
        label=st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(partition_specs)
@example([model.Partition(number=1, start_mib=0, size_mib=10),
          model.Partition(number=2, start_mib=20, size_mib=10)])
def test_any_successful_plan_is_a_valid_table_and_converges(specs: list[model.Partition]) -> None:
    """Whatever the config: partitions fit the disk, never overlap, start on MiB
    boundaries; and planning the same config against the result changes nothing."""
    numbers = [p.number for p in specs if p.number]
    if len(numbers) != len(set(numbers)):
        return  # duplicate numbers are rejected by validation
    try:
        plan = plan_layout("/dev/test", disk(*specs), BLANK)
    except LayoutError:
        return
    extents = sorted((e.start, e.end) for e in plan.result)
    for (_s1, e1), (s2, _e2) in itertools.pairwise(extents):
        assert e1 < s2
    for entry in plan.result:
        assert BLANK.first_usable <= entry.start <= entry.end <= BLANK.last_usable
        assert entry.start % PER_MIB == 0
    # Second run against the table the first one produced: all partitions match,
    # except number-0 ones, which Ignition always creates anew.
    after = table(*plan.result)
    numbered = [s for s in specs if s.number]
    again = plan_layout("/dev/test", disk(*numbered), after)
    assert not again.changes


@given(st.lists(st.tuples(st.integers(34, 1000), st.integers(0, 200)), max_size=5))
def test_free_blocks_never_intersect_occupied(raw: list[tuple[int, int]]) -> None:
    occupied = [(s, s + n) for s, n in raw]
    for start, end in free_blocks(occupied, 34, 2000):
        assert 34 <= start <= end <= 2000
        for s, e in occupied:
            assert end < s or start > e
