"""write_files: content in any cloud-init encoding, permissions, owner, append, defer.

cloud-init overwrites existing files, so translated files carry
``overwrite: true``. ``defer`` needs nothing: provision always writes files
after users exist, so owners may name users created by the same document.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

_BASE64 = {"b64", "base64"}
_GZIP = {"gz", "gzip"}
_GZIP_BASE64 = {"gz+b64", "gz+base64", "gzip+b64", "gzip+base64"}
_TEXT = {"text/plain", ""}
_KEYS = {"path", "content", "encoding", "permissions", "owner", "append", "defer", "source"}


def _decode(ctx: Context, content: Any, encoding: str, where: ConfigPath) -> bytes | None:
    raw = content if isinstance(content, bytes) else str(content).encode()
    try:
        if encoding in _TEXT:
            return raw
        if encoding in _BASE64:
            return base64.b64decode(raw, validate=False)
        if encoding in _GZIP:
            return gzip.decompress(raw)
        if encoding in _GZIP_BASE64:
            return gzip.decompress(base64.b64decode(raw, validate=False))
    except (binascii.Error, OSError, EOFError, zlib.error):
        ctx.bad(f"content is not valid {encoding} data", (*where, "content"))
        return None
    ctx.bad(f"unknown encoding {encoding!r}", (*where, "encoding"),
            hint="use b64, gzip, gz+b64 or text/plain")
    return None


def _mode(ctx: Context, value: Any, where: ConfigPath) -> int | None:
    if value is None:
        return 0o644
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text, 8)
    except ValueError:
        ctx.bad("permissions must be an octal string such as '0644'", (*where, "permissions"))
        return None


def _owner(entry: dict[str, Any], value: Any) -> None:
    user, _, group = str(value or "root:root").partition(":")
    if user:
        entry["user"] = {"name": user}
    if group:
        entry["group"] = {"name": group}


def _translate_one(ctx: Context, item: Any, where: ConfigPath) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        ctx.bad("a write_files entry needs a path", where)
        return
    for key in item:
        if key not in _KEYS:
            ctx.unsupported(f"write_files key {key!r}", (*where, key))
    if "source" in item:
        ctx.unsupported("write_files source", (*where, "source"), "inline the content, or use a provision config")
        return
    data = _decode(ctx, item.get("content", ""), str(item.get("encoding") or "").lower(), where)
    mode = _mode(ctx, item.get("permissions"), where)
    if data is None or mode is None:
        return
    entry: dict[str, Any] = {"path": item["path"], "mode": mode}
    if item.get("append"):
        entry["append"] = [encode_resource(data)]
    else:
        entry["overwrite"] = True
        entry["contents"] = encode_resource(data)
    _owner(entry, item.get("owner"))
    index = ctx.add(("storage", "files"), entry, where)
    for spec_key, source_key in (("path", "path"), ("mode", "permissions"), ("contents", "content"),
                                 ("append", "content"), ("user", "owner"), ("group", "owner")):
        if source_key in item:
            ctx.origins.record(("storage", "files", index, spec_key), (*where, source_key))


def translate_write_files(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, list):
        ctx.bad("write_files must be a list", where)
        return
    for i, item in enumerate(value):
        _translate_one(ctx, item, (*where, i))
