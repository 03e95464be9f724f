"""growpart and resize_rootfs, as ``storage.grow`` (spec 1.1.0).

cloud-init grows ``/`` by default (growpart mode ``auto``); under provision
that default belongs to the image (its ``grow_root`` setting), so a document
only changes it: ``mode: off`` (or ``false``) grows nothing, ``devices``
names what to grow, ``resize_rootfs: false`` grows partitions but not what
they hold.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

_MODES = {"auto", "growpart", "sfdisk", "gpart", "off"}


def _grow_section(ctx: Context, where: ConfigPath) -> dict[str, Any]:
    storage = ctx.spec.setdefault("storage", {})
    if "grow" not in storage:
        storage["grow"] = {}
        ctx.origins.record(("storage", "grow"), where)
    section: dict[str, Any] = storage["grow"]
    return section


def translate_growpart(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, dict):
        ctx.bad("growpart must be a mapping (mode, devices, ignore_growroot_disabled)", where)
        return
    for key in value:
        if key not in ("mode", "devices", "ignore_growroot_disabled"):
            ctx.unsupported(f"growpart key {key!r}", (*where, key))
    mode = value.get("mode", "auto")
    if mode is False:
        mode = "off"
    if mode not in _MODES:
        ctx.bad(f"growpart mode must be one of {', '.join(sorted(_MODES))} or false", (*where, "mode"))
        return
    devices = value.get("devices", ["/"])
    if not isinstance(devices, list) or not all(isinstance(d, str) and d for d in devices):
        ctx.bad("growpart devices must be a list of mount points or device paths", (*where, "devices"))
        return
    if mode == "gpart":
        ctx.warn("growpart mode gpart is FreeBSD's; partitions are grown with sfdisk",
                 (*where, "mode"))
    _grow_section(ctx, where)["devices"] = [] if mode == "off" else list(devices)


def translate_resize_rootfs(ctx: Context, value: Any, where: ConfigPath) -> None:
    if value not in (True, False, "noblock"):
        ctx.bad("resize_rootfs must be true, false or noblock", where)
        return
    if value is False:
        _grow_section(ctx, where)["resizeFilesystems"] = False


_PHONE_HOME_FIELDS = ("pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "pub_key_dsa",
                      "instance_id", "hostname", "fqdn")


def translate_phone_home(ctx: Context, value: Any, where: ConfigPath) -> None:
    """phone_home: {url, post: all | [fields], tries} -> provision.phoneHome."""
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
        ctx.bad("phone_home needs a url", where)
        return
    for key in value:
        if key not in ("url", "post", "tries"):
            ctx.unsupported(f"phone_home key {key!r}", (*where, key))
    entry: dict[str, Any] = {"url": value["url"]}
    post = value.get("post", "all")
    if post != "all":
        if not isinstance(post, list) or not all(p in _PHONE_HOME_FIELDS for p in post):
            ctx.bad(f"phone_home post must be 'all' or a list of {', '.join(_PHONE_HOME_FIELDS)}",
                    (*where, "post"))
            return
        entry["post"] = list(post)
    if "tries" in value:
        tries = value["tries"]
        if isinstance(tries, str) and tries.isdigit():
            tries = int(tries)
        if not isinstance(tries, int) or isinstance(tries, bool) or not 1 <= tries <= 100:
            ctx.bad("phone_home tries must be a number from 1 to 100", (*where, "tries"))
            return
        entry["tries"] = tries
    ctx.spec.setdefault("provision", {})["phoneHome"] = entry
    ctx.origins.record(("provision", "phoneHome"), where)
