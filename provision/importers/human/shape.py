"""The shape of the human YAML format, derived from the machine schema.

Every object of the machine schema becomes an object of the human format
with the same fields under their snake_case names (``sizeMiB`` is
``size_mib``, ``httpHeaders`` is ``http_headers``). Deriving it keeps the
two formats in step: a field added to the spec is at once writable in YAML.
Only structure is kept here (which keys exist, what is a list); types and
values are checked by the machine schema on the translated output, whose
diagnostics are mapped back to the YAML lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# Spec names whose snake_case form is not the mechanical one (see config.build.spec_name).
_SNAKE_OVERRIDES = {"sizeMiB": "size_mib", "startMiB": "start_mib"}
_UPPER = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_name(spec_name: str) -> str:
    """``httpHeaders`` -> ``http_headers``: the human name of a spec key."""
    return _SNAKE_OVERRIDES.get(spec_name) or _UPPER.sub(r"_\1", spec_name).lower()


@dataclass
class Shape:
    """One node of the format: an object (named fields), a list, a free-form mapping or a value.

    ``name`` is the schema definition an object comes from (``file``,
    ``resource``) or its dotted location for inline objects (``storage``,
    ``containers.settings``); sugar is attached by that name.
    """

    kind: str  # "object", "array", "free" (user-named keys, e.g. env) or "value"
    name: str = ""
    fields: dict[str, tuple[str, Shape]] = field(default_factory=dict)  # human -> (spec, shape)
    items: Shape | None = None

    def spec_key(self, human: str) -> str | None:
        found = self.fields.get(human)
        return found[0] if found else None


class _Builder:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.built: dict[str, Shape] = {}

    def build(self, node: dict[str, Any], name: str) -> Shape:
        for alternatives in (node.get("anyOf"), node.get("oneOf")):
            # {"anyOf": [{"$ref": ...}, {"type": "null"}]}: Ignition's nullable objects
            if isinstance(alternatives, list):
                chosen = [a for a in alternatives if isinstance(a, dict) and a.get("type") != "null"]
                if len(chosen) == 1:
                    return self.build(chosen[0], name)
        ref = node.get("$ref")
        if isinstance(ref, str):
            def_name = ref.rsplit("/", 1)[-1]
            if def_name not in self.built:
                self.built[def_name] = Shape("object", def_name)  # placeholder against cycles
                shape = self.build(self.defs[def_name], def_name)
                self.built[def_name].__dict__.update(shape.__dict__)
            return self.built[def_name]
        kind = node.get("type")
        if isinstance(kind, list):  # ["object", "null"]: Ignition's schemas allow null for "unset"
            kind = next((k for k in kind if k != "null"), None)
        if kind == "array":
            return Shape("array", name, items=self.build(node.get("items", {}), name))
        if kind == "object":
            props = node.get("properties")
            if not isinstance(props, dict):
                return Shape("free", name)
            shape = Shape("object", name)
            for spec_key, sub in props.items():
                where = f"{name}.{snake_name(spec_key)}" if name else snake_name(spec_key)
                shape.fields[snake_name(spec_key)] = (spec_key, self.build(sub, where))
            return shape
        return Shape("value", name)


def shape_of(schema: dict[str, Any]) -> Shape:
    """The snake_case shape of any JSON schema (also used for Ignition's, by the Butane importer)."""
    return _Builder(schema).build(schema, "")


@cache
def machine_shape() -> Shape:
    """The shape of the whole machine spec, with human key names."""
    from provision.config import versions
    from provision.resources import load_json

    newest = versions.find(versions.NEWEST)
    assert newest is not None
    schema = load_json("schemas", newest.schema_file)
    return shape_of(schema)


def all_field_names() -> frozenset[str]:
    """Every human key anywhere in the format (for "did you mean" hints)."""
    names: set[str] = set()
    seen: set[int] = set()
    stack = [machine_shape()]
    while stack:
        shape = stack.pop()
        if id(shape) in seen:
            continue
        seen.add(id(shape))
        names.update(shape.fields)
        stack.extend(sub for _, sub in shape.fields.values())
        if shape.items is not None:
            stack.append(shape.items)
    return frozenset(names)
