"""coreos/ignition's partition and filesystem blackbox tests, ported as data.

The data is tests/data/ignition-blackbox/partitions.yaml. Each case lays out
the partitions (and filesystems, and files on them) Ignition's test starts
from on fresh loop devices with sgdisk and mkfs, applies the case's config
with ``provision apply --root``, and reads the result back with sfdisk and
blkid (and a mount, for files that must be gone): numbers, labels, sizes,
GUIDs and filesystems must be those Ignition's test expects.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from disk_fixtures import blkid, mounted, needs_loop, partition_node, sfdisk_partitions, sh

from provision.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "partitions.yaml").read_text())
DISK_MIB = 256  # room for a case's partitions, unless it says `disk_mib`
MIB = 1024 * 1024
ALIGN = 2048  # sectors: where Ignition's harness starts the first partition
MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "ext2": ["mkfs.ext2", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"],
        "vfat": ["mkfs.vfat"], "btrfs": ["mkfs.btrfs", "-q", "-f"]}
FS_LABEL_UUID = {"xfs": ("-L", "-m", "uuid={}"), "ext4": ("-L", "-U", "{}"), "ext2": ("-L", "-U", "{}"),
                 "vfat": ("-n", "-i", "{}")}
SEEDED = "in place before\n"  # what the files a case puts on a filesystem hold

pytestmark = [pytest.mark.root, needs_loop]


def _per_disk(parts: list[dict[str, Any]] | dict[str, list[dict[str, Any]]] | None) -> dict[str, list[dict[str, Any]]]:
    """`in`/`out` name partitions of $disk1, or map disk names to them."""
    if parts is None:
        return {}
    return parts if isinstance(parts, dict) else {"disk1": parts}


def _lay_out(device: str, partitions: list[dict[str, Any]], work: Path) -> None:
    args = ["sgdisk", "--clear"]
    start = ALIGN
    for part in partitions:
        n = part["number"]
        start = part.get("start", start)
        end = 0 if part.get("fills") else start + part["size"] - 1  # 0: sgdisk's last usable sector
        args += [f"--new={n}:{start}:{end}", f"--typecode={n}:{part['type']}",
                 f"--change-name={n}:{part.get('label', '')}"]
        if "guid" in part:
            args.append(f"--partition-guid={n}:{part['guid']}")
        start += part.get("size", 0)
    sh(*args, device)
    sh("partx", "-u", device, check=False)
    sh("partx", "-a", device, check=False)  # -u leaves out partitions after a gap in the numbers (6, 9)
    for part in partitions:
        if "fs" not in part:
            continue
        node = partition_node(device, part["number"])
        options: list[str] = []
        if "fslabel" in part or "fsuuid" in part:
            label_flag, uuid_flag, uuid_form = FS_LABEL_UUID[part["fs"]]
            if "fslabel" in part:
                options += [label_flag, part["fslabel"]]
            if "fsuuid" in part:
                options += [uuid_flag, uuid_form.format(part["fsuuid"])]
        sh(*MKFS[part["fs"]], *options, node)
        if part.get("files"):
            with mounted(node, work / "seed") as where:
                for path in part["files"]:
                    (where / path).parent.mkdir(parents=True, exist_ok=True)
                    (where / path).write_text(SEEDED)


def _last_usable(device: str) -> int:
    """The GPT's last usable sector, from sgdisk's "First usable sector is A, last usable sector is B"."""
    line = next(x for x in sh("sgdisk", "-p", device).stdout.splitlines() if "last usable sector is" in x)
    return int(line.rsplit(" ", 1)[1])


def _check(device: str, expected: list[dict[str, Any]], work: Path) -> None:
    table = sfdisk_partitions(device)
    assert sorted(table) == sorted(p["number"] for p in expected), table
    for part in expected:
        found = table[part["number"]]
        where = f"{device} partition {part['number']}"
        assert found.get("name") == part.get("label"), where
        if "type" in part:
            assert found["type"].upper() == part["type"].upper(), where
        if "guid" in part:
            assert found["uuid"].upper() == part["guid"].upper(), where
        if "start" in part:
            assert found["start"] == part["start"], where
        if part.get("fills"):
            assert found["start"] + found["size"] - 1 == _last_usable(device), where
        else:
            assert found["size"] == part["size"], where
        node = partition_node(device, part["number"])
        if part.get("fs") == "none":
            assert "TYPE" not in blkid(node), f"{where}: a filesystem is left"
        elif "fs" in part:
            probed = blkid(node)
            assert probed.get("TYPE") == part["fs"], f"{where}: {probed}"
            if "fslabel" in part:
                assert probed.get("LABEL") == part["fslabel"], f"{where}: {probed}"
            if "fsuuid" in part:
                assert probed.get("UUID", "").lower() == part["fsuuid"].lower(), f"{where}: {probed}"
        if part.get("gone") or part.get("kept") or part.get("holds"):
            with mounted(node, work / "check") as mount:
                for path in part.get("gone", []):
                    assert not (mount / path).exists(), f"{where}: {path} survived"
                for path in part.get("kept", []):
                    assert (mount / path).read_text() == SEEDED, f"{where}: {path} lost"
                for path, contents in part.get("holds", {}).items():
                    assert (mount / path).read_text() == contents, f"{where}: {path}"


def _assert_no_old_entries(device: str, before: list[dict[str, Any]]) -> None:
    """Neither GPT copy (primary at the start, backup at the end) still names a partition laid out before."""
    with open(device, "rb") as disk:
        head = disk.read(MIB)
        disk.seek(-MIB, os.SEEK_END)
        tail = disk.read(MIB)
    for part in before:
        name = part["label"].encode("utf-16-le")  # how GPT stores partition names
        assert name not in head and name not in tail, f"{device}: an old table still lists {part['label']!r}"


def _filesystems(devices: dict[str, str]) -> dict[str, dict[str, str]]:
    """What blkid sees on every partition (type, label, UUID): a remade filesystem changes it."""
    return {partition_node(device, number): blkid(partition_node(device, number))
            for device in devices.values() for number in sfdisk_partitions(device)}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_storage_case(case: dict[str, Any], disk_env: Path,
                               loop_factory: Callable[[int], tuple[str, Path]],
                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if "skip" in case:
        pytest.skip(case["skip"])
    mountable = Path("/proc/filesystems").read_text().split()
    missing = [fs for fs in case.get("mounts", []) if fs not in mountable]
    if missing:
        pytest.skip(f"this kernel cannot mount {', '.join(missing)} (the config mounts it)")
    layout = _per_disk(case.get("in"))
    expected = _per_disk(case.get("out"))
    names = sorted({"disk1", *layout, *expected})
    devices = {name: loop_factory(case.get("disk_mib", DISK_MIB))[0] for name in names}
    for name, parts in layout.items():
        _lay_out(devices[name], parts, tmp_path)
    for name in case.get("corrupt_table", []):
        # as Ignition's harness does: 1536 random bytes over the protective MBR, the GPT header and the
        # first entries (fixed bytes here, so a run repeats); the backup table at the end is left
        with open(devices[name], "r+b") as disk:
            disk.write(random.Random(name).randbytes(1536))

    def place(match: re.Match[str]) -> str:
        device = devices[match.group(1)]
        return partition_node(device, int(match.group(2))) if match.group(2) else device

    for link in case.get("root_links", []):  # nodes on the target root before
        (disk_env / link["link"].lstrip("/")).symlink_to(link["target"])
    config_data = dict(case["config"])  # a case's own ignition section (config references) keeps the version
    config_data["ignition"] = {"version": case.get("version", "3.0.0"), **config_data.get("ignition", {})}
    text = json.dumps(config_data)
    config = tmp_path / "config.ign"
    config.write_text(re.sub(r"\$(disk\d+)(?:p(\d+))?", place, text))
    before = {name: sfdisk_partitions(device) for name, device in devices.items()}
    filesystems = _filesystems(devices)
    capsys.readouterr()
    status = main(["apply", "--root", str(disk_env), str(config)])
    captured = capsys.readouterr()
    if case.get("expect") == "fails":
        assert status != 0, captured.out + captured.err
        assert case["error"] in captured.err, captured.err
        assert {name: sfdisk_partitions(device) for name, device in devices.items()} == before, \
            "a failed apply changed a partition table"
        assert _filesystems(devices) == filesystems, "a failed apply made or changed a filesystem"
        return
    assert status == 0, captured.out + captured.err
    for name, parts in expected.items():
        _check(devices[name], parts, tmp_path)
    for name in case.get("corrupt_table", []):
        _assert_no_old_entries(devices[name], layout[name])
