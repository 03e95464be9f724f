"""A small, fast evaluator for the JSON Schema (draft 2020-12) subset our schemas use.

The schemas in schemas/ are the source of truth; this module compiles one
into closures once and reports every failure as a :class:`Failure`. It
exists because importing jsonschema costs about 50 ms at boot (half the
budget of `provision validate`) and drags a compiled extension into the
initramfs; tests check it against jsonschema on generated instances.

Keywords: type, properties, additionalProperties, required, enum, const,
minimum, maximum, minLength, pattern, items, $ref (local), anyOf. Anything
else in a schema is an error at compile time, so a schema can never use a
keyword this evaluator would silently ignore.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from provision.diagnostics import ConfigPath

_ANNOTATIONS = {"description", "title", "$schema", "$id", "$defs", "$comment"}
_KNOWN = _ANNOTATIONS | {
    "type", "properties", "additionalProperties", "required", "enum", "const",
    "minimum", "maximum", "minLength", "pattern", "items", "$ref", "anyOf",
}


class Failure(NamedTuple):  # not a dataclass: see provision.diagnostics
    keyword: str
    path: ConfigPath
    schema: dict[str, Any]
    instance: Any
    detail: Any = None  # the unknown key, the missing key, ...


Check = Callable[[Any, ConfigPath], Iterator[Failure]]


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        # Floats are refused even when integral, as Ignition (Go) refuses them.
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "null":
        return value is None
    raise ValueError(f"unknown JSON type {kind!r}")


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if pointer not in self.refs:
            if not pointer.startswith("#/$defs/"):
                raise ValueError(f"only local $defs references are supported: {pointer}")
            target = self.root["$defs"][pointer.removeprefix("#/$defs/")]
            self.refs[pointer] = _nothing  # placeholder: definitions may recurse
            compiled = self.compile(target)
            self.refs[pointer] = compiled
        late = self.refs
        return lambda value, path: late[pointer](value, path)

    def compile(self, node: dict[str, Any]) -> Check:
        unknown = set(node) - _KNOWN
        if unknown:
            raise ValueError(f"schema keyword(s) not supported: {sorted(unknown)}")
        checks: list[Check] = []
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        if "anyOf" in node:
            checks.append(self._any_of(node))
        if "type" in node:
            checks.append(self._type(node))
        if "enum" in node:
            allowed = node["enum"]
            checks.append(_when(lambda v: not any(_same(v, a) for a in allowed), "enum", node))
        if "const" in node:
            const = node["const"]
            checks.append(_when(lambda v: not _same(v, const), "const", node))
        if "minimum" in node:
            low = node["minimum"]
            checks.append(_when(lambda v: _is_type(v, "number") and v < low, "minimum", node))
        if "maximum" in node:
            high = node["maximum"]
            checks.append(_when(lambda v: _is_type(v, "number") and v > high, "maximum", node))
        if "minLength" in node:
            shortest = node["minLength"]
            checks.append(_when(lambda v: isinstance(v, str) and len(v) < shortest, "minLength", node))
        if "pattern" in node:
            regex = re.compile(node["pattern"])
            checks.append(_when(lambda v: isinstance(v, str) and not regex.search(v), "pattern", node))
        if "required" in node or "properties" in node or "additionalProperties" in node:
            checks.append(self._object(node))
        if "items" in node:
            checks.append(self._items(node))
        if len(checks) == 1:
            return checks[0]

        def run_all(value: Any, path: ConfigPath) -> Iterator[Failure]:
            for check in checks:
                yield from check(value, path)

        return run_all

    def _type(self, node: dict[str, Any]) -> Check:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return _when(lambda v: not any(_is_type(v, k) for k in kinds), "type", node)

    def _any_of(self, node: dict[str, Any]) -> Check:
        branches = [(b, self.compile(b)) for b in node["anyOf"]]

        def check(value: Any, path: ConfigPath) -> Iterator[Failure]:
            found: list[list[Failure]] = []
            for _branch, run in branches:
                failures = list(run(value, path))
                if not failures:
                    return
                found.append(failures)
            # Report the branch that got furthest: the one whose failures are deepest.
            best = max(found, key=lambda fs: (max(len(f.path) for f in fs), -len(fs)))
            yield from best

        return check

    def _object(self, node: dict[str, Any]) -> Check:
        props = {name: self.compile(sub) for name, sub in node.get("properties", {}).items()}
        required = node.get("required", [])
        extra = node.get("additionalProperties", True)
        extra_check = self.compile(extra) if isinstance(extra, dict) else None

        def check(value: Any, path: ConfigPath) -> Iterator[Failure]:
            if not isinstance(value, dict):
                return
            for key in required:
                if key not in value:
                    yield Failure("required", path, node, value, key)
            for key, sub in value.items():
                run = props.get(key)
                if run is not None:
                    yield from run(sub, (*path, key))
                elif extra is False:
                    yield Failure("additionalProperties", path, node, value, key)
                elif extra_check is not None:
                    yield from extra_check(sub, (*path, key))

        return check

    def _items(self, node: dict[str, Any]) -> Check:
        run = self.compile(node["items"])

        def check(value: Any, path: ConfigPath) -> Iterator[Failure]:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    yield from run(item, (*path, i))

        return check


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _nothing(value: Any, path: ConfigPath) -> Iterator[Failure]:
    return iter(())


def _when(failing: Callable[[Any], bool], keyword: str, node: dict[str, Any]) -> Check:
    def check(value: Any, path: ConfigPath) -> Iterator[Failure]:
        if failing(value):
            yield Failure(keyword, path, node, value)

    return check


def compile_schema(schema: dict[str, Any]) -> Check:
    return _Compiler(schema).compile(schema)
