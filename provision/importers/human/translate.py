"""Human YAML to the machine spec: rename keys, expand sugar, remember origins.

One walk guided by the shape derived from the machine schema: each key is
renamed to its spec name (unknown keys are errors at their line), sugar is
expanded by the hook registered for the object it appears in, and every spec
path created is recorded against the YAML path that produced it. Values are
not type-checked here: the machine schema does that on the output, and its
diagnostics find their way back to the YAML through the origins.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from provision.config import versions
from provision.diagnostics import ConfigPath
from provision.importers.human import accounts, containers, mounts, resources, trees
from provision.importers.human.context import Context
from provision.importers.human.modes import parse_mode
from provision.importers.human.shape import Shape, machine_shape, snake_name

VARIANT = "provision"
VERSIONS = ("1.0.0",)  # versions of the human format; each maps to a machine spec version
_SPEC_FOR = {"1.0.0": versions.NEWEST}

Hook = Callable[[dict[str, Any], ConfigPath, Context], resources.Rewritten]


def _mode(value: dict[str, Any], src: ConfigPath, ctx: Context) -> resources.Rewritten:
    if "mode" not in value:
        return value, {}
    return {**value, "mode": parse_mode(value["mode"], (*src, "mode"), ctx)}, {}


def _meta(value: dict[str, Any], src: ConfigPath, ctx: Context) -> resources.Rewritten:
    if "version" in value:
        ctx.bad("the version goes at the top level of human YAML", (*src, "version"),
                f"write version: {VERSIONS[-1]} next to variant: {VARIANT}", at_key=True)
        return {k: v for k, v in value.items() if k != "version"}, {}
    return value, {}


# Shape name -> sugar hook; SUGAR lists the keys each one accepts (for hints).
HOOKS: dict[str, Hook] = {
    "provision": _meta,
    "resource": resources.resource,
    "file": _mode,
    "directory": _mode,
    "unit": resources.unit_contents,
    "dropin": resources.unit_contents,
    "user": accounts.user,
    "group": accounts.password,
    "filesystem": mounts.filesystem,
    "container": containers.container,
    "storage": trees.storage,
}
# Sugar written one level too high, and where it belongs.
_MISPLACED = {
    "inline": "inline text goes inside contents (or append, key_file): contents: {inline: ...}",
    "local": "a local file goes inside contents (or append, key_file): contents: {local: PATH}",
    "contents_local": "contents_local is for units and drop-ins; a file takes contents: {local: PATH}",
}
SUGAR: dict[str, tuple[str, ...]] = {
    "resource": ("inline", "local"),
    "unit": ("contents_local",),
    "dropin": ("contents_local",),
    "user": ("password", "ssh_authorized_keys_local"),
    "group": ("password",),
    "filesystem": ("with_mount_unit",),
    "storage": ("trees",),
}


def _unknown(key: str, shape: Shape, src: ConfigPath, ctx: Context) -> None:
    known = [k for k in shape.fields if not (shape.name == "provision" and k == "version")]
    known += SUGAR.get(shape.name, ())
    if shape.name == "":
        known = ["variant", "version", *known]
    hint = "known keys here: " + ", ".join(sorted(known))
    snake = snake_name(key)
    if key in _MISPLACED:
        hint = _MISPLACED[key]
    elif snake != key and snake in known:
        hint = f"did you mean {snake!r}? human YAML keys are snake_case"
    else:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        if close:
            hint = f"did you mean {close[0]!r}?"
    ctx.bad(f"unknown key {key!r}", (*src, key), hint, at_key=True)


def _walk(value: Any, shape: Shape, src: ConfigPath, dst: ConfigPath, ctx: Context) -> Any:
    ctx.origins.record(dst, src)
    if shape.kind == "array" and isinstance(value, list):
        assert shape.items is not None
        return [_walk(v, shape.items, (*src, i), (*dst, i), ctx) for i, v in enumerate(value)]
    if shape.kind != "object" or not isinstance(value, dict):
        return value  # a value, a free-form mapping, or a wrong type the schema reports
    aliases: dict[str, ConfigPath] = {}
    hook = HOOKS.get(shape.name)
    if hook is not None:
        value, aliases = hook(value, src, ctx)
    out: dict[str, Any] = {}
    for key, sub in value.items():
        found = shape.fields.get(key)
        if found is None:
            _unknown(key, shape, src, ctx)
            continue
        spec_key, sub_shape = found
        out[spec_key] = _walk(sub, sub_shape, aliases.get(key, (*src, key)), (*dst, spec_key), ctx)
    return out


def _header(value: dict[str, Any], ctx: Context) -> str | None:
    """The machine spec version for the document's ``variant``/``version``, or None after an error."""
    variant = value.get("variant")
    if variant != VARIANT:
        ctx.bad(f"unknown variant {variant!r}; human YAML for provision has variant: {VARIANT}",
                ("variant",), "Butane configs are read too: variant fcos, flatcar, openshift, r4e or fiot, "
                "with their version")
        return None
    version = value.get("version")
    if version not in _SPEC_FOR:
        what = "missing version" if version is None else f"unsupported version {version!r}"
        ctx.bad(f"{what} of the human YAML format", ("version",) if version is not None else (),
                "supported versions: " + ", ".join(VERSIONS))
        return None
    return _SPEC_FOR[version]


def translate(value: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    spec_version = _header(value, ctx)
    if spec_version is None:
        return None
    body = {k: v for k, v in value.items() if k not in ("variant", "version")}
    spec: dict[str, Any] = _walk(body, machine_shape(), (), (), ctx)
    meta = spec.get("provision")
    spec["provision"] = {"version": spec_version, **(meta if isinstance(meta, dict) else {})}
    ctx.origins.record(("provision", "version"), ("version",))
    spec = {"provision": spec.pop("provision"), **spec}
    _append_generated(spec, ctx)
    return spec


def _append_generated(spec: dict[str, Any], ctx: Context) -> None:
    for item in ctx.generated:
        node: Any = spec
        for key in item.section[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # the section has the wrong type; the schema reports it
        entries = node.setdefault(item.section[-1], [])
        if not isinstance(entries, list):
            continue
        entries.append(item.entry)
        ctx.origins.record((*item.section, len(entries) - 1), item.source)
