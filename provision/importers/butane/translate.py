"""A Butane document to the Ignition config Butane would produce, with origins.

Order, as in Butane: the body is translated key by key (sugar included),
then mount units, trees, ``boot_device`` and ``grub`` are rendered and
merged *under* the user's entries (the user's own unit, disk or filesystem
of the same name or device wins field by field), then the variant's
refused fields are reported.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.butane import bootdevice, mounts, openshift, trees
from provision.importers.butane.variants import NAMES, VARIANTS, Variant, versions_of
from provision.importers.butane.walk import Walker, ignition_shape
from provision.importers.human.context import Context

# Keyed lists of the rendered sections, and their key (Ignition's merge keys).
_KEYS = {"disks": "device", "raid": "name", "luks": "name", "filesystems": "device", "files": "path",
         "units": "name"}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def header(value: dict[str, Any], ctx: Context) -> Variant | None:
    variant, version = value.get("variant"), value.get("version")
    if not isinstance(variant, str) or not variant:
        ctx.bad("error parsing variant; must be specified", ("variant",) if "variant" in value else ())
        return None
    if variant not in NAMES:
        ctx.bad(f"no translator exists for variant {variant}", ("variant",),
                "Butane variants: " + ", ".join(NAMES) + "; provision's own human YAML has variant: provision")
        return None
    found = VARIANTS.get((variant, str(version)))
    if found is None:
        what = "missing version" if version is None else f"no translator exists for variant {variant} with version {version}"
        ctx.bad(what, ("version",) if "version" in value else (),
                f"{variant} versions read by provision: " + ", ".join(versions_of(variant)))
    return found


def _root_extras(variant: Variant) -> tuple[str, ...]:
    extras = ["variant", "version"]
    if variant.fcos >= 3:
        extras.append("boot_device")
    if variant.fcos >= 5:
        extras.append("grub")
    if variant.openshift:
        extras += ["metadata", "openshift"]
    return tuple(extras)


def to_ignition(value: dict[str, Any], ctx: Context) -> tuple[dict[str, Any], Variant] | None:
    """The Ignition config (as a dict, of the variant's spec version), or None after a header error."""
    variant = header(value, ctx)
    if variant is None:
        return None
    extras = _root_extras(variant)
    body = {k: v for k, v in value.items() if k not in extras}
    walked = Walker(variant, ctx).walk(body, ignition_shape(variant.spec), (), ())
    ign: dict[str, Any] = {"ignition": {"version": variant.spec}, **walked}
    if isinstance(walked.get("ignition"), dict):
        ign["ignition"] = {"version": variant.spec, **walked["ignition"]}
    ctx.origins.record(("ignition", "version"), ("version",))
    storage = _dict(value.get("storage"))
    rendered: bootdevice.Rendered = []
    if variant.base >= 2:
        rendered += _mount_units(storage, ctx, variant)
        if "trees" in storage:
            trees.embed_trees(storage["trees"], ign, ctx)
    if variant.fcos >= 3 and "boot_device" in value:
        rendered += bootdevice.boot_device(value["boot_device"], ctx, variant.fcos)
    if variant.fcos >= 5 and "grub" in value:
        rendered += bootdevice.grub_users(value["grub"], ctx)
    _merge_under(rendered, ign, ctx)
    openshift.check_filters(ign, variant, ctx)
    if variant.openshift:
        openshift.apply(value, ign, ctx, variant)
    return ign, variant


def _mount_units(storage: dict[str, Any], ctx: Context, variant: Variant) -> bootdevice.Rendered:
    found: bootdevice.Rendered = []
    filesystems = storage.get("filesystems")
    luks = storage.get("luks")
    luks = luks if isinstance(luks, list) else []
    for i, fs in enumerate(filesystems if isinstance(filesystems, list) else []):
        at: ConfigPath = ("storage", "filesystems", i)
        if isinstance(fs, dict) and mounts.wanted(fs, at, ctx, variant.fcos):
            found.append((("systemd", "units"), mounts.mount_unit(fs, luks, variant.base),
                          (*at, "with_mount_unit")))
    return found


def _merge_under(rendered: bootdevice.Rendered, ign: dict[str, Any], ctx: Context) -> None:
    """Each rendered entry joins its section; the user's entry with the same key keeps its own fields."""
    for section, entry, source in rendered:
        node: Any = ign
        for part in section[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        entries = node.get(section[-1])
        if not isinstance(entries, list):
            entries = node[section[-1]] = []
        key = _KEYS[section[-1]]
        mine = next((i for i, e in enumerate(entries) if isinstance(e, dict) and e.get(key) == entry[key]), None)
        if mine is None:
            entries.append(entry)
            ctx.origins.record((*section, len(entries) - 1), source)
        else:
            entries[mine] = _fill(entry, entries[mine])


def _fill(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``: mappings merge recursively, any other value set in the child wins."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _fill(out[key], value)
        elif value is not None:
            out[key] = value
    return out
