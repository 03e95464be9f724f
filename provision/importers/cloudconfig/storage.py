"""mounts, disk_setup, fs_setup and device_aliases.

- mounts become lines appended to /etc/fstab (as cloud-init does), with the
  device and mount point fields octal-escaped (``\\040`` for a space) and the
  mount points created;
- disk_setup becomes GPT partitions (provision writes only GPT; an MBR
  request is translated to GPT, with a warning). A layout in percentages
  other than "the whole disk" cannot be expressed without knowing the disk's
  size, so it is reported rather than guessed;
- fs_setup becomes filesystems.

Device names follow cloud-init (cc_mounts.sanitize_devname, cc_disk_setup):
``host:/export`` (NFS, gluster...) and ``//host/share`` (CIFS) are network
sources, kept as written; ``UUID=``/``LABEL=`` too; a kernel name (``sdb``,
``xvdf``, ``nvme0n1``) gets ``/dev/``; ``NAME.N`` means partition N of NAME,
named as the kernel and udev name partitions (``sdb.1`` -> ``/dev/sdb1``,
``nvme0n1.1`` -> ``/dev/nvme0n1p1``, ``/dev/disk/by-id/X.1`` ->
``/dev/disk/by-id/X-part1``); ``device_aliases`` names are replaced first.
cloud-init resolves these against the devices present at boot; provision
translates before the machine exists, by the same naming rules. Names only a
cloud's metadata can resolve (``ephemeral0``, ``swap``, ``ami``, ``root``,
``ebsN``) are reported as unsupported.
"""

from __future__ import annotations

import re
from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

_FS_KEYS = {"label", "filesystem", "device", "partition", "overwrite", "extra_opts", "cmd", "replace_fs"}
_FORMATS = {"ext4": "ext4", "xfs": "xfs", "btrfs": "btrfs", "vfat": "vfat", "fat": "vfat", "swap": "swap"}
# cloud-init's DEVICE_NAME_FILTER, widened to the other kernel block device names.
_KERNEL_NAME = re.compile(
    r"^(x?[shv]d[a-z]+[0-9]*|sr[0-9]+|nvme[0-9]+n[0-9]+(p[0-9]+)?|mmcblk[0-9]+(p[0-9]+)?"
    r"|md[0-9]+(p[0-9]+)?|loop[0-9]+(p[0-9]+)?|dm-[0-9]+)$"
)
_NETWORK = re.compile(r"^.+:.*")  # cloud-init's NETWORK_NAME_FILTER: server:/path
_META = re.compile(r"^(ami|root|swap|ephemeral[0-9]*|ebs[0-9]*)$")
# Links that name a filesystem or partition (which has no partitions); udev names
# a partition of any other /dev/disk link (by-id, by-path, azure...) LINK-partN.
_FILESYSTEM_LINKS = ("/dev/disk/by-uuid/", "/dev/disk/by-label/", "/dev/disk/by-partuuid/",
                     "/dev/disk/by-partlabel/")
