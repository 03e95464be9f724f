"""Where each value of a JSON text starts: a position tree (see positions.py).

``json.loads`` (C) parses configs fast but forgets positions. This small
pure-Python scanner recovers them, and is only run when a diagnostic needs
one (or to explain a duplicate key, a bad number or excessive nesting). It is
iterative, so no input can make it recurse, and it never raises on malformed
text: it stops and keeps what it has found.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from provision.diagnostics import ConfigPath, PathPart
from provision.source.positions import Entry
from provision.source.problems import MAX_DUPLICATES_REPORTED

# Duplicates kept with their positions (one more than reported, to place the
# summary of the rest); the rest are only counted.
KEEP_DUPLICATES = MAX_DUPLICATES_REPORTED + 1

# Python refuses to convert integers longer than this (sys.int_info default).
MAX_INT_DIGITS = 4300

_TOKEN = re.compile(
    r'[ \t\r\n]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([{}\[\],:])|([^ \t\r\n{}\[\],:"]+))', re.S
)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\Z")
_LITERALS = frozenset({"true", "false", "null"})


@dataclass
class Duplicate:
    path: ConfigPath  # path of the duplicated member
    first_key: int  # offset of the first occurrence's key
    second_key: int  # offset of the repeated key


@dataclass
class Scan:
    root: Entry | None = None
    duplicates: list[Duplicate] = field(default_factory=list)  # the first KEEP_DUPLICATES
    duplicate_count: int = 0
    too_deep_at: int | None = None  # offset of the first bracket past the depth limit
    bad_token: tuple[int, str, str] | None = None  # (offset, token, reason)


def _decode_key(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    try:
        key = json.loads(token)
    except ValueError:
        return token[1:-1]
    return key if isinstance(key, str) else token[1:-1]


def _check_word(word: str) -> str | None:
    """Why a bare token is not acceptable JSON, or None if it is fine."""
    if word in _LITERALS:
        return None
    if not _NUMBER.match(word):
        return "is not valid JSON"
    mantissa = word.lstrip("-").split("e")[0].split("E")[0]
    if "." not in mantissa and len(mantissa) > MAX_INT_DIGITS:
        return f"is an integer longer than {MAX_INT_DIGITS} digits"
    if any(c in word for c in ".eE") and math.isinf(float(word)):
        return "is too large a number"
    return None


def scan(text: str, max_depth: int) -> Scan:
    """Index every value of ``text``; stop early at nesting deeper than ``max_depth``."""
    result = Scan()
    # Open containers: [children, expecting_key, pending_key, pending_key_offset]
    stack: list[list[Any]] = []
    path: list[PathPart] = []
    pos, end = 0, len(text)
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None:
            break
        pos = match.end()
        string, punct, word = match.groups()
        start = match.start(match.lastindex or 0)
        top = stack[-1] if stack else None

        if punct in ("}", "]"):
            if not stack:
                break
            stack.pop()
            if path:
                path.pop()
            continue
        if punct == ",":
            if top is not None and isinstance(top[0], dict):
                top[1] = True
            continue
        if punct == ":":
            if top is not None:
                top[1] = False
            continue
        if string is not None and top is not None and isinstance(top[0], dict) and top[1]:
            top[2], top[3] = _decode_key(string), start
            continue
        if word is not None and result.bad_token is None:
            reason = _check_word(word)
            if reason:
                result.bad_token = (start, word, reason)

        children: dict[str, Entry] | list[Entry] | None = None
        if punct == "{":
            children = {}
        elif punct == "[":
            children = []
        part = _attach(result, top, path, start, children)

        if children is not None:
            if len(stack) >= max_depth:
                result.too_deep_at = start
                return result
            stack.append([children, isinstance(children, dict), None, None])
            path.append(part)
    return result


def _attach(
    result: Scan,
    top: list[Any] | None,
    path: list[PathPart],
    start: int,
    children: dict[str, Entry] | list[Entry] | None,
) -> PathPart:
    """Record a value starting at ``start`` in its parent; returns its path part."""
    if top is None:
        if result.root is None:
            result.root = (None, start, children)
        return ""  # a placeholder for the root in ``path``
    siblings = top[0]
    if isinstance(siblings, list):
        siblings.append((None, start, children))
        return len(siblings) - 1
    key, key_offset = top[2], top[3]
    if key is None:
        return ""
    previous = siblings.get(key)
    if previous is not None:
        result.duplicate_count += 1
        if len(result.duplicates) < KEEP_DUPLICATES:
            result.duplicates.append(Duplicate((*path[1:], key), previous[0], key_offset))
    siblings[key] = (key_offset, start, children)
    top[2] = None
    return str(key)
