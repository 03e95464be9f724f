"""Encode bytes as the smallest data: URL resource (RFC 2397).

Parsing lives in provision.config.checks.dataurl."""

from __future__ import annotations

import base64
import gzip
import urllib.parse
from typing import Any

# Bytes that may stand unescaped in a data URL's data part.
_SAFE = "/:=@,;+!*'()~-._ "


def encode_resource(data: bytes, allow_gzip: bool = True) -> dict[str, Any]:
    """A resource dict carrying ``data``: percent-encoded, base64 or gzip+base64, whichever is shortest.

    ``allow_gzip=False`` where the resource cannot say ``compression`` (or already does).
    """
    percent = "data:," + urllib.parse.quote(data, safe=_SAFE).replace(" ", "%20")
    b64 = "data:;base64," + base64.b64encode(data).decode()
    best: dict[str, Any] = {"source": min(percent, b64, key=len)}
    if allow_gzip and len(data) > 64:
        packed = "data:;base64," + base64.b64encode(gzip.compress(data, mtime=0)).decode()
        if len(packed) < len(best["source"]):
            best = {"source": packed, "compression": "gzip"}
    return best