_FSTAB_ESCAPES = (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012"))


def escape_fstab_field(value: str) -> str:
    """Octal escapes as fstab(5) reads them; the backslash first, so it is not escaped twice."""
    for char, escaped in _FSTAB_ESCAPES:
        value = value.replace(char, escaped)
    return value


def is_network_source(name: str) -> bool:
    """host:/export (NFS, gluster...) or //host/share (CIFS).

    Unlike cloud-init's filter, a path (``/dev/disk/by-path/pci-0000:00:05.0``)
    is never taken for a host, colons or not.
    """
    if name.startswith("//"):
        return True
    return not name.startswith("/") and "=" not in name and bool(_NETWORK.match(name))


def partition_path(disk: str, number: str | int) -> str | None:
    """Partition ``number`` of ``disk`` as the kernel (sdb1, nvme0n1p1) or udev (-part1) name it.

    Partition 0 is the whole disk (cloud-init's ``ephemeral0.0`` on a disk without a table).
    """
    if str(number) == "0":
        return disk
    if disk.startswith(_FILESYSTEM_LINKS):
        return None
    if disk.startswith("/dev/disk/"):
        return f"{disk}-part{number}"
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def _device(ctx: Context, name: Any, where: ConfigPath, mount: bool = False) -> str | None:
    """The device path for a cloud-config device name; None (reported) if it has none."""
    text = str(name)
    if "=" in text or (mount and is_network_source(text)):
        return text
    base, number = text, None
    head, dot, tail = text.rpartition(".")
    if dot and tail.isdigit() and head:
        base, number = head, tail
    alias = ctx.device_aliases.get(base)
    if alias is not None:
        base = alias
    if _META.match(base):
        ctx.unsupported(f"the cloud-specific device name {base!r}", where,
                        "only the cloud's metadata can say which disk it is; name the device by path, "
                        "or map the name with device_aliases")
        return None
    if not base.startswith("/"):
        if not _KERNEL_NAME.match(base):
            if mount:
                return text  # tmpfs, proc, none...: not a device, written as is (as cloud-init does)
            ctx.unsupported(f"the device name {base!r}", where, "name the device by path, e.g. /dev/vdb")
            return None
        base = "/dev/" + base
    if number is None:
        return base
    found = partition_path(base, number)
    if found is None:
        ctx.unsupported(f"partition {number} of {base}", where,
                        "a by-uuid or by-label link names a filesystem, which has no partitions")
    return found


def note_device_aliases(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        ctx.bad("device_aliases must map names to device paths", where)
        return
    ctx.device_aliases = {str(k): v for k, v in value.items()}


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
        # cloud-init: a null field (or a missing one) takes mount_default_fields' value.
        given = [None if v is None else str(v) for v in entry[:6]]
        fields = [f if f is not None else ctx.mount_defaults[k] for k, f in enumerate(given)]
        fields += ctx.mount_defaults[len(fields):]
        if fields[1] is None:
            ctx.unsupported("removing an fstab entry", (*where, i))
            continue
        device = _device(ctx, fields[0], (*where, i, 0), mount=True)
        if device is None:
            continue
        if is_network_source(device) and given[3:4] in ([], [None]) and fields[3] is not None \
                and "_netdev" not in fields[3].split(","):
            # cloud-init's default options carry _netdev: the mount waits for the network.
            fields[3] += ",_netdev"
        fields[0] = device
        lines.append("\t".join([escape_fstab_field(device), escape_fstab_field(str(fields[1])),
                                *(str(f) for f in fields[2:])]))
        mount_point = str(fields[1])
        wanted = mount_point.startswith("/") and fields[2] != "swap"
        if wanted and ctx.find(("storage", "directories"), "path", mount_point) is None:
            ctx.add(("storage", "directories"), {"path": mount_point, "mode": 0o755}, (*where, i, 1))
    if lines:
        ctx.add(("storage", "files"), {"path": "/etc/fstab", "append": [
            encode_resource(("\n".join(lines) + "\n").encode())]}, where)


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
        for key in settings:
            if key not in ("table_type", "layout", "overwrite"):
                ctx.unsupported(f"disk_setup key {key!r}", (*source, key))
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


_PARTITION_NAME = re.compile(r"^/dev/(x?[shv]d[a-z]+[0-9]+|(nvme[0-9]+n[0-9]+|mmcblk[0-9]+|md[0-9]+|loop[0-9]+)p[0-9]+)$"
                             r"|-part[0-9]+$")


def _first_free_partition(ctx: Context, device: str, where: ConfigPath) -> str | None:
    """cloud-init's ``partition: any`` (its default) and ``auto``, decided before the disk exists.

    cloud-init looks at the disk when it runs: the first partition without a
    filesystem, else the bare disk if it has no partitions. A disk this
    document partitions gets fresh partitions, so that is partition 1; a
    device that is itself a partition is used as it is; for any other disk
    the answer depends on what the image has on it, so the whole device is
    used and the difference said.
    """
    disk = ctx.find(("storage", "disks"), "device", device)
    if disk is not None and disk.get("partitions"):
        return partition_path(device, 1)
    if _PARTITION_NAME.search(device):
        return device
    ctx.warn(f"the filesystem goes on the whole device {device}; cloud-init would use the disk's first "
             "partition without a filesystem if the disk has partitions when it runs",
             where, hint="say which: partition: none (the whole device) or partition: N")
    return device


def _has_partition_suffix(name: Any) -> bool:
    head, dot, tail = str(name).rpartition(".")
    return bool(dot and head and tail.isdigit())


def translate_fs_setup(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, list):
        ctx.bad("fs_setup must be a list", where)
        return
    for i, item in enumerate(value):
        source = (*where, i)
        if not isinstance(item, dict) or "device" not in item:
            ctx.bad("an fs_setup entry needs a device", source)
            continue
        for key in item:
            if key in ("cmd", "replace_fs") or key not in _FS_KEYS:
                ctx.unsupported(f"fs_setup {key}", (*source, key))
        if "cmd" in item:
            continue  # the command replaces mkfs: provision's own mkfs would make something else
        fmt = _FORMATS.get(str(item.get("filesystem", "")).lower())
        if fmt is None:
            ctx.unsupported(f"filesystem {item.get('filesystem')!r}", (*source, "filesystem"),
                            "use ext4, xfs, btrfs, vfat or swap")
            continue
        device = _device(ctx, item["device"], (*source, "device"))
        if device is None:
            continue
        partition = item.get("partition")
        if isinstance(partition, str) and partition.isdigit():
            partition = int(partition)
        if isinstance(partition, int) and not isinstance(partition, bool):
            if _has_partition_suffix(item["device"]):
                ctx.warn("the partition in the dotted device name overrides the partition key (as in cloud-init)",
                         (*source, "partition"))
            else:
                numbered = partition_path(device, partition)
                if numbered is None:
                    ctx.unsupported(f"partition {partition} of {device}", (*source, "partition"))
                    continue
                device = numbered
        elif isinstance(partition, str) and partition.lower() == "none":
            pass  # cloud-init: the whole device
        elif partition is None and _has_partition_suffix(item["device"]):
            pass  # NAME.N named the partition
        elif partition is None or str(partition).lower() in ("auto", "any"):
            found = _first_free_partition(ctx, device, (*source, "partition") if partition else source)
            if found is None:
                continue
            device = found
        else:
            ctx.bad(f"partition must be a number, none, auto or any, not {partition!r}", (*source, "partition"))
            continue
        entry: dict[str, Any] = {"device": device, "format": fmt,
                                 "wipeFilesystem": bool(item.get("overwrite", False))}
        if item.get("label"):
            entry["label"] = str(item["label"])
        options = item.get("extra_opts")
        if options:
            entry["options"] = options.split() if isinstance(options, str) else [str(o) for o in options]
        ctx.add(("storage", "filesystems"), entry, source)
