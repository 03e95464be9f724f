"""The structural layer of validation: JSON Schema (draft 2020-12).

Schemas are evaluated by provision.config.schema_eval (checked against
jsonschema in the tests). Messages are our own, built from the failing
keyword, so they never echo a value (it may be a password hash or a
credential).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from provision.config.schema_eval import Compiled, Failure, compile_schema
from provision.diagnostics import ConfigPath, Diagnostic, error
from provision.resources import load_json

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_EXPECTED = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


@cache
def _validator(schema_file: str) -> Compiled:
    return compile_schema(load_json("schemas", schema_file))


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _describe(err: Failure) -> tuple[str, ConfigPath, str | None, bool]:
    """(message, path, hint, points_at_key) for one failure."""
    path = err.path
    keyword = err.keyword
    value: Any = err.schema.get(keyword)
    if keyword == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        key = err.detail
        hint = "known keys here: " + ", ".join(allowed) if allowed else None
        close = [a for a in allowed if a.lower() == str(key).lower().replace("_", "")]
        if close:
            hint = f"did you mean {close[0]!r}?"
        return f"unknown key {key!r}", (*path, key), hint, True
    if keyword == "required":
        return f"missing required key {err.detail!r}", path, None, False
    if keyword == "type":
        expected = value if isinstance(value, list) else [value]
        wanted = " or ".join(_EXPECTED.get(str(t), str(t)) for t in expected)
        return f"expected {wanted}, found {_kind(err.instance)}", path, None, False
    if keyword == "enum":
        options = ", ".join(repr(v) for v in value or () if v is not None)
        return f"must be one of {options}", path, None, False
    if keyword == "const":
        return f"must be {value!r}", path, None, False
    if keyword == "minimum":
        return f"must be at least {value}", path, None, False
    if keyword == "maximum":
        return f"must be at most {value}", path, None, False
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters", path, None, False
    if keyword == "pattern":
        return f"does not match the pattern {value}", path, None, False
    return f"invalid ({keyword})", path, None, False


def schema_diagnostics(spec: Any, schema_file: str) -> list[tuple[Diagnostic, bool]]:
    """Diagnostics for ``spec`` against one schema; the flag says "position at the key"."""
    validator = _validator(schema_file)
    if validator.valid(spec):
        return []
    out = []
    seen: set[tuple[ConfigPath, str]] = set()
    for failure in validator.failures(spec, ()):
        message, path, hint, at_key = _describe(failure)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        out.append((error(message, path, hint), at_key))
    return out
