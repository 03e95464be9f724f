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
from provision.importers.butane import bootdevice, mounts, openshift, partitions, trees
from provision.importers.butane.variants import NAMES, VARIANTS, Variant, versions_of
from provision.importers.butane.walk import Walker, ignition_shape
from provision.importers.human.context import Context


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
    # Butane merges each rendering under what it has so far: grub's under
    # boot_device's under the mount units' under the user's entries.
    rendered: bootdevice.Rendered = []
    if variant.fcos >= 5 and "grub" in value:
        rendered += bootdevice.grub_users(value["grub"], ctx)
    if variant.fcos >= 3 and "boot_device" in value:
        rendered += bootdevice.boot_device(value["boot_device"], ctx, variant.fcos)
    if variant.base >= 2:
        rendered += _mount_units(storage, ctx, variant)
        if "trees" in storage:
            trees.embed_trees(storage["trees"], ign, ctx, variant.base)
    _merge_under(rendered, ign, ctx)
    mirror = _dict(_dict(value.get("boot_device")).get("mirror")).get("devices")
    partitions.warn(ign, variant, ctx, mirror if isinstance(mirror, list) else [])
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
        if isinstance(fs, dict) and mounts.wanted(fs, at, ctx, variant.fcos, variant.base):
            found.append((("systemd", "units"), mounts.mount_unit(fs, luks, variant.base),
                          (*at, "with_mount_unit")))
    return found


def _merge_under(rendered: bootdevice.Rendered, ign: dict[str, Any], ctx: Context) -> None:
    """The rendered entries merged under the user's, as Butane merges them (Ignition's merge rules).

    The rendered entries of a section come first, in order; a user entry
    with the same key (unit name, disk device, ...) is merged over its
    rendered twin — sub-lists by their own keys, so a user's ``root-1``
    partition resizes the rendered one and a new ``var-1`` comes after it —
    and the other user entries follow. Moved user entries keep their origins.
    """
    sections: dict[tuple[str, ...], list[tuple[dict[str, Any], ConfigPath]]] = {}
    for section, entry, source in rendered:
        sections.setdefault(section, []).append((entry, source))
    moves: dict[ConfigPath, ConfigPath] = {}
    for section, entries in sections.items():
        node: Any = ign
        for part in section[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        mine = node.get(section[-1])
        parent = [entry for entry, _ in entries]
        node[section[-1]] = _merge(parent, mine if isinstance(mine, list) else [], section, section, moves)
    ctx.origins.remap(moves)
    for section, entries in sections.items():
        for i, (_, source) in enumerate(entries):
            ctx.origins.record((*section, i), source)


def _merge(parent: Any, child: Any, where: tuple[str, ...], at: ConfigPath,
           moves: dict[ConfigPath, ConfigPath]) -> Any:
    """``child`` over ``parent``; the child's list entries that move are noted in ``moves``."""
    from provision.config.merge import list_key

    if isinstance(parent, dict) and isinstance(child, dict):
        merged = dict(parent)
        for key, value in child.items():
            merged[key] = _merge(parent[key], value, (*where, key), (*at, key), moves) if key in parent else value
        return merged
    if not (isinstance(parent, list) and isinstance(child, list)):
        return parent if child is None else child
    key_of = list_key(where)
    if key_of is None:
        if all(not isinstance(v, dict | list) for v in parent + child):
            return parent + [v for v in child if v not in parent]
        return child
    out = list(parent)
    index = {key_of(e): i for i, e in enumerate(out) if isinstance(e, dict)}
    for j, entry in enumerate(child):
        found = index.get(key_of(entry)) if isinstance(entry, dict) else None
        if found is None:
            found = len(out)
            out.append(entry)
        else:
            out[found] = _merge(out[found], entry, where, (*at, found), moves)
        moves[(*at, j)] = (*at, found)
    return out
