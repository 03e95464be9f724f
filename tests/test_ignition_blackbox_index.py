"""The tally of Ignition's blackbox tests (tests/data/ignition-blackbox/INDEX.yaml) stays exact.

INDEX.yaml lists every test coreos/ignition registers at one commit and the
case(s) that port it, or why none does. These checks keep it true as the data
files change: every case it names exists, every case in the data files is in
it exactly once, and the counts in docs/ignition-compatibility.md are the
index's own. No network: the index is the record.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data" / "ignition-blackbox"
DOC = Path(__file__).parent.parent / "docs" / "ignition-compatibility.md"
INDEX: dict[str, Any] = yaml.safe_load((DATA / "INDEX.yaml").read_text())


def _data_cases() -> dict[str, dict[str, Any]]:
    """Every case in the data files, as "file.yaml#name" (the name is the runner's pytest id)."""
    cases = {}
    for path in sorted(DATA.glob("*.yaml")):
        if path.name == "INDEX.yaml":
            continue
        for case in yaml.safe_load(path.read_text()):
            cases[f"{path.name}#{case['name']}"] = case
    return cases


def _index_refs() -> list[str]:
    refs = [ref for entry in INDEX["registered"] for ref in entry.get("cases", [])]
    return refs + [extra["case"] for extra in INDEX["extra_cases"]]


def test_every_case_the_index_names_exists() -> None:
    cases = _data_cases()
    assert [ref for ref in _index_refs() if ref not in cases] == []


def test_every_case_in_the_data_files_is_in_the_index_once() -> None:
    counts = Counter(_index_refs())
    assert [ref for ref in _data_cases() if counts[ref] != 1] == []


def test_each_registered_test_is_listed_once_ported_or_with_a_reason() -> None:
    tests = [entry["test"] for entry in INDEX["registered"]]
    assert [t for t, n in Counter(tests).items() if n > 1] == []
    for entry in INDEX["registered"]:
        kind, _, name = entry["test"].partition("/")
        assert kind in ("positive", "negative") and name, entry
        assert entry["go"].startswith(f"tests/{kind}/"), entry
        # exactly one of: the cases porting it, or a stated reason there are none
        assert bool(entry.get("cases")) != bool(entry.get("not_ported", "").strip()), entry
    for extra in INDEX["extra_cases"]:
        assert extra["why"].strip(), extra


def tally() -> dict[str, list[int]]:
    """Per Ignition area (tests/<kind>/<dir>): registered, ported, ported but skipped in the data, not ported."""
    cases = _data_cases()
    rows: dict[str, list[int]] = {}
    for entry in INDEX["registered"]:
        area = "/".join(entry["go"].split()[0].split("/")[1:3])
        row = rows.setdefault(area, [0, 0, 0, 0])
        row[0] += 1
        if entry.get("cases"):
            row[1] += 1
            row[2] += all("skip" in cases[ref] for ref in entry["cases"])
        else:
            row[3] += 1
    rows["total"] = [sum(r[i] for r in rows.values()) for i in range(4)]
    return rows


def test_the_documented_tally_is_the_index() -> None:
    rows = tally()
    documented = {}
    for line in DOC.read_text().splitlines():
        match = re.fullmatch(r"\| `?([a-z]+(?:/[a-z]+)?)`? \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", line.strip())
        if match:
            documented[match.group(1)] = [int(match.group(i)) for i in range(2, 6)]
    assert documented == rows
    total = rows["total"]
    commit = INDEX["ignition_commit"][:8]
    summary = f"{total[0]} tests registered at {commit}: {total[1]} ported, {total[3]} not ported"
    assert summary in " ".join(DOC.read_text().split())

