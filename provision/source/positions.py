"""Position trees, and turning offsets into 1-based line and column.

Both loaders describe where values are with the same structure: each value
is an Entry (key mark, value mark, children), children being a dict (mapping
members), a list (sequence items) or None (a scalar). Marks are whatever the
producer stores: character offsets for JSON, (line, column) pairs for YAML.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any

from provision.diagnostics import ConfigPath, PathPart, Position

Entry = tuple[Any, Any, "dict[str, Entry] | list[Entry] | None"]


def find_mark(root: Entry | None, path: ConfigPath, want_key: bool) -> Any:
    """The mark of the value (or key) at ``path``, else of its nearest existing ancestor."""
    if root is None:
        return None
    entry = root
    for part in path:
        child = _child(entry[2], part)
        if child is None:
            return entry[1]
        entry = child
    if want_key and entry[0] is not None:
        return entry[0]
    return entry[1]


def _child(children: dict[str, Entry] | list[Entry] | None, part: PathPart) -> Entry | None:
    if isinstance(children, dict):
        return children.get(part) if isinstance(part, str) else None
    if isinstance(children, list) and isinstance(part, int) and not isinstance(part, bool):
        return children[part] if 0 <= part < len(children) else None
    return None


class LineIndex:
    """Character offset -> 1-based line and column (lines end at ``\\n``, as in ``json``)."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        self._starts.extend(m.end() for m in re.finditer("\n", text))

    def position(self, offset: int) -> Position:
        line = bisect_right(self._starts, offset) - 1
        return Position(line + 1, offset - self._starts[line] + 1)


def byte_position(data: bytes, offset: int) -> Position:
    """Line and column (in characters) of a byte offset into UTF-8 text."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return Position(data.count(b"\n", 0, offset) + 1, column)
