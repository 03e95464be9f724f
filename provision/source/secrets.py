"""Where a parsed document holds secrets: line spans a diagnostic must not quote.

The document's values are walked with :mod:`provision.redaction`'s rules
(secret keys in every input format, secret-shaped values); each secret
value's position gives its span: the JSON string token, a YAML scalar to the
end of its line, and the continuation lines of a multi-line YAML value (a
block scalar such as a private key or a chpasswd list).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from provision.diagnostics import ConfigPath, SourceLines
from provision.redaction import (
    Span,
    is_header_list,
    is_secret_key,
    is_secret_subtree,
    is_secret_value,
    value_end,
)
from provision.source.document import Document


def quotable_lines(document: Document) -> SourceLines:
    """The document's lines, with the spans of its secrets for the renderer to mask."""
    lines = document.lines
    spans: dict[int, list[Span]] = {}
    for path in _secret_paths(document.value, ()):
        position = document.locate(path)
        if position is None or not 0 < position.line <= len(lines):
            continue
        for line, span in _value_spans(lines, position.line, position.column - 1, document.format):
            spans.setdefault(line, []).append(span)
    return SourceLines(lines, spans)


def _secret_paths(value: Any, path: ConfigPath, secret: bool = False) -> Iterator[ConfigPath]:
    """Paths of the secret scalars under ``value``."""
    if isinstance(value, dict):
        for key, child in value.items():
            name = str(key)
            header_value = name == "value" and len(path) >= 2 and is_header_list(str(path[-2]))
            # A secret key's scalar (or list of scalars) is secret; a mapping
            # under it (provision's "passwd" section) only if the key says the
            # whole subtree is (chpasswd, a keyFile resource).
            child_secret = secret or is_secret_subtree(name) or (
                (is_secret_key(name) or header_value) and not isinstance(child, dict))
            yield from _secret_paths(child, (*path, name), child_secret)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, (*path, index), secret)
    elif isinstance(value, bool) or value is None:
        return  # never a secret, and masking "true" helps nobody
    elif secret or (isinstance(value, str) and is_secret_value(value)):
        yield path


def _value_spans(lines: list[str], line: int, column: int, fmt: str) -> Iterator[tuple[int, Span]]:
    """(line, span) pairs covering the scalar that starts at ``line``, 0-based ``column``."""
    text = lines[line - 1]
    if column >= len(text):
        return
    end = value_end(text, column)
    if fmt == "json" and end is None and text[column] != '"':
        end = _json_scalar_end(text, column)
    yield line, (column, end)
    if fmt == "json" or end is not None:
        return
    # YAML: a value can go on over more-indented lines (block scalars, folded plain scalars).
    indent = len(text) - len(text.lstrip(" "))
    for number in range(line + 1, len(lines) + 1):
        following = lines[number - 1]
        if following.strip() and len(following) - len(following.lstrip(" ")) <= indent:
            break
        if following.strip():
            yield number, (0, None)


def _json_scalar_end(text: str, column: int) -> int:
    end = column
    while end < len(text) and text[end] not in ",}] \t":
        end += 1
    return end
