"""Which Butane variants and versions exist, and what each one allows.

Facts from coreos/butane (config/config.go and each variant's translate.go):
the Ignition spec a version produces, the level of Butane's shared "base"
schema it is built on (which sugar exists), the Fedora CoreOS additions it
has (``boot_device``, ``grub``) and the Ignition fields the variant refuses
("field filters"), each with Butane's own message.
"""

from __future__ import annotations

from typing import NamedTuple

# Butane's messages for refused fields (config/common/errors.go).
_KARGS = "kernel argument customization is not supported in this spec version"
_DISKS = "disk customization is not supported in this spec version"
_FILESYSTEMS = "filesystem customization is not supported in this spec version"
_LUKS = "luks is not supported in this spec version"
_RAID = "raid is not supported in this spec version"
_CLEVIS = "clevis is not supported in this spec version"
_USER_FIELD = ('fields other than "name", "ssh_authorized_keys", and "password_hash" (4.13.0+) '
               "are not supported in this spec version")


class Variant(NamedTuple):
    name: str
    version: str
    spec: str  # the Ignition spec version Butane produces
    base: int  # Butane's base schema v0_<base>: 1 inline only; 2 local, trees, with_mount_unit; 5 *_local;
    #            7 trees with user, group, file_mode, dir_mode
    fcos: int  # Fedora CoreOS additions: 0 none; 3 boot_device; 5 + luks.discard, grub; 6 + luks.device, cex;
    #            7 stricter boot_device checks
    filters: tuple[tuple[tuple[str, ...], str], ...] = ()  # Ignition field path -> why it is refused
    openshift: bool = False


# r4e and fiot (edge images) have no disk layout of their own to change.
_EDGE = (
    (("kernelArguments",), _KARGS),
    (("storage", "disks"), _DISKS),
    (("storage", "filesystems"), _FILESYSTEMS),
    (("storage", "luks"), _LUKS),
    (("storage", "raid"), _RAID),
)
_FLATCAR = ((("storage", "luks", "clevis"), _CLEVIS),)


def _openshift_filters(minor: int) -> tuple[tuple[tuple[str, ...], str], ...]:
    """The machine-config-operator's limits: only user "core", no directories or links, ..."""
    users = ["gecos", "groups", "homeDir", "noCreateHome", "noLogInit", "noUserGroup", "primaryGroup",
             "shell", "shouldExist", "system", "uid"]
    if minor < 13:
        users.append("passwordHash")
    found: list[tuple[tuple[str, ...], str]] = [
        (("passwd", "groups"), "groups are not supported in this spec version"),
        *((("passwd", "users", field), _USER_FIELD) for field in users),
        (("storage", "directories"), "directories are not supported in this spec version"),
        (("storage", "files", "append"), "appending to files is not supported in this spec version"),
        (("storage", "files", "contents", "httpHeaders"), "file HTTP headers are not supported in this spec version"),
        (("storage", "links"), "links are not supported in this spec version"),
    ]
    if minor < 10:
        found.append((("storage", "files", "contents", "compression"),
                      "file compression is not supported in this spec version"))
    if minor >= 14:
        found.insert(0, (("kernelArguments",), "this section cannot be used for kernel arguments in this "
                         "spec version; use openshift.kernel_arguments instead"))
    return tuple(found)


def _openshift(minor: int) -> Variant:
    # 4.8-4.13 are built on fcos 1.3 (Ignition 3.2), 4.14-4.18 on fcos 1.5 (3.4), 4.19+ on fcos 1.6 (3.5).
    spec, base, fcos = ("3.2.0", 3, 3) if minor < 14 else ("3.4.0", 5, 5) if minor < 19 else ("3.5.0", 6, 6)
    return Variant("openshift", f"4.{minor}.0", spec, base, fcos, _openshift_filters(minor), openshift=True)


VARIANTS: dict[tuple[str, str], Variant] = {
    (v.name, v.version): v
    for v in (
        Variant("fcos", "1.0.0", "3.0.0", 1, 0),
        Variant("fcos", "1.1.0", "3.1.0", 2, 0),
        Variant("fcos", "1.2.0", "3.2.0", 3, 0),
        Variant("fcos", "1.3.0", "3.2.0", 3, 3),
        Variant("fcos", "1.4.0", "3.3.0", 4, 3),
        Variant("fcos", "1.5.0", "3.4.0", 5, 5),
        Variant("fcos", "1.6.0", "3.5.0", 6, 6),
        Variant("fcos", "1.7.0", "3.6.0", 7, 7),
        Variant("flatcar", "1.0.0", "3.3.0", 4, 0, _FLATCAR),
        Variant("flatcar", "1.1.0", "3.4.0", 5, 0, _FLATCAR),
        Variant("r4e", "1.0.0", "3.3.0", 4, 0, _EDGE),
        Variant("r4e", "1.1.0", "3.4.0", 5, 0, _EDGE),
        Variant("fiot", "1.0.0", "3.4.0", 5, 0, _EDGE),
        *(_openshift(minor) for minor in range(8, 23)),
    )
}

NAMES = ("fcos", "flatcar", "openshift", "r4e", "fiot")


def versions_of(name: str) -> list[str]:
    return [v.version for v in VARIANTS.values() if v.name == name]
