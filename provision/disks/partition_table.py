"""Read a disk's GPT and write a planned layout to it in one commit.

Why sfdisk rather than pyparted: the pyparted we can ship (3.13 on
libparted 3.5, Debian bookworm) cannot set a partition's type GUID
(``set_type_uuid`` raises NotImplementedError before libparted 3.6), cannot
set its unique GUID at all, and always gives a new partition the lowest free
number. Ignition semantics need all three. sfdisk (util-linux, in every
initramfs that partitions disks) reads every field as JSON and writes the
whole planned table from one script, in one commit. Not sgdisk: on Linux it
sleeps a full second after every write before asking the kernel to re-read.
"""

from __future__ import annotations

import json
from typing import Any

from provision.disks.devices import kernel_name, partition_node_name
from provision.disks.layout import LayoutPlan, PartitionEntry, Table
from provision.errors import ProvisionError
from provision.run import run

_C_LOCALE = {"LC_ALL": "C"}


def read_table(device: str) -> Table:
    """The partition table of ``device`` (a block device node)."""
    sector_size, total = _geometry(device)
    done = run("sfdisk", ["--json", device], check=False, env=_C_LOCALE)
    if done.status != 0:
        if "does not contain a recognized partition table" in done.stderr:
            return Table.fresh_gpt(sector_size, total)
        raise ProvisionError(f"cannot read the partition table of {device}: {done.stderr.strip()}")
    table = json.loads(done.stdout)["partitiontable"]
    if table.get("label") != "gpt":
        return Table(sector_size, total, 0, 0, (), kind=str(table.get("label")))
    entries = tuple(
        PartitionEntry(
            number=_number_of(p["node"]),
            start=int(p["start"]),
            size=int(p["size"]),
            type_guid=str(p.get("type", "")).upper(),
            guid=str(p.get("uuid", "")).upper(),
            label=str(p.get("name", "")),
        )
        for p in table.get("partitions", [])
    )
    return Table(
        sector_size=int(table.get("sectorsize", sector_size)),
        total_sectors=total,
        first_usable=int(table["firstlba"]),
        last_usable=int(table["lastlba"]),
        partitions=entries,
        kind="gpt",
    )


def _number_of(node: str) -> int:
    digits = len(node) - len(node.rstrip("0123456789"))
    return int(node[-digits:])


def _geometry(device: str) -> tuple[int, int]:
    """(logical sector size, size in logical sectors) from sysfs."""
    from provision.disks.devices import sysfs_dir

    block = sysfs_dir(device)
    sector_size = int((block / "queue" / "logical_block_size").read_text())
    # sysfs "size" is always in 512-byte units, whatever the sector size.
    total_512 = int((block / "size").read_text())
    return sector_size, total_512 * 512 // sector_size


def sfdisk_script(plan: LayoutPlan, current: dict[str, Any], disk_name: str) -> str:
    """The whole table after ``plan`` as an sfdisk script (written as one commit).

    ``current`` is ``sfdisk --json``'s table before the change: the disk GUID,
    usable range and each kept partition's attribute bits carry over, so
    partitions the plan keeps are rewritten exactly as they were.
    """
    lines = ["label: gpt", "unit: sectors"]
    if not plan.wipe_table and current.get("label") == "gpt":
        for key, field in (("id", "label-id"), ("firstlba", "first-lba"), ("lastlba", "last-lba")):
            if key in current:
                lines.append(f"{field}: {current[key]}")
    attrs = {}
    if not plan.wipe_table:
        for part in current.get("partitions", []):
            if part.get("attrs"):
                attrs[_number_of(part["node"])] = part["attrs"]
    replaced = {op.number for op in plan.ops if op.kind in ("recreate", "resize", "create")}
    lines.append("")
    for entry in plan.result:
        node = "/dev/" + partition_node_name(disk_name, entry.number)
        fields = [f"start={entry.start}", f"size={entry.size}", f"type={entry.type_guid}"]
        if entry.guid:
            fields.append(f"uuid={entry.guid}")
        if entry.label:
            fields.append(f'name="{entry.label}"')
        if entry.number in attrs and entry.number not in replaced:
            fields.append(f'attrs="{attrs[entry.number]}"')
        lines.append(f"{node} : {', '.join(fields)}")
    return "\n".join(lines) + "\n"


def write_table(plan: LayoutPlan) -> None:
    """Apply ``plan`` with a single sfdisk run (one commit of the whole table)."""
    if not plan.changes:
        return
    for entry in plan.result:
        if '"' in entry.label or "\n" in entry.label:
            raise ProvisionError(f"partition label {entry.label!r} contains a quote or newline")
    disk_name = kernel_name(plan.device) if plan.device.startswith("/dev/") else ""
    current: dict[str, Any] = {}
    if not plan.wipe_table:
        done = run("sfdisk", ["--json", plan.device], check=False, env=_C_LOCALE)
        if done.status == 0:
            current = json.loads(done.stdout)["partitiontable"]
    if plan.wipe_table and not plan.result:
        # Nothing to create: destroy the table as Ignition's wipeTable (sgdisk
        # --zap-all) does. wipefs finds a GPT by its primary header; where that
        # is damaged it erases nothing, and the backup table at the end of the
        # disk (which GPT tools recover from) would survive. An empty GPT
        # written first replaces both copies; wipefs then erases it.
        _sfdisk(plan.device, "label: gpt\n")
        run("wipefs", ["--all", "--quiet", plan.device])
        return
    _sfdisk(plan.device, sfdisk_script(plan, current, disk_name))


def _sfdisk(device: str, script: str) -> None:
    # The kernel is told about the new table by provision.disks.waiting, which
    # also works where the kernel cannot parse GPT; signatures inside new
    # partitions are kept (a recreated partition may hold a filesystem to reuse).
    done = run(
        "sfdisk",
        ["--no-reread", "--no-tell-kernel", "--wipe", "never", "--wipe-partitions", "never",
         "--quiet", device],
        input=script, check=False, env=_C_LOCALE,
    )
    if done.status != 0:
        raise ProvisionError(
            f"writing the partition table of {device} failed: "
            f"{(done.stderr or done.stdout).strip()}"
        )
