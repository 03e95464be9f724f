"""The schema, its generator and the generated field reference stay in step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import gen_schema  # noqa: E402
import gen_spec_docs  # noqa: E402


def test_committed_schema_is_what_the_generator_writes() -> None:
    for version in gen_schema.VERSIONS:
        committed = (ROOT / "schemas" / f"provision-{version}.json").read_text()
        assert committed == gen_schema.render(version), "run tools/gen_schema.py"


def test_field_reference_matches_schema() -> None:
    for schema, doc in gen_spec_docs.targets():
        assert doc.exists(), f"{doc} missing: run tools/gen_spec_docs.py"
        assert doc.read_text() == gen_spec_docs.render(schema), f"{doc} is stale: run tools/gen_spec_docs.py"


def test_reference_names_every_schema_field() -> None:
    """Every property anywhere in the schema appears in the reference."""
    schema = json.loads((ROOT / "schemas" / "provision-1.1.0.json").read_text())
    text = (ROOT / "docs" / "spec" / "provision-1.1.0.md").read_text()
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                names.add(key)
                walk(value)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    missing = [n for n in names if f"`{n}`" not in text and f".{n}`" not in text]
    assert not missing


def test_schema_is_strict_everywhere() -> None:
    """Every object with properties rejects unknown keys."""
    schema = json.loads((ROOT / "schemas" / "provision-1.1.0.json").read_text())
    loose: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                loose.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "#")
    assert loose == []


def test_ignition_schemas_match_their_generator() -> None:
    import gen_ignition_schemas

    for version in gen_ignition_schemas.VERSIONS:
        path = ROOT / "schemas" / f"ignition-{version}.json"
        assert path.read_text() == gen_ignition_schemas.render(version), "run tools/gen_ignition_schemas.py"
