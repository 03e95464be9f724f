"""Write docs/spec/<version>.md, the field reference, from the JSON Schema.

Run after editing a schema; tests/test_spec_docs.py fails when the committed
reference and the schema drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        return "object (" + node["$ref"].rsplit("/", 1)[-1] + ")"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "any")
    if kind == "array":
        return "list of " + _type_of(node.get("items", {}), defs)
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return "map of string to " + _type_of(node["additionalProperties"], defs)
    return str(kind)


def _rows(node: dict[str, Any], prefix: str, defs: dict[str, Any], out: list[str]) -> None:
    props = node.get("properties", {})
    required = set(node.get("required", []))
    for name, sub in props.items():
        path = f"{prefix}.{name}" if prefix else name
        desc = sub.get("description", "")
        if "$ref" in sub and not desc:
            desc = defs[sub["$ref"].rsplit("/", 1)[-1]].get("description", "")
        req = "yes" if name in required else ""
        out.append(f"| `{path}` | {_type_of(sub, defs)} | {req} | {desc} |")
        if sub.get("type") == "object" and "properties" in sub:
            _rows(sub, path, defs, out)
        if sub.get("type") == "array" and "properties" in sub.get("items", {}):
            _rows(sub["items"], path + "[]", defs, out)


def render(schema_file: Path) -> str:
    schema = json.loads(schema_file.read_text())
    defs = schema.get("$defs", {})
    out = [
        f"# {schema['title']}",
        "",
        f"Generated from `schemas/{schema_file.name}` by `tools/gen_spec_docs.py`; do not edit by hand.",
        "Unknown keys are errors. Sub-objects marked `(name)` are described in their own section below.",
        "",
        "## Top level",
        "",
        "| field | type | required | description |",
        "|---|---|---|---|",
    ]
    _rows(schema, "", defs, out)
    for name, node in defs.items():
        out += ["", f"## {name}", "", node.get("description", ""), "",
                "| field | type | required | description |", "|---|---|---|---|"]
        _rows(node, "", defs, out)
    return "\n".join(out) + "\n"


def targets() -> list[tuple[Path, Path]]:
    return [
        (schema, ROOT / "docs" / "spec" / (schema.stem + ".md"))
        for schema in sorted((ROOT / "schemas").glob("provision-*.json"))
    ]


if __name__ == "__main__":
    check = sys.argv[1:] == ["--check"]
    stale = []
    for schema, doc in targets():
        text = render(schema)
        if check:
            if not doc.exists() or doc.read_text() != text:
                stale.append(str(doc))
        else:
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text(text)
    if stale:
        print("stale:", *stale)
        raise SystemExit(1)
