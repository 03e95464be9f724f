"""Container shorthands, expanded to the structured form of the spec.

The containers stage already turns each ``containers.containers[]`` entry into
the runtime's unit or quadlet, so the sugar here is only notation, as in
``docker run``:

- ``ports: ["8080:80", "127.0.0.1:5353:53/udp", "9000"]`` — ``[host_ip:][host:]container[/protocol]``;
- ``env: ["A=1", "B=two"]`` — a list of ``NAME=value`` (the mapping form works too);
- ``volumes: ["/srv/www:/usr/share/nginx/html:ro", "data:/var/lib/app"]`` — ``source:target[:ro|rw]``.
"""

from __future__ import annotations

import re
from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context
from provision.importers.human.resources import Rewritten

_PORT = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<host>\d+):)?(?P<container>\d+)(?:/(?P<proto>tcp|udp))?$"
)


def _port(text: str, at: ConfigPath, ctx: Context) -> dict[str, Any] | str:
    match = _PORT.match(text.strip())
    if match is None:
        ctx.bad(f"port {text!r} is not [host_ip:][host:]container[/tcp|udp]", at,
                'e.g. "8080:80" publishes container port 80 on host port 8080')
        return text
    out: dict[str, Any] = {"container": int(match["container"])}
    if match["host"]:
        out["host"] = int(match["host"])
    if match["ip"]:
        if not match["host"]:
            ctx.bad(f"port {text!r} names a host address but no host port", at)
        out["host_ip"] = match["ip"].strip("[]")
    if match["proto"]:
        out["protocol"] = match["proto"]
    return out


def _volume(text: str, at: ConfigPath, ctx: Context) -> dict[str, Any] | str:
    parts = text.split(":")
    flag = parts.pop() if len(parts) == 3 else None
    if len(parts) != 2 or not all(parts) or flag not in (None, "ro", "rw"):
        ctx.bad(f"volume {text!r} is not source:target[:ro|rw]", at,
                'e.g. "/srv/www:/usr/share/nginx/html:ro"')
        return text
    out: dict[str, Any] = {"source": parts[0], "target": parts[1]}
    if flag == "ro":
        out["read_only"] = True
    return out


def _env(value: list[Any], at: ConfigPath, ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, item in enumerate(value):
        if not isinstance(item, str) or "=" not in item or item.startswith("="):
            ctx.bad("an env entry is NAME=value", (*at, i))
            continue
        name, _, text = item.partition("=")
        if name in out:
            ctx.bad(f"environment variable {name!r} is set twice", (*at, i))
        out[name] = text
    return out


def container(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    out = dict(value)
    for key, expand in (("ports", _port), ("volumes", _volume)):
        items = value.get(key)
        if isinstance(items, list):
            out[key] = [
                expand(item, (*src, key, i), ctx) if isinstance(item, str) else item
                for i, item in enumerate(items)
            ]
    if isinstance(value.get("env"), list):
        out["env"] = _env(value["env"], (*src, "env"), ctx)
    return out, {}
