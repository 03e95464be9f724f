"""data: URLs (RFC 2397): strict parsing and decoding.

``data:[<type>/<subtype>][;attribute=value]*[;base64],<data>``. As in
Ignition, plain data may hold only URL characters (RFC 2396 "uric": others are
percent-encoded) and base64 data only the base64 alphabet, padding required.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple turns
# each field's annotation into a ForwardRef, compiled at import (see
# tests/test_validate_startup.py).
import re
from typing import NamedTuple

# Compiled once: they run per data: URL, and a large config has thousands.
# Every pattern that scans the data is a single character class or a fixed
# lookahead, so the scan is linear and needs no backtracking stack: a
# repeated alternation such as (?:[...]|%XX)* made re keep state per
# character, 1.8 GiB for a 15 MiB URL.
# RFC 2045 token: printable ASCII except SPACE and tspecials.
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_PARAMETER = re.compile(rf'{_TOKEN}=({_TOKEN}|"[^"]*")')
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Not an RFC 2396 "uric" character (nor the '%' of an escape).
_NOT_URIC = re.compile(r"[^A-Za-z0-9\-_.!~*'();/?:@&=+$,%]")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
# Percent-decoding works on slices of this many characters, so its
# temporary lists stay small whatever the size of the URL.
_DECODE_SLICE = 1 << 20


class DataURLError(ValueError):
    """Why a data: URL is malformed (never contains the URL's data)."""


class DataURL(NamedTuple):
    media_type: str
    parameters: tuple[str, ...]
    base64: bool
    data: bytes


def _percent_decode(text: str, decode: bool) -> bytes:
    if _BAD_PERCENT.search(text):
        raise DataURLError("invalid percent-encoding ('%' must be followed by two hex digits)")
    if _NOT_URIC.search(text):
        raise DataURLError("data contains a character that must be percent-encoded")
    return _unescape(text) if decode else b""


def _unescape(text: str) -> bytes:
    """Percent-decode checked text: ASCII, every '%' followed by two hex digits."""
    # A split rather than urllib.parse (which imports ipaddress: ~4 ms on
    # every validate that checks an inline hash), slice by slice for memory.
    import binascii

    out = bytearray()
    start = 0
    while start < len(text):
        end = min(start + _DECODE_SLICE, len(text))
        if end < len(text):  # never cut an escape in two
            cut = text.rfind("%", max(start, end - 2), end)
            end = end if cut == -1 else cut
        head, *escaped = text[start:end].split("%")
        out += head.encode("ascii")
        values = binascii.a2b_hex("".join([part[:2] for part in escaped]))
        if all(len(part) == 2 for part in escaped):  # fully escaped binary: the fast path
            out += values
        else:
            for value, part in zip(values, escaped, strict=True):
                out.append(value)
                out += part[2:].encode("ascii")
        start = end
    return bytes(out)


def parse_data_url(url: str, *, decode: bool = True) -> DataURL:
    """Parse a data: URL; with ``decode=False`` only check it (``data`` is then empty)."""
    scheme, colon, rest = url.partition(":")
    if not colon or scheme.lower() != "data":
        raise DataURLError("not a data: URL")
    if scheme != "data":
        raise DataURLError("write the data: prefix in lower case")
    meta, comma, payload = rest.partition(",")
    if not comma:
        raise DataURLError("data URL has no ',' separating the media type from the data")
    params = meta.split(";")
    is_base64 = len(params) > 1 and params[-1] == "base64"
    if is_base64:
        params.pop()
    media_type, parameters = params[0], tuple(params[1:])
    if media_type and not _MEDIA_TYPE.fullmatch(media_type):
        raise DataURLError("data URL media type is not of the form type/subtype")
    for parameter in parameters:
        if not _PARAMETER.fullmatch(parameter):
            raise DataURLError("data URL parameter is not of the form attribute=value")
    raw = _decode_base64(payload, decode) if is_base64 else _percent_decode(payload, decode)
    return DataURL(media_type.lower() or "text/plain", parameters, is_base64, raw)


def _decode_base64(text: str, decode: bool) -> bytes:
    import binascii

    # The alphabet, then at most two '=' and only at the end, then whole
    # quanta. Whole quanta are checked for decoding too: binascii's strict
    # mode accepts a stray "=" after a whole quantum ("0000="), which Go's
    # decoder (Ignition's) rejects.
    body = text.rstrip("=")
    if len(text) - len(body) > 2 or _NOT_BASE64.search(body) or len(text) % 4:
        raise DataURLError("data URL payload is not valid base64")
    if not decode:
        return b""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise DataURLError("data URL payload is not valid base64") from None
