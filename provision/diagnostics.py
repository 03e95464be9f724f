"""Diagnostics: findings about a config, with position, and their renderings.

A Diagnostic names the config path (``$.storage.files[3].mode``) and, where
the source is known, file, line and column (1-based). Renderers produce the
text form (with the source line and a caret), JSON, and GitHub workflow
annotations.
"""

import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple

PathPart = str | int
ConfigPath = tuple[PathPart, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# NamedTuples, not dataclasses: these are imported on every run, and
# dataclasses (with the inspect module it imports) costs start-up time. No
# "from __future__ import annotations" here: NamedTuple compiles every string
# annotation into a ForwardRef, which costs more than the class itself.
class Position(NamedTuple):
    line: int
    column: int


class Diagnostic(NamedTuple):
    severity: Severity
    message: str
    path: ConfigPath = ()
    hint: str | None = None
    file: str | None = None
    position: Position | None = None
    # Where a second location matters (a duplicate key, a merge conflict).
    related: tuple[tuple[str | None, Position | None], ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def at(self, file: str | None, position: Position | None) -> "Diagnostic":
        return self._replace(file=file, position=position)


def error(message: str, path: ConfigPath = (), hint: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, path, hint)


def warning(message: str, path: ConfigPath = (), hint: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, message, path, hint)


def format_path(path: Sequence[PathPart]) -> str:
    """Render a config path as ``$.a.b[3].c``; keys that are not identifiers are quoted."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.replace("_", "a").isalnum() and not part[:1].isdigit():
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def strictened(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """--strict: every warning becomes an error."""
    return [d._replace(severity=Severity.ERROR) for d in diagnostics]


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    pos = d.position or Position(0, 0)
    return (d.file or "", pos.line, pos.column, d.message)


def _location(d: Diagnostic) -> str:
    where = d.file or "<config>"
    if d.position:
        where += f":{d.position.line}:{d.position.column}"
    return where


class SourceLines(list[str]):
    """A source's lines to quote, and per line number the spans of secret values in it.

    ``secrets`` maps a 1-based line to (start, end) column spans, 0-based,
    end exclusive or None for the rest of the line. Made from a parsed
    document by provision.source.secrets; a plain list of lines (text that
    did not parse) is masked by its text alone.
    """

    def __init__(self, lines: Sequence[str], secrets: dict[int, list[tuple[int, int | None]]]) -> None:
        super().__init__(lines)
        self.secrets = secrets


def render_text(d: Diagnostic, source_lines: Sequence[str] | None = None) -> str:
    """Human form: ``file:line:col: error at $.path: message``, snippet, caret, hint.

    The snippet never shows a secret: its spans are replaced by ``<redacted>``
    (see provision.redaction), keeping the key name and the position.
    """
    head = f"{_location(d)}: {d.severity.value}"
    if d.path:
        head += f" at {format_path(d.path)}"
    lines = [f"{head}: {d.message}"]
    if d.position and source_lines and 0 < d.position.line <= len(source_lines):
        raw = source_lines[d.position.line - 1].rstrip("\r\n")
        if len(raw) <= 200:  # a longer line is no help to read (and minified JSON can be MiBs)
            lines += _snippet(raw, d.position, source_lines)
    for file, pos in d.related:
        loc = (file or "<config>") + (f":{pos.line}:{pos.column}" if pos else "")
        lines.append(f"  note: see also {loc}")
    if d.hint:
        lines.append(f"  hint: {d.hint}")
    return "\n".join(lines)


def _snippet(raw: str, position: Position, source_lines: Sequence[str]) -> list[str]:
    """The source line with its secrets masked, and a caret under the position's column."""
    from provision.redaction import lexical_spans, mask_line

    if isinstance(source_lines, SourceLines):
        spans = [*source_lines.secrets.get(position.line, ()), *lexical_spans(raw)]
    else:  # text that did not parse: only its look says what is secret
        spans = lexical_spans(raw, unknown_structure=True)
    masked, column = mask_line(raw, spans, position.column)
    # One character for one: the caret stays under its column, and a
    # hostile file cannot send escape sequences to the terminal.
    src = "".join(c if c.isprintable() else " " if c == "\t" else "?" for c in masked)
    gutter = f"{position.line:>5} | "
    return [gutter + src, " " * (len(gutter) - 2) + "| " + " " * (column - 1) + "^"]


def to_json(d: Diagnostic) -> dict[str, object]:
    return {
        "severity": d.severity.value,
        "message": d.message,
        "path": format_path(d.path),
        "file": d.file,
        "line": d.position.line if d.position else None,
        "column": d.position.column if d.position else None,
        "hint": d.hint,
        "related": [
            {"file": f, "line": p.line if p else None, "column": p.column if p else None}
            for f, p in d.related
        ],
    }


def _escape_github(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(d: Diagnostic) -> str:
    """GitHub workflow command: ``::error file=F,line=L,col=C::message``."""
    props = []
    if d.file:
        props.append("file=" + _escape_github(d.file, True))
    if d.position:
        props.append(f"line={d.position.line}")
        props.append(f"col={d.position.column}")
    props.append("title=" + _escape_github(format_path(d.path), True))
    message = d.message + (f" (hint: {d.hint})" if d.hint else "")
    return f"::{d.severity.value} {','.join(props)}::{_escape_github(message)}"
