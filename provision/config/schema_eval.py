"""A small, fast evaluator for the JSON Schema (draft 2020-12) subset our schemas use.

The schemas in schemas/ are the source of truth; this module compiles one
into closures once and reports every failure as a :class:`Failure`. It
exists because importing jsonschema costs about 50 ms at boot (half the
budget of `provision validate`) and drags a compiled extension into the
initramfs; tests check it against jsonschema on generated instances.

Each schema node compiles to a :class:`Compiled` pair: ``valid`` answers
yes/no without building paths or failures (the common case: a config with
no schema error is walked once, cheaply), and ``failures`` reports, descending
only into the parts whose ``valid`` said no.

Keywords: type, properties, additionalProperties, required, enum, const,
minimum, maximum, minLength, pattern, items, $ref (local), anyOf. Anything
else in a schema is an error at compile time, so a schema can never use a
keyword this evaluator would silently ignore.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple turns
# each field's annotation into a ForwardRef, compiled at import (see
# tests/test_validate_startup.py).
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
Valid = Callable[[Any], bool]


class Compiled(NamedTuple):
    valid: Valid  # no failure anywhere below
    failures: Check  # every failure, in schema keyword order


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    # Floats are refused even when integral, as Ignition (Go) refuses them.
    return isinstance(value, int) and not isinstance(value, bool)


_TYPE_TESTS: dict[str, Valid] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": _is_number,
    "null": lambda v: v is None,
}


def _type_test(kinds: list[str]) -> Valid:
    unknown = [k for k in kinds if k not in _TYPE_TESTS]
    if unknown:
        raise ValueError(f"unknown JSON type {unknown[0]!r}")
    tests = [_TYPE_TESTS[k] for k in kinds]
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(test(v) for test in tests)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _enum_test(allowed: list[Any]) -> Valid:
    if allowed and all(isinstance(a, str) for a in allowed):
        # The usual case: a set lookup (a string is only ever equal to a string).
        names = frozenset(allowed)
        return lambda v: isinstance(v, str) and v in names
    return lambda v: any(_same(v, a) for a in allowed)


def _all_of(tests: list[Valid]) -> Valid:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:  # the usual case (a type and its properties): no generator per call
        first, second = tests
        return lambda value: first(value) and second(value)
    return lambda value: all(test(value) for test in tests)


def _leaf(test: Valid, keyword: str, node: dict[str, Any]) -> Compiled:
    """A keyword checked on the value itself: one failure when ``test`` says no."""
    def failures(value: Any, path: ConfigPath) -> Iterator[Failure]:
        if not test(value):
            yield Failure(keyword, path, node, value)

    return Compiled(test, failures)


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Compiled] = {}

    def ref(self, pointer: str) -> Compiled:
        if not pointer.startswith("#/$defs/"):
            raise ValueError(f"only local $defs references are supported: {pointer}")
        target = self.root["$defs"][pointer.removeprefix("#/$defs/")]
        compiled = self.refs

        # Compiled on first use, not here: a config only pays for the definitions
        # it reaches (a files-only config never compiles disks, RAID or network),
        # and definitions may recurse.
        def resolve() -> Compiled:
            found = compiled.get(pointer)
            if found is None:
                found = compiled[pointer] = self.compile(target)
            return found

        return Compiled(lambda value: resolve().valid(value),
                        lambda value, path: resolve().failures(value, path))

    def compile(self, node: dict[str, Any]) -> Compiled:
        unknown = set(node) - _KNOWN
        if unknown:
            raise ValueError(f"schema keyword(s) not supported: {sorted(unknown)}")
        parts: list[Compiled] = []
        if "$ref" in node:
            parts.append(self.ref(node["$ref"]))
        if "anyOf" in node:
            parts.append(self._any_of(node))
        if "type" in node:
            kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
            parts.append(_leaf(_type_test(kinds), "type", node))
        if "enum" in node:
            parts.append(_leaf(_enum_test(node["enum"]), "enum", node))
        if "const" in node:
            const = node["const"]
            parts.append(_leaf(lambda v: _same(v, const), "const", node))
        if "minimum" in node:
            low = node["minimum"]
            parts.append(_leaf(lambda v: not (_is_number(v) and v < low), "minimum", node))
        if "maximum" in node:
            high = node["maximum"]
            parts.append(_leaf(lambda v: not (_is_number(v) and v > high), "maximum", node))
        if "minLength" in node:
            shortest = node["minLength"]
            parts.append(_leaf(lambda v: not isinstance(v, str) or len(v) >= shortest, "minLength", node))
        if "pattern" in node:
            search = re.compile(node["pattern"]).search
            parts.append(_leaf(lambda v: not isinstance(v, str) or search(v) is not None, "pattern", node))
        if "required" in node or "properties" in node or "additionalProperties" in node:
            parts.append(self._object(node))
        if "items" in node:
            parts.append(self._items(node))
        if len(parts) == 1:
            return parts[0]

        def failures(value: Any, path: ConfigPath) -> Iterator[Failure]:
            for part in parts:
                if not part.valid(value):
                    yield from part.failures(value, path)

        return Compiled(_all_of([part.valid for part in parts]), failures)

    def _any_of(self, node: dict[str, Any]) -> Compiled:
        branches = [self.compile(b) for b in node["anyOf"]]

        def valid(value: Any) -> bool:
            return any(branch.valid(value) for branch in branches)

        def failures(value: Any, path: ConfigPath) -> Iterator[Failure]:
            if valid(value):
                return
            found = [list(branch.failures(value, path)) for branch in branches]
            # Report the branch that got furthest: the one whose failures are deepest.
            best = max(found, key=lambda fs: (max(len(f.path) for f in fs), -len(fs)))
            yield from best

        return Compiled(valid, failures)

    def _object(self, node: dict[str, Any]) -> Compiled:
        props = {name: self.compile(sub) for name, sub in node.get("properties", {}).items()}
        props_valid = {name: compiled.valid for name, compiled in props.items()}
        required = node.get("required", [])
        extra = node.get("additionalProperties", True)
        extra_part = self.compile(extra) if isinstance(extra, dict) else None
        extra_valid = extra_part.valid if extra_part is not None else None

        def valid(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key in required:
                if key not in value:
                    return False
            for key, sub in value.items():
                test = props_valid.get(key)
                if test is None:
                    if extra is False or (extra_valid is not None and not extra_valid(sub)):
                        return False
                elif not test(sub):
                    return False
            return True

        def failures(value: Any, path: ConfigPath) -> Iterator[Failure]:
            if not isinstance(value, dict):
                return
            for key in required:
                if key not in value:
                    yield Failure("required", path, node, value, key)
            for key, sub in value.items():
                part = props.get(key)
                if part is not None:
                    if not part.valid(sub):
                        yield from part.failures(sub, (*path, key))
                elif extra is False:
                    yield Failure("additionalProperties", path, node, value, key)
                elif extra_part is not None and not extra_part.valid(sub):
                    yield from extra_part.failures(sub, (*path, key))

        return Compiled(valid, failures)

    def _items(self, node: dict[str, Any]) -> Compiled:
        item = self.compile(node["items"])
        item_valid = item.valid

        def valid(value: Any) -> bool:
            if isinstance(value, list):
                for sub in value:
                    if not item_valid(sub):
                        return False
            return True

        def failures(value: Any, path: ConfigPath) -> Iterator[Failure]:
            if isinstance(value, list):
                for i, sub in enumerate(value):
                    if not item_valid(sub):
                        yield from item.failures(sub, (*path, i))

        return Compiled(valid, failures)


def compile_schema(schema: dict[str, Any], eager: bool = False) -> Compiled:
    """``compile_schema(s).failures(instance, ())`` lists every failure; ``.valid`` is the quick verdict.

    Definitions are compiled when first reached; ``eager`` compiles all of them
    now, so that a keyword this evaluator does not support is refused wherever it is.
    """
    compiler = _Compiler(schema)
    if eager:
        for name, definition in schema.get("$defs", {}).items():
            compiler.refs[f"#/$defs/{name}"] = compiler.compile(definition)
    return compiler.compile(schema)
