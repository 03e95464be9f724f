"""What a variant refuses (its field filters), and OpenShift's ``metadata``/``openshift`` sections.

Butane's ``openshift`` variant wraps the Ignition config in a MachineConfig
for the machine-config-operator. provision reads the config the way
``butane --raw`` emits it, plus one thing the operator would have done:
``openshift.kernel_arguments`` become ``kernelArguments.shouldExist``.
``fips`` adds the FIPS cipher to every LUKS volume (as Butane does in the
config itself) and, like ``extensions`` and ``kernel_type``, is otherwise
the operator's job: a warning says it is ignored, as ``butane --raw`` warns.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.butane.variants import Variant
from provision.importers.human.context import Context

ROLE_LABEL = "machineconfiguration.openshift.io/role"
CEX_KARG = "rd.luks.key=/etc/luks/cex.key"
_FIPS_CIPHER = ("--cipher", "aes-cbc-essiv:sha256")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_set(value: object) -> bool:
    return value is not None and value != [] and value != {}


def _occurrences(node: Any, parts: tuple[str, ...], at: ConfigPath) -> list[ConfigPath]:
    """The Ignition paths where a filtered field is set (lists along the way are walked)."""
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _occurrences(item, parts, (*at, i))]
    if not parts:
        return [at] if _is_set(node) else []
    if not isinstance(node, dict) or parts[0] not in node:
        return []
    return _occurrences(node[parts[0]], parts[1:], (*at, parts[0]))


def check_filters(ign: dict[str, Any], variant: Variant, ctx: Context) -> None:
    for field, message in variant.filters:
        for path in _occurrences(ign, field, ()):
            ctx.bad(message, ctx.origins.source_path(path) or (), f"{variant.name} {variant.version} refuses it")


def _metadata(value: dict[str, Any], ctx: Context) -> None:
    meta = value.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        ctx.bad("metadata must be a mapping", ("metadata",))
        return
    meta = meta or {}
    for key in meta:
        if key not in ("name", "labels"):
            ctx.bad(f"unknown key {key!r}", ("metadata", key), "known keys here: labels, name", at_key=True)
    if not meta.get("name"):
        ctx.bad("metadata.name is required", ("metadata", "name") if "name" in meta else ("metadata",))
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels.get(ROLE_LABEL):
        ctx.bad(f"{ROLE_LABEL} label is required", ("metadata", "labels") if "labels" in meta else ("metadata",))


def _where(ctx: Context, path: ConfigPath) -> ConfigPath:
    return ctx.origins.source_path(path) or ()


def _mco_support(ign: dict[str, Any], ctx: Context) -> None:
    """What RHCOS and the machine-config-operator cannot take, in Butane's words."""
    storage = _dict(ign.get("storage"))
    for i, fs in enumerate(_list(storage.get("filesystems"))):
        fmt = _dict(fs).get("format")
        if fmt == "btrfs":
            ctx.bad("btrfs is not supported in this spec version", _where(ctx, ("storage", "filesystems", i, "format")))
        elif fmt == "none":
            ctx.bad('format "none" is not supported in this spec version',
                    _where(ctx, ("storage", "filesystems", i, "format")))
    for i, file in enumerate(_list(storage.get("files"))):
        source = _dict(_dict(file).get("contents")).get("source")
        if isinstance(source, str) and ":" in source and not source.lower().startswith("data:"):
            ctx.bad("file contents source must be data URL in this spec version",
                    _where(ctx, ("storage", "files", i, "contents", "source")))
        mode = _dict(file).get("mode")
        if isinstance(mode, int) and mode & ~0o777:
            ctx.bad("special mode bits are not supported in this spec version",
                    _where(ctx, ("storage", "files", i, "mode")))
    for i, user in enumerate(_list(_dict(ign.get("passwd")).get("users"))):
        if _dict(user).get("name") != "core":
            ctx.bad('users other than "core" are not supported in this spec version',
                    _where(ctx, ("passwd", "users", i, "name")))


def apply(value: dict[str, Any], ign: dict[str, Any], ctx: Context, variant: Variant) -> None:
    _metadata(value, ctx)
    _mco_support(ign, ctx)
    section = value.get("openshift")
    if section is None:
        section = {}
    if not isinstance(section, dict):
        ctx.bad("openshift must be a mapping", ("openshift",))
        return
    at: ConfigPath = ("openshift",)
    for key in section:
        if key not in ("kernel_arguments", "extensions", "fips", "kernel_type"):
            ctx.bad(f"unknown key {key!r}", (*at, key),
                    "known keys here: extensions, fips, kernel_arguments, kernel_type", at_key=True)
    kernel_type = section.get("kernel_type")
    if kernel_type not in (None, "", "default", "realtime"):
        ctx.bad('must be empty, "default", or "realtime"', (*at, "kernel_type"))
    for key in ("extensions", "kernel_type"):
        if _is_set(section.get(key)) and section.get(key) != "":
            ctx.warn("field ignored in raw mode", (*at, key),
                     "the machine-config-operator applies it; provision reads the config as butane --raw emits it")
    args = section.get("kernel_arguments") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        ctx.bad("kernel_arguments must be a list of strings", (*at, "kernel_arguments"))
        return
    _cex_needs_karg(value, args, ctx)
    if args:
        kargs = ign.setdefault("kernelArguments", {})
        existing = kargs.setdefault("shouldExist", []) if isinstance(kargs, dict) else None
        if not isinstance(existing, list):
            return  # a malformed kernel_arguments section; the schema reports it
        for i, arg in enumerate(args):
            if arg not in existing:
                existing.append(arg)
                ctx.origins.record(("kernelArguments", "shouldExist", len(existing) - 1), (*at, "kernel_arguments", i))
    if section.get("fips") is True:
        _fips(ign, ctx)
        ctx.warn("field ignored in raw mode", (*at, "fips"),
                 "LUKS volumes get the FIPS cipher; FIPS mode itself is set by the machine-config-operator")


def _cex_needs_karg(value: dict[str, Any], args: list[str], ctx: Context) -> None:
    cex = _dict(_dict(_dict(value.get("boot_device")).get("luks")).get("cex"))
    root_cex = cex.get("enabled") is True
    storage = _dict(value.get("storage"))
    for volume in _list(storage.get("luks")):
        if isinstance(volume, dict) and volume.get("name") == "root":
            volume_cex = volume.get("cex")
            root_cex = root_cex or (isinstance(volume_cex, dict) and volume_cex.get("enabled") is True)
    if root_cex and CEX_KARG not in args:
        ctx.bad(f"'{CEX_KARG}' must be set as kernel argument when CEX is enabled for the boot device",
                ("openshift", "kernel_arguments"))


def _fips(ign: dict[str, Any], ctx: Context) -> None:
    for i, volume in enumerate(_list(_dict(ign.get("storage")).get("luks"))):
        if not isinstance(volume, dict):
            continue
        options = volume.setdefault("options", [])
        if not isinstance(options, list):
            continue  # the schema reports it
        if any(o in ("--cipher", "-c") or str(o).startswith("--cipher=") for o in options):
            continue
        options += list(_FIPS_CIPHER)
        ctx.origins.record(("storage", "luks", i, "options"), ("openshift", "fips"))
