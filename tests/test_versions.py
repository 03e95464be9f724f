"""A spec version marked ``widens`` really only adds optional fields to the
version before it: the pipeline then skips the newest schema for configs of
the older version (they passed their own), so this must hold exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provision.config import versions
from provision.config.pipeline import parse_config
from provision.config.schema import schema_diagnostics

ROOT = Path(__file__).resolve().parent.parent
ANNOTATIONS = {"description", "title", "$schema", "$id", "$comment"}
VERSION_CONST = "/properties/provision/properties/version/const"  # set by to_newest


def schema(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "schemas" / name).read_text())


def narrowings(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` could refuse something ``old`` accepts: anything but
    annotations and new entries in ``properties`` (of a closed object) or ``$defs``."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new or where == VERSION_CONST else [f"{where}: {old!r} became {new!r}"]
    found = []
    for key in (new.keys() - old.keys()) - ANNOTATIONS:
        found.append(f"{where}: keyword {key!r} added")
    for key, value in old.items():
        if key in ANNOTATIONS:
            continue
        if key not in new:
            found.append(f"{where}: keyword {key!r} removed")
        elif key in ("properties", "$defs"):
            for name in value.keys() - new[key].keys():
                found.append(f"{where}/{key}: {name!r} removed")
            for name in value.keys() & new[key].keys():
                found += narrowings(value[name], new[key][name], f"{where}/{key}/{name}")
            added = new[key].keys() - value.keys()
            if key == "properties" and added and old.get("additionalProperties", True) is not False:
                # Open objects accepted these keys already, perhaps with other values.
                found.append(f"{where}: properties {sorted(added)} added to an open object")
            if key == "properties" and set(new.get("required", [])) & added:
                found.append(f"{where}: new properties are required")
        else:
            found += narrowings(value, new[key], f"{where}/{key}")
    return found


PAIRS = [(before, after) for before, after in zip(versions.VERSIONS, versions.VERSIONS[1:], strict=False)]


@pytest.mark.parametrize("before, after", PAIRS, ids=[a.version for _, a in PAIRS])
def test_a_widening_version_only_adds_optional_fields(before: versions.SpecVersion,
                                                      after: versions.SpecVersion) -> None:
    if not after.widens:
        pytest.skip(f"{after.version} is not marked as widening")
    assert narrowings(schema(before.schema_file), schema(after.schema_file)) == []


def _changed(edit: Any) -> dict[str, Any]:
    copy: dict[str, Any] = schema("provision-1.0.0.json")
    edit(copy)
    return copy


NARROWER = {
    "a new bound": lambda s: s["$defs"]["file"]["properties"]["mode"].update(maximum=4095),
    "a new required key": lambda s: s["$defs"]["file"].update(required=["path", "mode"]),
    "another item schema": lambda s: s["properties"]["storage"]["properties"]["files"].update(
        items={"type": "object"}),
    "a removed property": lambda s: s["$defs"]["file"]["properties"].pop("mode"),
    "a property of an open map": lambda s: s["$defs"]["container"]["properties"]["env"].update(
        properties={"PATH": {"type": "integer"}}),
}


@pytest.mark.parametrize("name", sorted(NARROWER))
def test_the_check_finds_a_narrowing(name: str) -> None:
    assert narrowings(schema("provision-1.0.0.json"), _changed(NARROWER[name])) != []


def test_the_check_accepts_new_optional_fields() -> None:
    def widen(s: dict[str, Any]) -> None:
        s["$defs"]["file"]["properties"]["label"] = {"type": "string"}
        s["$defs"]["label"] = {"type": "string"}

    assert narrowings(schema("provision-1.0.0.json"), _changed(widen)) == []


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.json")), ids=lambda p: p.name)
def test_translated_examples_satisfy_the_newest_schema(example: Path) -> None:
    spec = json.loads(example.read_text())
    for version in versions.supported():
        spec["provision"]["version"] = version
        if schema_diagnostics(spec, versions.find(version).schema_file):  # type: ignore[union-attr]
            continue  # uses fields this version does not have
        translated = versions.to_newest(json.loads(json.dumps(spec)), version)
        newest = versions.find(versions.NEWEST)
        assert newest is not None
        assert schema_diagnostics(translated, newest.schema_file) == []


def test_an_older_version_still_refuses_the_newer_fields() -> None:
    config = {"provision": {"version": "1.0.0"}, "network": {"renderer": "networkd"}}
    parsed = parse_config(json.dumps(config).encode(), "old.json")
    assert [d.message for d in parsed.diagnostics] == ["unknown key 'network'"]
    assert parsed.config is None
