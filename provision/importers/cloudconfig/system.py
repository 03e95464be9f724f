"""hostname/fqdn, timezone and ssh_pwauth, written as files and links."""

from __future__ import annotations

import re
from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")


def _file(ctx: Context, path: str, text: str, where: ConfigPath, mode: int = 0o644) -> None:
    ctx.add(("storage", "files"), {"path": path, "mode": mode, "overwrite": True,
                                   "contents": encode_resource(text.encode())}, where)


def translate_hostname(ctx: Context, value: Any, where: ConfigPath) -> None:
    key = where[0]
    if key == "prefer_fqdn_over_hostname":
        ctx.prefer_fqdn = bool(value)
        return
    doc = ctx.document.value
    name = str(value)
    if key == "hostname" and ctx.prefer_fqdn and isinstance(doc.get("fqdn"), str):
        name, where = doc["fqdn"], ("fqdn",)
    elif key == "fqdn" and not ctx.prefer_fqdn:
        name = name.split(".", 1)[0]
    if not _HOSTNAME.match(name) or len(name) > 253:
        ctx.bad(f"{where[0]} is not a valid host name", where)
        return
    _file(ctx, "/etc/hostname", name + "\n", where)


def translate_timezone(ctx: Context, value: Any, where: ConfigPath) -> None:
    zone = str(value)
    if not _TIMEZONE.match(zone) or ".." in zone:
        ctx.bad("timezone must be a zone name such as Europe/Berlin", where)
        return
    ctx.add(("storage", "links"), {"path": "/etc/localtime", "overwrite": True,
                                   "target": f"/usr/share/zoneinfo/{zone}"}, where)
    _file(ctx, "/etc/timezone", zone + "\n", where)


def translate_ssh_pwauth(ctx: Context, value: Any, where: ConfigPath) -> None:
    if value == "unchanged":
        return
    if not isinstance(value, bool):
        ctx.bad("ssh_pwauth must be true, false or 'unchanged'", where)
        return
    setting = "yes" if value else "no"
    _file(ctx, "/etc/ssh/sshd_config.d/50-provision-pwauth.conf",
          f"PasswordAuthentication {setting}\n", where)
