"""coreos/ignition's partition blackbox tests, ported as data (tests/data/ignition-blackbox/partitions.yaml).

Each case lays out the partitions Ignition's test starts from on a fresh loop
device (with sgdisk), applies the case's config with ``provision apply
--root``, and reads the table back with sfdisk: numbers, labels, sizes and
GUIDs must be those Ignition's test expects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from disk_fixtures import needs_loop, sfdisk_partitions, sh

from provision.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "partitions.yaml").read_text())
DISK_MIB = 256  # room for every case's partitions
ALIGN = 2048  # sectors: where Ignition's harness starts the first partition

pytestmark = [pytest.mark.root, needs_loop]


def _lay_out(device: str, partitions: list[dict[str, Any]]) -> None:
    args = ["sgdisk", "--clear"]
    start = ALIGN
    for part in partitions:
        n = part["number"]
        args += [f"--new={n}:{start}:{start + part['size'] - 1}", f"--typecode={n}:{part['type']}",
                 f"--change-name={n}:{part['label']}", f"--partition-guid={n}:{part['guid']}"]
        start += part["size"]
    sh(*args, device)
    sh("partx", "-u", device, check=False)


def _last_usable(device: str) -> int:
    """The GPT's last usable sector, from sgdisk's "First usable sector is A, last usable sector is B"."""
    line = next(x for x in sh("sgdisk", "-p", device).stdout.splitlines() if "last usable sector is" in x)
    return int(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_partitions_case(case: dict[str, Any], disk_env: Path,
                                  loop_factory: Callable[[int], tuple[str, Path]],
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if "skip" in case:
        pytest.skip(case["skip"])
    device, _image = loop_factory(DISK_MIB)
    if case.get("in"):
        _lay_out(device, case["in"])
    config = tmp_path / "config.ign"
    config.write_text(json.dumps({"ignition": {"version": "3.0.0"}, **case["config"]}).replace("$disk1", device))
    before = sfdisk_partitions(device)
    capsys.readouterr()
    status = main(["apply", "--root", str(disk_env), str(config)])
    captured = capsys.readouterr()
    table = sfdisk_partitions(device)
    if case.get("expect") == "fails":
        assert status != 0, captured.out + captured.err
        assert case["error"] in captured.err, captured.err
        assert table == before, "a failed apply changed the partition table"
        return
    assert status == 0, captured.out + captured.err
    assert sorted(table) == sorted(p["number"] for p in case["out"]), table
    for part in case["out"]:
        found = table[part["number"]]
        where = f"partition {part['number']}"
        assert found.get("name") == part["label"], where
        assert found["type"].upper() == part["type"].upper(), where
        assert found["uuid"].upper() == part["guid"].upper(), where
        if part.get("fills"):
            assert found["start"] + found["size"] - 1 == _last_usable(device), where
        else:
            assert found["size"] == part["size"], where
