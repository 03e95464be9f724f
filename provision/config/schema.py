"""The structural layer of validation: JSON Schema (draft 2020-12).

Messages are our own, built from the failing keyword, so they never echo a
value (a value may be a password hash or a credential).
"""

from __future__ import annotations

from functools import cache
from typing import Any

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
def _validator(schema_file: str) -> Any:
    # jsonschema costs ~50 ms to import: only pay for it when validating.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_json("schemas", schema_file))


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _unknown_keys(err: Any) -> list[tuple[str, ConfigPath, str | None, bool]]:
    path: ConfigPath = tuple(err.absolute_path)
    allowed = sorted(err.schema.get("properties", {}))
    out: list[tuple[str, ConfigPath, str | None, bool]] = []
    for key in err.instance:
        if key in allowed:
            continue
        hint = "known keys here: " + ", ".join(allowed) if allowed else None
        close = [a for a in allowed if a.lower() == str(key).lower().replace("_", "")]
        if close:
            hint = f"did you mean {close[0]!r}?"
        out.append((f"unknown key {key!r}", (*path, key), hint, True))
    return out


def _describe(err: Any) -> tuple[str, ConfigPath, str | None, bool]:
    """(message, path, hint, points_at_key) for one jsonschema error."""
    path: ConfigPath = tuple(err.absolute_path)
    keyword = err.validator
    value = err.validator_value
    if keyword == "required":
        missing = [k for k in value if k not in err.instance]
        return f"missing required key {missing[0]!r}", path, None, False
    if keyword == "type":
        expected = value if isinstance(value, list) else [value]
        wanted = " or ".join(_EXPECTED.get(str(t), str(t)) for t in expected)
        return f"expected {wanted}, found {_kind(err.instance)}", path, None, False
    if keyword == "enum":
        options = ", ".join(repr(v) for v in value)
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
    out = []
    seen: set[tuple[ConfigPath, str]] = set()
    for err in _validator(schema_file).iter_errors(spec):
        found = _unknown_keys(err) if err.validator == "additionalProperties" else [_describe(err)]
        for message, path, hint, at_key in found:
            if (path, message) in seen:
                continue
            seen.add((path, message))
            out.append((error(message, path, hint), at_key))
    return out
