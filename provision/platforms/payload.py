"""Undo the transport encodings platforms put on user data.

A platform may say how its data is encoded (GCE's ``user-data-encoding``,
VMware's ``.encoding`` key, Azure and Oracle always base64); we undo exactly
that. Afterwards gzip is recognised by its magic bytes, since several clouds
let users upload compressed user data without saying so. Base64 is never
guessed: a config that happens to be valid base64 must not be mangled.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import zlib

from provision.errors import FetchError

GZIP_MAGIC = b"\x1f\x8b"
# A config is small; refuse decompression bombs long before memory runs out.
MAX_DECODED_BYTES = 64 * 1024 * 1024

_STEPS: dict[str, tuple[str, ...]] = {
    "": (),
    "base64": ("base64",),
    "b64": ("base64",),
    "gzip": ("gzip",),
    "gz": ("gzip",),
    # Ignition's spelling names the outer layer last: base64 of gzip data.
    "gzip+base64": ("base64", "gzip"),
    "gz+base64": ("base64", "gzip"),
    "gzip+b64": ("base64", "gzip"),
    "gz+b64": ("base64", "gzip"),
    # Declared by a platform (CloudCIX, as cloud-init reads it): base64 when the
    # whole payload is valid base64, else the bytes as they are. Never assumed.
    "maybe-base64": ("maybe-base64",),
}

ENCODINGS = tuple(name for name in _STEPS if name)


def _unbase64(data: bytes, origin: str) -> bytes:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FetchError(f"{origin}: data is not valid base64") from exc


def gunzip(data: bytes, origin: str) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise FetchError(f"{origin}: gzip data is corrupt ({exc})") from exc
    if decompressor.unconsumed_tail:
        raise FetchError(f"{origin}: decompressed data exceeds {MAX_DECODED_BYTES} bytes")
    if not decompressor.eof:
        raise FetchError(f"{origin}: gzip data is truncated")
    return out


def decode_payload(data: bytes, encoding: str | None, origin: str) -> bytes:
    """``data`` with ``encoding`` undone; then, unless that was gzip already,
    gunzipped if it starts with gzip's magic bytes (no config starts with them)."""
    name = (encoding or "").strip().lower()
    if name not in _STEPS:
        raise FetchError(
            f"{origin}: unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})"
        )
    for step in _STEPS[name]:
        if step == "maybe-base64":
            with contextlib.suppress(FetchError):
                data = _unbase64(data, origin)
            continue
        data = _unbase64(data, origin) if step == "base64" else gunzip(data, origin)
    if "gzip" not in _STEPS[name] and data.startswith(GZIP_MAGIC):
        data = gunzip(data, origin)
    return data
