"""User data split into typed parts, each knowing where it sits in the original bytes.

cloud-init's rules (cloudinit/user_data.py, handlers/__init__.py): gzip user
data is decompressed first; data with ``MIME-Version:`` in its first 4 KiB is
a MIME message, anything else one part typed by its first line (``#!``,
``#include``, ``## template: jinja``...). Parts of type text/plain or
text/x-shellscript are re-typed by their first line too, and gzip-typed parts
are decompressed and then typed by their first line.

The parser is our own, not the ``email`` package, because diagnostics must
point at lines of the original document: every part records the line its
payload starts on, and whether its payload lines are the original lines
(false after base64, quoted-printable or gzip decoding).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import zlib
from typing import NamedTuple

# First-line markers, longest first so "#include-once" wins over "#include".
PREFIX_TYPES: tuple[tuple[str, str], ...] = tuple(sorted({
    "#include": "text/x-include-url",
    "#include-once": "text/x-include-once-url",
    "#!": "text/x-shellscript",
    "#cloud-config": "text/cloud-config",
    "#part-handler": "text/part-handler",
    "#upstart-job": "text/upstart-job",
    "#cloud-boothook": "text/cloud-boothook",
    "#cloud-config-archive": "text/cloud-config-archive",
    "#cloud-config-jsonp": "text/cloud-config-jsonp",
    "## template: jinja": "text/jinja2",
}.items(), key=lambda item: -len(item[0])))

GZIP_TYPES = frozenset({
    "application/gzip", "application/gzip-compressed", "application/gzipped", "application/x-compress",
    "application/x-compressed", "application/x-gunzip", "application/x-gzip", "application/x-gzip-compressed",
})
# Types whose real type is read from the first line.
RETYPED = frozenset({"text/plain", "text/x-not-multipart", "text/x-shellscript"})
NOT_MULTIPART = "text/x-not-multipart"
GZIP_MAGIC = b"\x1f\x8b"
# Decompressed user data is held to the config size limit: a gzip bomb is an error, not an OOM.
MAX_DECOMPRESSED = 32 << 20
# Multiparts inside multiparts: real user data nests one or two deep; this stops a crafted one early.
MAX_NESTING = 16


class UserDataError(ValueError):
    """Malformed user data, with the line (1-based) it was found on."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class Part(NamedTuple):
    content_type: str  # lower case, without parameters
    payload: bytes
    line: int  # original line of the payload's first line (exact) or of the part's headers
    exact: bool  # payload line n is original line ``line + n``
    headers: dict[str, str]  # lower-case names
    filename: str | None = None
    line_map: tuple[int, ...] = ()  # rendered templates: payload line n came from line_map[n-1] of the template


def type_from_start(payload: bytes, default: str | None = None) -> str | None:
    """cloud-init's typing of a payload by its first characters (case-insensitive)."""
    try:
        head = payload[:64].decode("utf-8").lower().lstrip()
    except UnicodeDecodeError:
        return default
    for prefix, content_type in PREFIX_TYPES:
        if head.startswith(prefix):
            return content_type
    return default


def gunzip(data: bytes, line: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED)
    except zlib.error as exc:
        raise UserDataError(f"gzip data is corrupt: {exc}", line) from None
    if inflater.unconsumed_tail:
        raise UserDataError(f"gzip data decompresses to more than {MAX_DECOMPRESSED >> 20} MiB", line)
    if not inflater.eof:
        raise UserDataError("gzip data is truncated", line)
    return out


def is_mime(data: bytes) -> bool:
    return b"mime-version:" in data[:4096].lower()


def split(data: bytes) -> list[Part]:
    """The leaf parts of ``data``, in order, typed (multipart containers are not parts)."""
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, 1)
        if not is_mime(data):
            return [_typed(Part(NOT_MULTIPART, data, 1, False, {}))]
        return [p._replace(exact=False) for p in split(data)]
    if not is_mime(data):
        return [_typed(Part(NOT_MULTIPART, data, 1, True, {}))]
    lines = data.split(b"\n")
    return _message(lines, 0, len(lines))


