"""``with_mount_unit``: a filesystem that should also be mounted on every boot.

provision mounts ``path`` only while provisioning; with ``with_mount_unit:
true`` the translation adds an enabled systemd unit that mounts it at boot
(a ``.swap`` unit for swap), plus one ``.mount`` unit per btrfs subvolume
with a ``path``. The units are rendered by provision.disks.units, the same
code the disks stage documents.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context
from provision.importers.human.resources import Rewritten


def _strings(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def filesystem(value: dict[str, Any], src: ConfigPath, ctx: Context) -> Rewritten:
    if "with_mount_unit" not in value:
        return value, {}
    out = {k: v for k, v in value.items() if k != "with_mount_unit"}
    at: ConfigPath = (*src, "with_mount_unit")
    wanted = value["with_mount_unit"]
    if not isinstance(wanted, bool):
        ctx.bad("with_mount_unit must be true or false", at)
        return out, {}
    if wanted:
        _add_units(value, at, ctx)
    return out, {}


def _add_units(fs: dict[str, Any], at: ConfigPath, ctx: Context) -> None:
    from provision.config import model
    from provision.disks import units

    device, fmt, path = fs.get("device"), fs.get("format"), fs.get("path")
    options = _strings(fs.get("mount_options"))
    if not isinstance(device, str) or options is None:
        return  # the schema reports the bad field
    if fmt == "none":
        ctx.bad("with_mount_unit needs a filesystem to mount; format is none", at, at_key=True)
        return
    if fmt != "swap" and not (isinstance(path, str) and path.startswith("/")):
        ctx.bad("with_mount_unit needs path: the mount point", at,
                "set path to where the filesystem is mounted, e.g. /var/lib/data", at_key=True)
        return
    filesystem = model.Filesystem(device=device, format=fmt if isinstance(fmt, str) else None,
                                  path=path if isinstance(path, str) else None, mount_options=options)
    if fmt == "swap":
        name, contents = units.render_swap_unit(filesystem)
    else:
        name, contents = units.render_filesystem_mount_unit(filesystem)
    ctx.generate(("systemd", "units"), {"name": name, "enabled": True, "contents": contents}, at)
    for sub in fs.get("subvolumes") or []:
        if isinstance(sub, dict) and isinstance(sub.get("name"), str) and isinstance(sub.get("path"), str):
            sub_options = _strings(sub.get("mount_options"))
            if sub_options is None:
                continue
            subvolume = model.Subvolume(name=sub["name"], path=sub["path"], mount_options=sub_options)
            name, contents = units.render_subvolume_mount_unit(filesystem, subvolume)
            ctx.generate(("systemd", "units"), {"name": name, "enabled": True, "contents": contents}, at)
