"""A parsed config document that can say where each value came from."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from provision.diagnostics import ConfigPath, Position, SourceLines

# Line breaks as YAML (and so PyYAML's marks) counts them.
_YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class Document:
    """``value`` is the parsed data (dicts, lists, str, int, float, bool, None).

    ``locate(path)`` gives the position of the value at a config path, or of
    the nearest ancestor that exists; ``locate_key(path)`` the position of the
    mapping key naming the last path element (used for "unknown key" errors).
    Positions are computed lazily: the JSON fast path never pays for them
    unless a diagnostic needs one.
    """

    # A plain class, not a dataclass: see provision.diagnostics.
    def __init__(
        self,
        name: str,
        text: str,
        value: Any,
        format: str,  # "json" or "yaml"
        _locate: Callable[[ConfigPath, bool], Position | None] = lambda p, k: None,
    ) -> None:
        self.name = name
        self.text = text
        self.value = value
        self.format = format
        self._locate = _locate

    def locate(self, path: ConfigPath) -> Position | None:
        return self._locate(tuple(path), False)

    def locate_key(self, path: ConfigPath) -> Position | None:
        return self._locate(tuple(path), True)

    def quotable_lines(self) -> SourceLines:
        """The lines with the spans of secret values, for diagnostics to quote safely."""
        from provision.source.secrets import quotable_lines

        return quotable_lines(self)

    @property
    def lines(self) -> list[str]:
        """Source lines, split where positions count lines (not str.splitlines'
        rules, which also break at form feeds and other separators)."""
        if self.format == "json":
            return [line.removesuffix("\r") for line in self.text.split("\n")]
        return _YAML_LINE_BREAK.split(self.text)
