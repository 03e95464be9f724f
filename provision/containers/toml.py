"""A small TOML writer (reading is the standard library's tomllib).

Enough for runtime configuration files: strings, integers, floats, booleans,
dates, arrays, tables and arrays of tables, keys quoted when not bare. The
output parses back with tomllib to the same data (tested with hypothesis).
Comments of a file we merge into are not kept: tomllib does not report them.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(value: str) -> str:
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, Mapping):  # inline table inside an array
        return "{" + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _emit(table: Mapping[str, Any], path: list[str], out: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping) and not _is_table_array(v)]
    for key, value in scalars:
        out.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in table.items():
        if isinstance(value, Mapping):
            sub = [*path, key]
            has_scalars = any(
                not isinstance(v, Mapping) and not _is_table_array(v) for v in value.values()
            )
            if has_scalars or not value:
                out.append("")
                out.append("[" + ".".join(_key(k) for k in sub) + "]")
            _emit(value, sub, out)
        elif _is_table_array(value):
            sub = [*path, key]
            for item in value:
                out.append("")
                out.append("[[" + ".".join(_key(k) for k in sub) + "]]")
                _emit(item, sub, out)


def dumps(data: Mapping[str, Any]) -> str:
    out: list[str] = []
    _emit(data, [], out)
    while out and out[0] == "":
        out.pop(0)
    return "\n".join(out) + "\n" if out else ""
