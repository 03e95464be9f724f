"""Account sugar: ``password: {plain: ...}`` hashed now, ``ssh_authorized_keys_local`` read from files."""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context
from provision.importers.human.resources import Rewritten

_PLAIN_HINT = (
    "the plain text stays in this file and wherever it is copied; hash it once "
    "(e.g. mkpasswd -m sha-512) and set password_hash instead"
)


def hash_password(plain: str) -> str:
    """A crypt(3) hash: yescrypt when passlib has it, else sha512-crypt."""
    import passlib.hash

    scheme = getattr(passlib.hash, "yescrypt", None) or passlib.hash.sha512_crypt
    hashed: str = scheme.hash(plain)
    return hashed


def password(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    """Users and groups: ``password: {plain: ...}`` becomes ``password_hash``."""
    if "password" not in value:
        return value, {}
    out = {k: v for k, v in value.items() if k != "password"}
    at: ConfigPath = (*src, "password")
    given = value["password"]
    if "password_hash" in value:
        ctx.bad("set either password or password_hash, not both", at, at_key=True)
        return out, {}
    if not isinstance(given, dict) or set(given) != {"plain"} or not isinstance(given["plain"], str):
        ctx.bad("password must be a mapping with one key, plain: a string", at,
                "or set password_hash to a crypt(3) hash")
        return out, {}
    # Never echo the password: the message names only where it is.
    ctx.warn("plain-text password in the config: hashed now, but plain text does not belong in configs",
             (*at, "plain"), _PLAIN_HINT, at_key=True)
    out["password_hash"] = hash_password(given["plain"])
    return out, {"password_hash": at}


def _key_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def user(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    out, aliases = password(value, src, ctx)
    if "ssh_authorized_keys_local" not in out:
        return out, aliases
    files = out.pop("ssh_authorized_keys_local")
    at: ConfigPath = (*src, "ssh_authorized_keys_local")
    if not isinstance(files, list):
        ctx.bad("ssh_authorized_keys_local must be a list of local file names", at)
        return out, aliases
    keys = out.get("ssh_authorized_keys", [])
    if not isinstance(keys, list):
        return out, aliases  # the schema reports it
    keys = list(keys)
    for i, name in enumerate(files):
        text = ctx.read_local_text(name, (*at, i))
        if text is not None:
            keys += [k for k in _key_lines(text) if k not in keys]
    out["ssh_authorized_keys"] = keys
    if "ssh_authorized_keys" not in value:
        aliases["ssh_authorized_keys"] = at
    return out, aliases
