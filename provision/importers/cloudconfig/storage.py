"""mounts, disk_setup and fs_setup.

- mounts become lines appended to /etc/fstab (as cloud-init does), with the
  mount points created;
- disk_setup becomes GPT partitions (provision writes only GPT; an MBR
  request is translated to GPT, with a warning). A layout in percentages
  other than "the whole disk" cannot be expressed without knowing the disk's
  size, so it is reported rather than guessed;
- fs_setup becomes filesystems.
Devices named by cloud-init's cloud-specific aliases (ephemeral0, swap) are
reported as unsupported.
"""

from __future__ import annotations

from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

_FORMATS = {"ext4": "ext4", "xfs": "xfs", "btrfs": "btrfs", "vfat": "vfat", "fat": "vfat", "swap": "swap"}


def _device(ctx: Context, name: Any, where: ConfigPath) -> str | None:
    text = str(name)
    if text.startswith("ephemeral") or text == "swap":
        ctx.unsupported(f"the cloud-specific device alias {text!r}", where, "name the device by path")
        return None
    if text.startswith("/") or "=" in text:
        return text
    return "/dev/" + text


def note_mount_defaults(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, list) or len(value) != 6:
        ctx.bad("mount_default_fields must be a list of six fields", where)
        return
    ctx.mount_defaults = [None if v in (None, "None") else str(v) for v in value]


def translate_mounts(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, list):
        ctx.bad("mounts must be a list", where)
        return
    lines = []
    for i, entry in enumerate(value):
        if not isinstance(entry, list) or not entry:
            ctx.bad("a mount must be a list of fstab fields", (*where, i))
            continue
        fields = [None if v is None else str(v) for v in entry[:6]]
        fields += ctx.mount_defaults[len(fields):]
        if fields[1] is None:
            ctx.unsupported("removing an fstab entry", (*where, i))
            continue
        device = _device(ctx, fields[0], (*where, i, 0))
        if device is None:
            continue
        fields[0] = device
        lines.append("\t".join(str(f) for f in fields))
        mount_point = str(fields[1])
        wanted = mount_point.startswith("/") and fields[2] != "swap"
        if wanted and ctx.find(("storage", "directories"), "path", mount_point) is None:
            ctx.add(("storage", "directories"), {"path": mount_point, "mode": 0o755}, (*where, i, 1))
    if lines:
        ctx.add(("storage", "files"), {"path": "/etc/fstab", "append": [
            encode_resource(("\n".join(lines) + "\n").encode())]}, where)


def _partition_device(disk: str, number: int) -> str:
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def _layout(ctx: Context, layout: Any, where: ConfigPath) -> list[dict[str, Any]] | None:
    if layout is True:
        return [{"number": 1, "sizeMiB": 0}]
    if layout in (False, None):
        return []
    if isinstance(layout, list) and len(layout) == 1:
        part = layout[0]
        size = part[0] if isinstance(part, list) and part else part
        if size == 100:
            return [{"number": 1, "sizeMiB": 0}]
    ctx.unsupported("a disk_setup layout in percentages", (*where, "layout"),
                    "sizes depend on the disk; write storage.disks partitions with sizeMiB instead")
    return None


def translate_disk_setup(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, dict):
        ctx.bad("disk_setup must map devices to their settings", where)
        return
    for name, settings in value.items():
        source = (*where, name)
        device = _device(ctx, name, source)
        if device is None:
            continue
        if not isinstance(settings, dict):
            ctx.bad("disk settings must be a mapping", source)
            continue
        table = str(settings.get("table_type", "mbr")).lower()
        if table != "gpt":
            ctx.warn("provision writes GPT partition tables; this disk gets GPT instead of MBR",
                     (*source, "table_type") if "table_type" in settings else source,
                     hint="set table_type: gpt to silence this")
        partitions = _layout(ctx, settings.get("layout", False), source)
        if partitions is None:
            continue
        ctx.add(("storage", "disks"), {"device": device, "wipeTable": bool(settings.get("overwrite", False)),
                                       "partitions": partitions}, source)


def translate_fs_setup(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, list):
        ctx.bad("fs_setup must be a list", where)
        return
    for i, item in enumerate(value):
        source = (*where, i)
        if not isinstance(item, dict) or "device" not in item:
            ctx.bad("an fs_setup entry needs a device", source)
            continue
        for key in ("cmd", "replace_fs"):
            if key in item:
                ctx.unsupported(f"fs_setup {key}", (*source, key))
        fmt = _FORMATS.get(str(item.get("filesystem", "")).lower())
        if fmt is None:
            ctx.unsupported(f"filesystem {item.get('filesystem')!r}", (*source, "filesystem"),
                            "use ext4, xfs, btrfs, vfat or swap")
            continue
        device = _device(ctx, item["device"], (*source, "device"))
        if device is None:
            continue
        partition = item.get("partition")
        if isinstance(partition, int) and not isinstance(partition, bool):
            device = _partition_device(device, partition)
        elif partition in ("auto", "any"):
            ctx.unsupported(f"partition: {partition}", (*source, "partition"), "give the partition number")
            continue
        entry: dict[str, Any] = {"device": device, "format": fmt,
                                 "wipeFilesystem": bool(item.get("overwrite", False))}
        if item.get("label"):
            entry["label"] = str(item["label"])
        options = item.get("extra_opts")
        if options:
            entry["options"] = options.split() if isinstance(options, str) else [str(o) for o in options]
        ctx.add(("storage", "filesystems"), entry, source)
