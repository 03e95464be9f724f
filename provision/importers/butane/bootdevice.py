"""Fedora CoreOS ``boot_device`` (LUKS root, mirrored boot disk) and ``grub.users``.

The storage Butane renders for them, fact for fact (coreos/butane
config/fcos/v1_*/translate.go): a mirrored boot disk is re-partitioned on
each device (BIOS boot or PReP or a reserved partition, an ESP or a
reserved one, ``boot-N`` of 384 MiB, ``root-N`` filling the rest), the boot
and root partitions become RAID1 arrays ``md-boot`` (superblock at the end,
so firmware reading one disk sees a plain filesystem) and ``md-root``; an
encrypted root is a LUKS volume ``root`` on the root partition (or
``md-root``) bound with clevis, reformatted as xfs ``root``. The user's own
entries for the same devices are merged over these, as Butane merges them.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context

_RESERVED = "8DA63339-0007-60C0-C436-083AC8230908"
_BIOS = "21686148-6449-6E6F-744E-656564454649"
_PREP = "9E1A2D38-C612-4316-AA26-8B49521E5A8B"
_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

_LAYOUTS_LEGACY = ("aarch64", "ppc64le", "x86_64")
_LAYOUTS = ("aarch64", "ppc64le", "s390x-eckd", "s390x-virt", "s390x-zfcp", "x86_64")
ROOT_DISK = "/dev/disk/by-id/coreos-boot-disk"

Rendered = list[tuple[tuple[str, ...], dict[str, Any], ConfigPath]]  # (section, entry, YAML source)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tangs(luks: dict[str, Any]) -> list[Any]:
    tang = luks.get("tang")
    return tang if isinstance(tang, list) else []


def _keys_allowed(fcos: int) -> dict[str, tuple[str, ...]]:
    luks = ["tang", "threshold", "tpm2"]
    if fcos >= 5:
        luks.append("discard")
    if fcos >= 6:
        luks += ["device", "cex"]
    return {"boot_device": ("layout", "luks", "mirror"), "luks": tuple(luks), "mirror": ("devices",)}


def _mapping(value: object, at: ConfigPath, ctx: Context, allowed: tuple[str, ...]) -> dict[str, Any] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.bad("must be a mapping", at)
        return None
    for key in value:
        if key not in allowed:
            ctx.bad(f"unknown key {key!r}", (*at, key), "known keys here: " + ", ".join(allowed), at_key=True)
    return value


def boot_device(value: object, ctx: Context, fcos: int) -> Rendered:
    """The storage entries ``boot_device`` stands for (empty after reporting any error)."""
    at: ConfigPath = ("boot_device",)
    allowed = _keys_allowed(fcos)
    device = _mapping(value, at, ctx, allowed["boot_device"])
    if device is None:
        return []
    luks = _mapping(device.get("luks"), (*at, "luks"), ctx, allowed["luks"])
    mirror = _mapping(device.get("mirror"), (*at, "mirror"), ctx, allowed["mirror"])
    if luks is None or mirror is None:
        return []
    layout = device.get("layout")
    devices = mirror.get("devices") or []
    if not _valid(device, layout, luks, devices, ctx, fcos):
        return []
    cex = _dict(luks.get("cex"))
    want_luks = luks.get("tpm2") is True or bool(luks.get("tang")) or cex.get("enabled") is True
    if not want_luks and not devices:
        return []
    rendered: Rendered = []
    if devices:
        rendered += _mirror(devices, layout or "x86_64")
    if want_luks:
        rendered.append((("storage", "luks"), _luks(luks, cex, layout, bool(devices)), (*at, "luks")))
    root_device = "/dev/mapper/root" if want_luks else "/dev/md/md-root"
    rendered.append((("storage", "filesystems"), {"device": root_device, "format": "xfs", "label": "root",
                                                  "wipeFilesystem": True}, at))
    return rendered


def _valid(device: dict[str, Any], layout: object, luks: dict[str, Any], devices: object,
           ctx: Context, fcos: int) -> bool:
    at: ConfigPath = ("boot_device",)
    ok = True
    if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
        ctx.bad("mirror devices must be a list of device paths", (*at, "mirror", "devices"))
        return False
    if devices and layout is None:
        message = "boot_device.layout should be specified when boot_device.mirror is specified"
        if fcos >= 7:  # an error from fcos 1.7
            ctx.bad(message, (*at, "mirror"))
            ok = False
        else:
            ctx.warn(message, (*at, "mirror"))
    if fcos >= 7 and luks.get("device") and not (
            any(isinstance(t, dict) and t for t in _tangs(luks)) or luks.get("tpm2") is True
            or _dict(luks.get("cex")).get("enabled") is True):
        ctx.bad("no method specified for luks", (*at, "luks"))
        ok = False
    if len(devices) == 1:
        ctx.bad("mirroring requires at least two devices", (*at, "mirror", "devices"))
        ok = False
    layouts = _LAYOUTS if fcos >= 6 else _LAYOUTS_LEGACY
    if layout is not None and layout not in layouts:
        ctx.bad("layout must be one of: " + ", ".join(layouts), (*at, "layout"))
        return False
    if isinstance(layout, str) and layout in ("s390x-eckd", "s390x-zfcp"):
        prefix = "/dev/dasd" if layout == "s390x-eckd" else "/dev/sd"
        name = luks.get("device")
        if not name:
            ctx.bad("device is required for layouts: s390x-eckd, s390x-zfcp", (*at, "layout"))
            ok = False
        elif not (isinstance(name, str) and name.startswith(prefix) and len(name) == len(prefix) + 1
                  and name[-1].isalpha() and name[-1].islower()):
            ctx.bad("device name must start with /dev/dasd on s390x-eckd layout or /dev/sd on s390x-zfcp layout",
                    (*at, "layout"))
            ok = False
    if isinstance(layout, str) and layout.startswith("s390x") and devices:
        ctx.bad("mirroring not supported on layouts: s390x-eckd, s390x-zfcp, s390x-virt", (*at, "layout"))
        ok = False
    cex = luks.get("cex")
    if isinstance(cex, dict) and cex.get("enabled") is True:
        if layout is None:
            ctx.bad("when using cex the targeted architecture must match s390x", (*at, "luks", "cex"))
            ok = False
        elif not str(layout).startswith("s390x"):
            ctx.bad("when using cex the targeted architecture must match s390x", (*at, "layout"))
            ok = False
        if luks.get("tang") or luks.get("tpm2") is True:
            ctx.bad("cannot use both cex and clevis", (*at, "luks"))
            ok = False
    return ok


def _mirror(devices: list[str], layout: str) -> Rendered:
    at: ConfigPath = ("boot_device", "mirror")
    bios, efi, prep = layout == "x86_64", layout in ("x86_64", "aarch64"), layout == "ppc64le"
    rendered: Rendered = []
    filesystems: Rendered = []
    for i, device in enumerate(devices, start=1):
        if bios:
            first = {"label": f"bios-{i}", "sizeMiB": 1, "typeGuid": _BIOS}
        elif prep:
            first = {"label": f"prep-{i}", "sizeMiB": 4, "typeGuid": _PREP}
        else:
            first = {"label": f"reserved-{i}", "sizeMiB": 1, "typeGuid": _RESERVED}
        second = ({"label": f"esp-{i}", "sizeMiB": 127, "typeGuid": _ESP} if efi
                  else {"label": f"reserved-{i}", "sizeMiB": 1, "typeGuid": _RESERVED})
        partitions = [first, second, {"label": f"boot-{i}", "sizeMiB": 384}, {"label": f"root-{i}"}]
        rendered.append((("storage", "disks"), {"device": device, "wipeTable": True, "partitions": partitions},
                         (*at, "devices", i - 1)))
        if efi:
            filesystems.append((("storage", "filesystems"),
                                {"device": f"/dev/disk/by-partlabel/esp-{i}", "format": "vfat",
                                 "label": f"esp-{i}", "wipeFilesystem": True}, (*at, "devices", i - 1)))
    members = range(1, len(devices) + 1)
    rendered.append((("storage", "raid"), {"name": "md-boot", "level": "raid1", "options": ["--metadata=1.0"],
                                           "devices": [f"/dev/disk/by-partlabel/boot-{n}" for n in members]}, at))
    rendered.append((("storage", "raid"), {"name": "md-root", "level": "raid1",
                                           "devices": [f"/dev/disk/by-partlabel/root-{n}" for n in members]}, at))
    rendered += filesystems
    rendered.append((("storage", "filesystems"), {"device": "/dev/md/md-boot", "format": "ext4", "label": "boot",
                                                  "wipeFilesystem": True}, at))
    return rendered


def _luks(luks: dict[str, Any], cex: dict[str, Any], layout: object, mirrored: bool) -> dict[str, Any]:
    if layout == "s390x-eckd":
        device = f"{luks['device']}2"
    elif layout == "s390x-zfcp":
        device = f"{luks['device']}4"
    elif mirrored:
        device = "/dev/md/md-root"
    else:
        device = "/dev/disk/by-partlabel/root"
    volume: dict[str, Any] = {"name": "root", "device": device, "label": "luks-root", "wipeVolume": True}
    if cex.get("enabled") is True:
        volume["cex"] = {"enabled": True}
    else:
        clevis: dict[str, Any] = {}
        if luks.get("tang"):
            clevis["tang"] = luks["tang"]
        for key in ("threshold", "tpm2"):
            if luks.get(key) is not None:
                clevis[key] = luks[key]
        volume["clevis"] = clevis
    if luks.get("discard") is not None:
        volume["discard"] = luks["discard"]
    return volume


def grub_users(value: object, ctx: Context) -> Rendered:
    """``grub.users``: superusers and their PBKDF2 hashes appended to /boot/grub2/user.cfg."""
    from provision.config.dataurl import encode_resource

    at: ConfigPath = ("grub",)
    grub = _mapping(value, at, ctx, ("users",))
    users = (grub or {}).get("users") or []
    if not isinstance(users, list):
        ctx.bad("grub.users must be a list", (*at, "users"))
        return []
    names, commands = [], []
    for i, user in enumerate(users):
        where: ConfigPath = (*at, "users", i)
        if _mapping(user, where, ctx, ("name", "password_hash")) is None:
            return []
        name, hashed = user.get("name"), user.get("password_hash")
        if not isinstance(name, str) or not name:
            ctx.bad('field "name" is required', (*where, "name"))
        if not isinstance(hashed, str) or not hashed:
            ctx.bad('field "password_hash" is required', (*where, "password_hash"))
        names.append(str(name))
        commands.append(f"password_pbkdf2 {name} {hashed}")
    if not users or any(d.is_error for d in ctx.diagnostics):
        return []
    text = "# Generated by Butane\n\n" + f'set superusers="{" ".join(names)}"\n' + "\n".join(commands) + "\n"
    boot = {"device": "/dev/disk/by-label/boot", "format": "ext4", "path": "/boot"}
    user_cfg = {"path": "/boot/grub2/user.cfg", "append": [encode_resource(text.encode())]}
    return [(("storage", "filesystems"), boot, (*at, "users")), (("storage", "files"), user_cfg, (*at, "users"))]
