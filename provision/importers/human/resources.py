"""Contents sugar: ``inline`` text and ``local`` files become data: URLs; ``contents_local`` for units."""

from __future__ import annotations

from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context

Rewritten = tuple[dict[str, Any], dict[str, ConfigPath]]


def resource(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    """A resource with ``inline`` or ``local``: the smallest data: URL of those bytes."""
    given = [key for key in ("inline", "local") if key in value]
    if not given:
        return value, {}
    out = {k: v for k, v in value.items() if k not in given}
    key = given[-1]
    at: ConfigPath = (*src, key)
    if len(given) > 1:
        ctx.bad("set either inline or local, not both", at, at_key=True)
        return out, {}
    for clash in ("source", "compression"):
        if clash in value:
            why = "is chosen by transpile" if clash == "compression" else "comes from it"
            ctx.bad(f"{key} and {clash} cannot both be set: the {clash} {why}", (*src, clash), at_key=True)
            return out, {}
    data = _bytes_of(key, value[key], at, ctx)
    if data is None:
        return out, {}
    out.update(encode_resource(data))
    return out, {"source": at, "compression": at}


def _bytes_of(key: str, value: object, at: ConfigPath, ctx: Context) -> bytes | None:
    if key == "local":
        return ctx.read_local(value, at)
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
    if "contents" in value:
        ctx.bad("set either contents or contents_local, not both", at, at_key=True)
        return out, {}
    text = ctx.read_local_text(value["contents_local"], at)
    if text is not None:
        out["contents"] = text
    return out, {"contents": at}