def _typed(part: Part) -> Part:
    content_type, payload, exact = part.content_type, part.payload, part.exact
    if content_type in GZIP_TYPES or (content_type == NOT_MULTIPART and payload[:2] == GZIP_MAGIC):
        payload = gunzip(payload, part.line)
        content_type, exact = "text/plain", False
    if content_type in RETYPED:
        content_type = type_from_start(payload) or content_type
    return part._replace(content_type=content_type, payload=payload, exact=exact)


def _headers(lines: list[bytes], start: int, end: int) -> tuple[dict[str, str], int]:
    """Headers from ``start``; returns them and the index of the first body line."""
    headers: dict[str, str] = {}
    last: str | None = None
    i = start
    while i < end:
        text = lines[i].rstrip(b"\r").decode("utf-8", "replace")
        if not text.strip():
            return headers, i + 1
        if text[0] in " \t" and last is not None:
            headers[last] += " " + text.strip()
        elif ":" in text:
            name, _, value = text.partition(":")
            last = name.strip().lower()
            headers[last] = value.strip()
        else:  # no header block: the body starts here
            return headers, i
        i += 1
    return headers, i


_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


def content_type(value: str) -> tuple[str, dict[str, str]]:
    main = value.split(";", 1)[0].strip().lower() or "text/plain"
    params = {}
    for name, raw in _PARAM.findall(value):
        params[name.lower()] = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
    return main, params


def _filename(headers: dict[str, str]) -> str | None:
    _, params = content_type("x/x; " + headers.get("content-disposition", "").partition(";")[2])
    return params.get("filename")


def _message(lines: list[bytes], start: int, end: int, depth: int = 0) -> list[Part]:
    headers, body = _headers(lines, start, end)
    kind, params = content_type(headers.get("content-type", "text/plain"))
    if kind.startswith("multipart/"):
        boundary = params.get("boundary")
        if not boundary:
            raise UserDataError(f"{kind} without a boundary parameter", start + 1)
        if depth >= MAX_NESTING:
            raise UserDataError(f"multipart messages nested more than {MAX_NESTING} deep", start + 1)
        return _multipart(lines, body, end, boundary.encode(), start + 1, depth + 1)
    payload_lines = lines[body:end]
    payload = b"\n".join(payload_lines)
    exact = True
    encoding = headers.get("content-transfer-encoding", "7bit").lower()
    if encoding == "base64":
        try:
            payload = base64.b64decode(b"".join(line.strip() for line in payload_lines), validate=True)
        except (binascii.Error, ValueError):
            raise UserDataError("base64 part is not valid base64", body + 1) from None
        exact = False
    elif encoding == "quoted-printable":
        import quopri

        payload, exact = quopri.decodestring(payload), False
    elif encoding not in ("7bit", "8bit", "binary"):
        raise UserDataError(f"unknown Content-Transfer-Encoding {encoding!r}", start + 1)
    line = body + 1 if exact else start + 1
    return [_typed(Part(kind, payload, line, exact, headers, _filename(headers)))]


def _multipart(lines: list[bytes], start: int, end: int, boundary: bytes, line: int, depth: int) -> list[Part]:
    delimiter, closing = b"--" + boundary, b"--" + boundary + b"--"
    cuts: list[int] = []
    closed = False
    for i in range(start, end):
        text = lines[i].rstrip(b"\r \t")
        if text == closing:
            cuts.append(i)
            closed = True
            break
        if text == delimiter:
            cuts.append(i)
    if not cuts:
        raise UserDataError("multipart message without any part (no boundary line found)", line)
    if not closed:
        cuts.append(end)
    parts: list[Part] = []
    for a, b in itertools.pairwise(cuts):
        # The line break before a boundary belongs to the boundary (RFC 2046), which
        # joining the lines between the two already leaves out.
        if b > a + 1:
            parts += _message(lines, a + 1, b, depth)
    return parts
