"""Bytes to a Document: JSON or YAML, with positions, and with hard limits.

``read_config_file`` turns a path (or ``-`` for stdin) into bytes, raising a
UsageError (exit 2) when it cannot be read. ``load_document`` turns bytes
into a Document or raises ConfigError with positioned diagnostics; no input
makes it raise anything else.

Format: JSON when the first non-blank character is ``{`` or ``[``, else YAML.
Text that starts like JSON but is not JSON is tried as YAML (``{a: 1}`` is a
YAML flow mapping) unless the name ends in ``.json``; if it is not YAML
either, the JSON error is reported.
Text must be UTF-8 (a byte-order mark is accepted). YAML is read as plain
data only (see yaml_loader for the exact rules: string keys, core tags,
timestamps kept as strings, one document).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import sys
from typing import Any

from provision.diagnostics import ConfigPath, Position, error
from provision.errors import ConfigError, UsageError
from provision.source.document import Document
from provision.source.positions import byte_position
from provision.source.problems import capped_duplicates, duplicate_key, located

# 16 MiB. Real configs are far smaller (cloud user-data caps at 16 KiB-256 KiB;
# a config inlining a few binaries as data: URLs reaches a few MiB). Parsed
# Python values take several times the text's size, so this keeps the worst
# case around a couple of hundred MiB, which an initramfs can afford.
MAX_CONFIG_BYTES = 16 * 1024 * 1024

# Real configs nest fewer than 10 levels. 64 leaves ample room while keeping
# every later recursive walk (schema validation, translation, rendering) far
# from Python's recursion limit of 1000 frames.
MAX_DEPTH = 64

# Values that YAML aliases may add by expansion. Sharing a unit or a user via
# an anchor adds tens or hundreds; an alias bomb adds billions.
MAX_ALIAS_EXPANSION = 100_000

_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
_BINARY_HINT = "is this a binary file? A config is UTF-8 JSON or YAML text"
_START = Position(1, 1)


def read_config_file(path: str) -> bytes:
    """The bytes of a config file; ``-`` reads stdin. Reads at most one byte past the limit.

    Every command that reads a config (validate, plan, apply, transpile,
    fetch --config) reads it here, so one size cap holds for all of them.
    """
    try:
        if path == "-":
            if sys.stdin is None:
                raise UsageError("-: standard input is closed")
            return sys.stdin.buffer.read(MAX_CONFIG_BYTES + 1)
        return read_regular_file(path, MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a config file") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except NotRegularFileError as exc:
        raise UsageError(f"{path}: {exc}; give a config file, or pipe it to '-'") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the path
        raise UsageError(f"{path!r}: not a valid file name") from None


class NotRegularFileError(OSError):
    """A FIFO, socket or device where a file was expected (reading it could hang or never end)."""


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_regular_file(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``.

    Opened non-blocking so a FIFO with no writer cannot hang the open, then
    refused unless it is a regular file: /dev/zero would never end and a
    FIFO could stall for ever.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise NotRegularFileError(errno.EINVAL, f"is {kind}, not a regular file")
        return stream.read(limit)


def load_document(data: bytes, name: str, binary: bool = False) -> Document:
    """Parse a config's bytes; raises ConfigError (positioned) for anything invalid.

    ``binary``: YAML's ``!!binary`` is read as bytes (for cloud-config, whose
    write_files content may be given so); otherwise it is refused like any
    non-core tag.
    """
    text = _decode(data, name)
    if not text.strip():
        raise located(name, _START, "config is empty", _EMPTY_HINT)
    if text.lstrip()[0] not in "{[":
        return _load_yaml(text, name, binary)
    try:
        return _load_json(text, name)
    except _JsonSyntaxError as exc:
        # ``{a: 1}`` is a YAML flow mapping; accept it unless the file says it is JSON.
        if name.lower().endswith(".json"):
            raise
        from provision.source.yaml_loader import YamlSyntaxError

        try:
            return _load_yaml(text, name, binary)
        except YamlSyntaxError:  # neither JSON nor YAML: the JSON error says more
            raise exc from None


_EMPTY_HINT = 'a config is a JSON or YAML mapping, e.g. {"provision": {"version": "1.0.0"}}'


# -- bytes to text -------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    if len(data) > MAX_CONFIG_BYTES:
        raise located(
            name, _START,
            f"config is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB",
            "configs are limited in size; fetch large file contents by URL instead of inlining them",
        )
    for bom, encoding in _OTHER_BOMS.items():
        if data.startswith(bom):
            raise located(name, _START, f"config is {encoding} text; only UTF-8 is accepted",
                         "convert it, e.g. iconv -t UTF-8")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    nul = data.find(b"\0")
    if nul >= 0:
        raise located(name, byte_position(data, nul), "config contains a NUL byte", _BINARY_HINT)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise located(
            name, byte_position(data, exc.start),
            f"config is not valid UTF-8 (byte 0x{bad:02x})", _BINARY_HINT,
        ) from None


# -- JSON ----------------------------------------------------------------------


class _JsonSyntaxError(ConfigError):
    """Not JSON at all (as opposed to JSON we refuse, such as a duplicate key)."""


class _DuplicateKey(Exception):
    pass


class _BadConstant(Exception):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateKey
    return members


def _reject_constant(name: str) -> Any:
    raise _BadConstant(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # 1e999: JSON has no infinity
        raise _BadConstant(text)
    return number


def _load_json(text: str, name: str) -> Document:
    try:
        value = json.loads(
            text, object_pairs_hook=_unique_members, parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise _json_syntax_error(exc, name) from None
    except (_DuplicateKey, _BadConstant, RecursionError, ValueError):
        # Rare: rescan in pure Python to say exactly what and where.
        raise _json_scan_error(text, name) from None
    if _too_deep(value):
        raise _json_scan_error(text, name)
    if _LONE_SURROGATE_ESCAPE.search(text):
        _check_surrogates(text, name)

    index: dict[str, Any] = {}

    def locate(path: ConfigPath, want_key: bool) -> Position | None:
        from provision.source.json_positions import scan
        from provision.source.positions import LineIndex, find_mark

        if not index:
            index["lines"] = LineIndex(text)
            index["root"] = scan(text, MAX_DEPTH).root
        offset = find_mark(index["root"], path, want_key)
        return None if offset is None else index["lines"].position(offset)

    return Document(name, text, value, "json", locate)


def _too_deep(value: Any) -> bool:
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        container, depth = pending.pop()
        if depth > MAX_DEPTH:
            return True
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, dict | list):
                pending.append((child, depth + 1))
    return False


def _json_scan_error(text: str, name: str) -> ConfigError:
    from provision.source.json_positions import scan
    from provision.source.positions import LineIndex

    result = scan(text, MAX_DEPTH)
    lines = LineIndex(text)
    if result.too_deep_at is not None:
        return located(name, lines.position(result.too_deep_at),
                      f"nesting deeper than {MAX_DEPTH} levels")
    if result.duplicates:
        diagnostics = [
            duplicate_key(name, dup.path, lines.position(dup.first_key), lines.position(dup.second_key))
            for dup in result.duplicates
        ]
        return ConfigError(capped_duplicates(diagnostics, result.duplicate_count))
    if result.bad_token is not None:
        offset, token, reason = result.bad_token
        shown = token if len(token) <= 40 else token[:37] + "..."
        return located(name, lines.position(offset), f"invalid JSON: {shown} {reason}",
                      "JSON has no NaN or Infinity; use a string or a finite number")
    # json rejected it but the scanner found nothing specific: still say where it starts.
    return located(name, _START, "invalid JSON")


_JSON_HINTS = {
    "}": "JSON allows no comma after the last member of an object",
    "]": "JSON allows no comma after the last item of an array",
    "'": "JSON strings and keys need double quotes",
    "/": "JSON has no comments; use YAML if you want comments",
    "#": "JSON has no comments; use YAML if you want comments",
}


def _json_syntax_error(exc: json.JSONDecodeError, name: str) -> _JsonSyntaxError:
    text = exc.doc
    message = exc.msg
    hint = None
    if message == "Extra data":
        message = "unexpected text after the end of the JSON document"
    elif exc.pos >= len(text.rstrip()):
        message = "unexpected end of input"
        hint = "a bracket or brace is not closed"
    elif message.startswith("Expecting") or message == "Invalid control character at":
        hint = _JSON_HINTS.get(text[exc.pos])
        if message.startswith("Invalid control"):
            message = "invalid control character in string"
            hint = "write newlines and tabs inside strings as \\n and \\t"
    message = message[:1].lower() + message[1:]
    diagnostic = error(f"invalid JSON: {message}", (), hint).at(name, Position(exc.lineno, exc.colno))
    return _JsonSyntaxError([diagnostic])


# \uD800-\uDFFF escapes; Python's json accepts unpaired ones, which later
# cannot be written out as UTF-8, so they are rejected here.
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _check_surrogates(text: str, name: str) -> None:
    from provision.source.positions import LineIndex

    for match in _LONE_SURROGATE_ESCAPE.finditer(text):
        start = match.start()
        if _backslashes_before(text, start) % 2:
            continue  # "\\uD800" is an escaped backslash followed by text
        if _SURROGATE_PAIR.match(text, start):
            continue
        if (
            start >= 6
            and _SURROGATE_PAIR.match(text, start - 6)
            and _backslashes_before(text, start - 6) % 2 == 0
        ):
            continue  # the low half of a pair
        raise located(name, LineIndex(text).position(start),
                     f"invalid JSON: unpaired UTF-16 surrogate {match.group()}")


def _backslashes_before(text: str, index: int) -> int:
    count = 0
    while index > count and text[index - count - 1] == "\\":
        count += 1
    return count


# -- YAML ----------------------------------------------------------------------


def _load_yaml(text: str, name: str, binary: bool = False) -> Document:
    from provision.source.yaml_loader import load_yaml, mark_position

    loaded = load_yaml(text, name, MAX_DEPTH, MAX_ALIAS_EXPANSION, binary)
    if loaded is None:
        raise located(name, _START, "config is empty", _EMPTY_HINT)
    value, root = loaded

    def locate(path: ConfigPath, want_key: bool) -> Position | None:
        from provision.source.positions import find_mark

        return mark_position(find_mark(root, path, want_key))

    return Document(name, text, value, "yaml", locate)
