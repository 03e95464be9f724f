"""What counts as a secret in a config, and masking it in a quoted source line.

One place decides, for every input format (provision's spec, Ignition,
human YAML, #cloud-config), which keys hold secrets: password hashes, plain
passwords (``passwd``, ``plain_text_passwd``, ``chpasswd`` lists), registry
passwords and auth strings, tokens, private keys, LUKS key files and HTTP
header values. Values that are secrets whatever their key: URLs with
credentials or query values, crypt(3) hashes, PEM private keys.

A diagnostic's source snippet is masked here: ``mask_line`` replaces secret
spans by ``<redacted>`` and moves the caret with the text, so the position
and the key name stay visible and the value never is. Imported only when a
diagnostic is rendered with its source line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MASK = "<redacted>"

# A (start, end) column span of a line, 0-based, end exclusive; end None: to the end of the line.
Span = tuple[int, int | None]

_SECRET_KEYS = frozenset({
    "auth", "passwd", "hashed_passwd", "plain_text_passwd", "chpasswd", "keyfile",
    "identitytoken", "registrytoken",
})
_SECRET_WORDS = ("password", "secret", "token", "private_key")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key's scalar value is a secret (in any input format)."""
    k = key.lower().replace("-", "_")
    return k in _SECRET_KEYS or k.endswith("_private") or any(word in k for word in _SECRET_WORDS)


# Keys whose whole value, mapping or list included, is secret: chpasswd's
# list/users, human YAML's password: {plain: ...}, a LUKS keyFile resource, a
# LUKS systemdTpm2 section (its PIN).
_SECRET_SUBTREES = frozenset({"chpasswd", "password", "keyfile", "systemdtpm2"})


def is_secret_subtree(key: str) -> bool:
    return _normal(key) in _SECRET_SUBTREES


def is_header_list(key: str) -> bool:
    """``httpHeaders`` (provision, Ignition) or ``http_headers`` (Butane, human YAML)."""
    return _normal(key) == "httpheaders"


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


_CRYPT_HASH = r"\$(?:1|2[abxy]?|5|6|7|y|gy|sha1|md5)\$[./A-Za-z0-9$=,+-]*"
_PEM_PRIVATE = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
_URL_PASSWORD = r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s\"'@:]*:([^/\s\"'@]*)@"
_URL_QUERY = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'?#]*[?#]([^\s\"']*)"
# A key at the start of a line or after a blank, brace, comma or quote (not
# inside a URL), then its separator.
_KEY_VALUE = r"(?<![^\s{,\"'])([A-Za-z0-9_.-]+)[\"']?\s*[:=]\s*"
_BASE64_RUN = r"[A-Za-z0-9+/]{40,}={0,2}"


def is_secret_value(text: str) -> bool:
    """A string that is a secret whatever key holds it."""
    if "://" in text and (re.search(_URL_PASSWORD, text) or re.search(_URL_QUERY, text)):
        return True
    return bool(re.match(_CRYPT_HASH, text.lstrip("!")) or re.search(_PEM_PRIVATE, text))


def lexical_spans(line: str, *, unknown_structure: bool = False) -> list[Span]:
    """Secret spans found in one line by its text alone.

    A safety net for every quoted line, and the only protection for text
    that did not parse (``unknown_structure``: then long base64 runs, such
    as the lines of a private key, are masked too).
    """
    spans: list[Span] = []
    for match in re.finditer(_KEY_VALUE, line):
        start = match.end()
        if not is_secret_key(match.group(1)) or start >= len(line) or line[start] in "{[":
            continue
        # In text that did not parse, where a value ends is unknown (the error
        # may be a missing quote): mask to the end of the line.
        spans.append((start, None if unknown_structure else value_end(line, start)))
    for pattern in (_URL_PASSWORD, _URL_QUERY):
        spans += [(m.start(1), m.end(1)) for m in re.finditer(pattern, line) if m.group(1)]
    spans += [(m.start(), m.end()) for m in re.finditer(_CRYPT_HASH, line)]
    spans += [(m.start(), None) for m in re.finditer(_PEM_PRIVATE, line)]
    if unknown_structure:
        spans += [(m.start(), m.end()) for m in re.finditer(_BASE64_RUN, line)]
    return spans


def value_end(line: str, start: int) -> int | None:
    """Where a value starting at ``start`` ends: its closing quote; unquoted, the next ``,``,
    ``}`` or ``]`` inside braces or brackets (YAML flow style), else the end of the line (None)."""
    quote = line[start]
    if quote not in "\"'":
        if _flow_depth(line[:start]) <= 0:
            return None
        ends = [i for i in (line.find(c, start) for c in ",}]") if i != -1]
        return min(ends) if ends else None
    i = start + 1
    while i < len(line):
        if line[i] == "\\" and quote == '"':
            i += 2
            continue
        if line[i] == quote:
            return i + 1
        i += 1
    return None


def _flow_depth(text: str) -> int:
    """Unclosed braces and brackets in ``text``, outside quotes."""
    depth, quote = 0, ""
    for c in text:
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
    return depth


def mask_line(line: str, spans: Iterable[Span], column: int) -> tuple[str, int]:
    """``line`` with every span replaced by ``<redacted>``, and where 1-based ``column`` now is."""
    merged = _merge([(s, len(line) if e is None else min(e, len(line))) for s, e in spans])
    out: list[str] = []
    done = 0
    caret = column - 1
    moved = caret
    for start, end in merged:
        out.append(line[done:start])
        out.append(MASK)
        if caret >= end:
            moved += len(MASK) - (end - start)
        elif caret >= start:
            moved -= caret - start  # inside the masked value: at its start
        done = end
    out.append(line[done:])
    return "".join(out), moved + 1


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
