"""The JSON Schema (written by tools/gen_schema.py) and the model describe the same fields.

A key added to one and not the other would either be accepted by validate
and silently dropped by the builder, or be unreachable from any config.
This walks the newest schema and the model together, from the top-level
object and ``Config`` down through every nested object and model class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provision.config import model
from provision.config.build import spec_name
from provision.config.versions import NEWEST

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / f"provision-{NEWEST}.json"


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        node = schema["$defs"][name]
    return node


def _model_class(annotation: str) -> Any:
    annotation = annotation.removesuffix(" | None")
    if annotation.startswith("tuple[") and annotation.endswith(", ...]"):
        annotation = annotation.removeprefix("tuple[").removesuffix(", ...]")
    cls = getattr(model, annotation, None)
    return cls if model.is_model_class(cls) else None


def _object_node(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(schema, node)
    if node.get("type") == "array" or "items" in node:
        node = _resolve(schema, node["items"])
    return node


def _walk(schema: dict[str, Any], node: dict[str, Any], cls: Any, where: str, seen: set[Any]) -> list[str]:
    problems = []
    node = _object_node(schema, node)
    properties = node.get("properties", {})
    fields = {spec_name(f.name): f for f in model.model_fields(cls)}
    for key in sorted(properties.keys() - fields.keys()):
        problems.append(f"{where}.{key}: in the schema, not in model.{cls.__name__}")
    for key in sorted(fields.keys() - properties.keys()):
        problems.append(f"{where}.{key}: in model.{cls.__name__}, not in the schema")
    for key in sorted(fields.keys() & properties.keys()):
        child = _model_class(fields[key].annotation)
        if child is not None and (child, key) not in seen:
            seen.add((child, key))
            problems += _walk(schema, properties[key], child, f"{where}.{key}", seen)
    return problems


def test_the_schema_and_the_model_have_the_same_fields() -> None:
    schema = json.loads(SCHEMA.read_text())
    problems = _walk(schema, schema, model.Config, "$", set())
    assert problems == []


def test_the_walk_finds_a_difference() -> None:
    # The check itself can fail: a schema with an extra key and one key missing.
    schema = json.loads(SCHEMA.read_text())
    files = _object_node(schema, _resolve(schema, schema["properties"]["storage"])["properties"]["files"])
    files["properties"]["owner"] = {"type": "string"}
    del files["properties"]["mode"]
    problems = _walk(schema, schema, model.Config, "$", set())
    assert "$.storage.files.owner: in the schema, not in model.File" in problems
    assert "$.storage.files.mode: in model.File, not in the schema" in problems
