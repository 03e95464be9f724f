"""Butane's contents sugar: ``inline``/``local`` resources, ``contents_local``, ``ssh_authorized_keys_local``.

Each hook takes one YAML mapping (already known to be of its kind) and
returns it rewritten into Ignition's terms plus "aliases": for a key of the
result, the YAML path that produced it (``source`` came from ``inline``),
so diagnostics about the output point at the sugar's line.
"""

from __future__ import annotations

import re
from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context

Rewritten = tuple[dict[str, Any], dict[str, ConfigPath]]

TOO_MANY_SOURCES = "only one of the following can be set: inline, local, source"


def resource(value: dict[str, Any], src: ConfigPath, ctx: Context, base: int, can_compress: bool) -> Rewritten:
    """``inline`` text or a ``local`` file becomes a data: URL, gzip-compressed where that is shorter.

    As in Butane, a ``compression`` the user gave is kept and the bytes are
    then not compressed again (a pre-compressed ``local`` file says
    ``compression: gzip``); fcos 1.0.0 (base 1) only percent-encodes.
    """
    keys = ("local", "inline", "source") if base >= 2 else ("inline", "source")
    given = [k for k in keys if k in value]
    sugar = [k for k in given if k != "source"]
    if not sugar:
        return value, {}
    out = {k: v for k, v in value.items() if k not in sugar}
    if len(given) > 1:
        ctx.bad(TOO_MANY_SOURCES, (*src, given[-1]), at_key=True)
        return out, {}
    key = sugar[0]
    at: ConfigPath = (*src, key)
    data = ctx.read_local(value[key], at) if key == "local" else _inline_bytes(value[key], at, ctx)
    if data is None:
        return out, {}
    if src[:2] == ("ignition", "config"):
        _check_embedded_config(data, at, ctx)
    compression = value.get("compression")
    allow_gzip = base >= 2 and can_compress and compression in (None, "")
    encoded = encode_resource(data, allow_gzip=allow_gzip)
    out["source"] = encoded["source"]
    if "compression" in encoded:
        out["compression"] = encoded["compression"]
    return out, {"source": at, "compression": at} if "compression" in encoded else {"source": at}


def _check_embedded_config(data: bytes, at: ConfigPath, ctx: Context) -> None:
    """A config merged or replacing this one, embedded here: checked now, as Butane checks it."""
    from provision.config.pipeline import parse_config

    parsed = parse_config(data, "embedded config")
    for diag in parsed.diagnostics:
        if diag.is_error:
            where = f" (its line {diag.position.line}, column {diag.position.column})" if diag.position else ""
            ctx.bad(f"the embedded config is invalid: {diag.message}{where}", at)
            return


def _inline_bytes(value: object, at: ConfigPath, ctx: Context) -> bytes | None:
    if not isinstance(value, str):
        ctx.bad("inline contents must be a string", at, "quote the text or use a block scalar (|)")
        return None
    return value.encode("utf-8")


def unit_contents(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    """Units and drop-ins: ``contents_local`` reads the unit text from a local file."""
    if "contents_local" not in value:
        return value, {}
    out = {k: v for k, v in value.items() if k != "contents_local"}
    at: ConfigPath = (*src, "contents_local")
    if value.get("contents") is not None and value["contents_local"] is not None:
        ctx.bad("only one of the following can be set: contents, contents_local", at, at_key=True)
        return out, {}
    if value["contents_local"] in (None, ""):
        return out, {}
    text = ctx.read_local_text(value["contents_local"], at)
    if text is not None:
        out["contents"] = text
    return out, {"contents": at}


_NEWLINE = re.compile(r"\r?\n")


def user_keys(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    """Users: every non-empty line of each ``ssh_authorized_keys_local`` file is one more key."""
    if "ssh_authorized_keys_local" not in value:
        return value, {}
    out = {k: v for k, v in value.items() if k != "ssh_authorized_keys_local"}
    at: ConfigPath = (*src, "ssh_authorized_keys_local")
    paths = value["ssh_authorized_keys_local"]
    if paths is None:
        return out, {}
    if not isinstance(paths, list):
        ctx.bad("ssh_authorized_keys_local must be a list of file paths", at)
        return out, {}
    keys = list(out.get("ssh_authorized_keys") or [])
    for i, path in enumerate(paths):
        text = ctx.read_local_text(path, (*at, i))
        if text is not None:
            keys += [line for line in _NEWLINE.split(text) if line]
    if keys:
        out["ssh_authorized_keys"] = keys
    return out, {} if "ssh_authorized_keys" in value else {"ssh_authorized_keys": at}
