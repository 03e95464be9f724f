"""A small parser for systemd unit files and drop-ins (systemd.syntax(7)).

It reads what systemd reads: ``[Section]`` headers, ``Key=value`` lines,
comments starting with ``#`` or ``;``, and lines continued with a trailing
backslash. Where systemd would log a warning and skip a line (a key outside any
section, a line without ``=``), this parser raises :class:`UnitSyntaxError`
with the 1-based line number: a provisioning config should say exactly what it
means. Validation uses it, and so can the units stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple


class UnitSyntaxError(ValueError):
    """A unit file that does not parse; ``line`` is 1-based within the file."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


class Entry(NamedTuple):
    key: str
    value: str
    line: int


class Section(NamedTuple):
    name: str
    line: int
    entries: tuple[Entry, ...] = ()

    def values(self, key: str) -> list[str]:
        return [e.value for e in self.entries if e.key == key]


class UnitFile(NamedTuple):
    sections: tuple[Section, ...] = ()

    def has_section(self, name: str) -> bool:
        return any(s.name == name for s in self.sections)

    def values(self, section: str, key: str) -> list[str]:
        """All values of ``key`` in every ``[section]`` block, in file order."""
        return [v for s in self.sections if s.name == section for v in s.values(key)]


_COMMENT_STARTS = ("#", ";")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, joined text) with backslash continuations folded.

    As in systemd, a continued line's backslash becomes a space, and comment
    lines inside a continuation are skipped.
    """
    pending: list[str] = []
    start = 0
    # systemd splits on newlines only and strips blanks, tabs and carriage returns.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        if pending and line.startswith(_COMMENT_STARTS):
            continue
        if not pending:
            start = number
        if line.endswith("\\") and not line.startswith(_COMMENT_STARTS):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:  # a continuation at the end of the file ends the value
        yield start, " ".join(pending)


def _section_name(line: str, number: int) -> str:
    if not line.endswith("]"):
        raise UnitSyntaxError(number, "section header does not end with ']'")
    name = line[1:-1]
    if not name or "[" in name or "]" in name:
        raise UnitSyntaxError(number, "invalid section name")
    return name


def parse_unit(text: str) -> UnitFile:
    """Parse unit-file text; raise :class:`UnitSyntaxError` on the first bad line."""
    if text.startswith("\ufeff"):  # systemd skips a UTF-8 byte order mark
        text = text[1:]
    sections: list[Section] = []
    name: str | None = None
    name_line = 0
    entries: list[Entry] = []
    for number, line in _logical_lines(text):
        if not line or line.startswith(_COMMENT_STARTS):
            continue
        if line.startswith("["):
            if name is not None:
                sections.append(Section(name, name_line, tuple(entries)))
            name, name_line, entries = _section_name(line, number), number, []
            continue
        if name is None:
            raise UnitSyntaxError(number, "assignment outside of any [Section]")
        key, eq, value = line.partition("=")
        if not eq:
            raise UnitSyntaxError(number, "line is not a [Section] header or Key=value assignment")
        key = key.strip(" \t")
        if not key:
            raise UnitSyntaxError(number, "assignment has an empty key")
        entries.append(Entry(key, value.strip(" \t"), number))
    if name is not None:
        sections.append(Section(name, name_line, tuple(entries)))
    return UnitFile(tuple(sections))
