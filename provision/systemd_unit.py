"""A small parser for systemd unit files and drop-ins (systemd.syntax(7)).

It reads what systemd reads: ``[Section]`` headers, ``Key=value`` lines,
comments starting with ``#`` or ``;``, and lines continued with a trailing
backslash. Where systemd would log a warning and skip a line (a key outside any
section, a line without ``=``), this parser raises :class:`UnitSyntaxError`
with the 1-based line number: a provisioning config should say exactly what it
means. Validation uses it, and so can the units stage.

It also holds what a valid unit name is (:func:`unit_name_problem`): names
from ``[Install]`` become symlink names, so validation and the link
computation (:mod:`provision.target.unit_links`) must agree on them.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple turns
# each field's annotation into a ForwardRef, compiled at import (see
# tests/test_validate_startup.py).
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

UNIT_SUFFIXES = (
    "service", "socket", "device", "mount", "automount", "swap",
    "target", "path", "timer", "slice", "scope",
)  # fmt: skip
MAX_UNIT_NAME = 255  # systemd's UNIT_NAME_MAX - 1: a file name
# systemd's unit name characters; the instance part may also contain "@".
_PREFIX_PATTERN = r"^[A-Za-z0-9:_.\\-]+$"
_INSTANCE_PATTERN = r"^[A-Za-z0-9:_.\\@-]+$"


def instance_problem(instance: str) -> str | None:
    """Why ``instance`` cannot be a unit instance (DefaultInstance=, foo@INSTANCE.service)."""
    if not instance:
        return "empty instance name"
    if not re.fullmatch(_INSTANCE_PATTERN, instance):
        return "invalid characters in instance name (a '/' must be escaped as '-', see systemd-escape)"
    return None


def unit_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid unit name; None when it is.

    A valid name is a plain file name: no "/", no NUL, not "." or "..", so a
    link named after it stays in the directory it is made in.
    """
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return "no systemd unit extension"
    if suffix not in UNIT_SUFFIXES:
        return f"invalid systemd unit extension .{suffix}"
    if len(name) > MAX_UNIT_NAME:
        return f"unit name is longer than {MAX_UNIT_NAME} characters"
    prefix, at, instance = stem.partition("@")
    if not prefix or not re.fullmatch(_PREFIX_PATTERN, prefix):
        return "invalid characters in unit name"
    if at and instance and not re.fullmatch(_INSTANCE_PATTERN, instance):
        return "invalid systemd instantiated unit"
    return None


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


def expand_specifiers(value: str, name: str) -> str:
    """Expand the unit-name specifiers [Install] values use (%n %N %p %i %j %%) for unit ``name``.

    Other specifiers are left as they are (they name host facts, not units).
    """
    stem, dot, _suffix = name.rpartition(".")
    if not dot:
        stem = name
    prefix, _at, instance = stem.partition("@")
    table = {"n": name, "N": stem, "p": prefix, "i": instance, "j": prefix.rpartition("-")[2], "%": "%"}
    out, i = [], 0
    while i < len(value):
        if value[i] == "%" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


# [Install] keys whose values become names of links (or of units to enable).
NAME_KEYS = ("WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also")


class InstallProblem(NamedTuple):
    line: int
    key: str
    value: str
    message: str
    fatal: bool  # False: an unsupported specifier (not linked, but harmless)


def install_problems(unit: UnitFile, name: str) -> Iterator[InstallProblem]:
    """[Install] values of the unit ``name`` that cannot name a link inside the unit directory.

    WantedBy=/RequiredBy=/UpheldBy=/Alias=/Also= must be unit names and
    DefaultInstance= an instance name: a "/" or ".." in them would put the link
    somewhere else.
    """
    for section in unit.sections:
        if section.name != "Install":
            continue
        for entry in section.entries:
            check: Callable[[str], str | None]
            if entry.key in NAME_KEYS:
                values = entry.value.split()
                check = unit_name_problem
            elif entry.key == "DefaultInstance":
                values = [entry.value] if entry.value else []
                check = instance_problem
            else:
                continue
            for value in values:
                expanded = expand_specifiers(value, name)
                problem = check(expanded)
                if problem is None:
                    continue
                if "%" in expanded and check(expanded.replace("%", "x")) is None:
                    yield InstallProblem(entry.line, entry.key, value,
                                         "a specifier other than %n %N %p %i %j; not linked", False)
                else:
                    yield InstallProblem(entry.line, entry.key, value, problem, True)
