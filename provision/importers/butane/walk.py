"""Butane YAML to Ignition JSON, key by key, guided by the target Ignition spec's own schema.

Butane's keys are Ignition's in snake_case (``size_mib``, ``http_headers``),
so the shape is derived from schemas/ignition-<spec>.json: a key unknown
there (or sugar the variant's base version does not have) is an error at
its line. Values are not type-checked here — the Ignition schema does that
on the output, and the origins recorded here point its findings back at
the YAML.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.butane import resources
from provision.importers.butane.variants import Variant
from provision.importers.human.context import Context
from provision.importers.human.shape import Shape, shape_of, snake_name


@cache
def ignition_shape(spec: str) -> Shape:
    from provision.resources import load_json

    schema = load_json("schemas", f"ignition-{spec}.json")
    return shape_of(schema)


def sugar_keys(shape_name: str, variant: Variant) -> tuple[str, ...]:
    """The sugar a base version accepts in an object of this kind (Butane's base/v0_N/schema.go)."""
    base = variant.base
    table: dict[str, tuple[tuple[int, str], ...]] = {
        "resource": ((1, "inline"), (2, "local")),
        "storage": ((2, "trees"),),
        "filesystem": ((2, "with_mount_unit"),),
        "unit": ((5, "contents_local"),),
        "dropin": ((5, "contents_local"),),
        "user": ((5, "ssh_authorized_keys_local"),),
    }
    return tuple(key for since, key in table.get(shape_name, ()) if base >= since)


class Walker:
    def __init__(self, variant: Variant, ctx: Context) -> None:
        self.variant = variant
        self.ctx = ctx

    def walk(self, value: Any, shape: Shape, src: ConfigPath, dst: ConfigPath) -> Any:
        self.ctx.origins.record(dst, src)
        if shape.kind == "array" and isinstance(value, list):
            assert shape.items is not None
            return [self.walk(v, shape.items, (*src, i), (*dst, i)) for i, v in enumerate(value)]
        if shape.kind != "object" or not isinstance(value, dict):
            return value  # a value, or a wrong type the Ignition schema reports
        sugar = sugar_keys(shape.name, self.variant)
        value, aliases = self._sugar(value, shape, src)
        out: dict[str, Any] = {}
        for key, sub in value.items():
            found = shape.fields.get(key) if isinstance(key, str) else None
            if found is None or (shape.name == "ignition" and key == "version"):
                if key not in sugar:  # sugar left here was refused by its hook already
                    self._unknown(key, shape, src, sugar)
                continue
            spec_key, sub_shape = found
            out[spec_key] = self.walk(sub, sub_shape, aliases.get(key, (*src, key)), (*dst, spec_key))
        return out

    def _sugar(self, value: dict[str, Any], shape: Shape, src: ConfigPath) -> resources.Rewritten:
        ctx, base = self.ctx, self.variant.base
        if shape.name == "resource":
            return resources.resource(value, src, ctx, base, "compression" in shape.fields)
        if shape.name in ("unit", "dropin") and base >= 5:
            return resources.unit_contents(value, src, ctx)
        if shape.name == "user" and base >= 5:
            return resources.user_keys(value, src, ctx)
        if shape.name == "storage" and base >= 2:
            return {k: v for k, v in value.items() if k != "trees"}, {}  # embedded after the walk
        if shape.name == "filesystem" and base >= 2:
            return {k: v for k, v in value.items() if k != "with_mount_unit"}, {}  # units added after the walk
        return value, {}

    def _unknown(self, key: object, shape: Shape, src: ConfigPath, sugar: tuple[str, ...]) -> None:
        known = [k for k in shape.fields if not (shape.name == "ignition" and k == "version")]
        known += sugar
        if shape.name == "":
            known = ["variant", "version", *known]
        hint = "known keys here: " + ", ".join(sorted(known))
        name = str(key)
        if shape.name == "ignition" and name == "version":
            hint = "the version goes at the top level of a Butane config, next to variant"
        elif snake_name(name) != name and snake_name(name) in known:
            hint = f"did you mean {snake_name(name)!r}? Butane keys are snake_case"
        else:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            if close:
                hint = f"did you mean {close[0]!r}?"
        self.ctx.bad(f"unknown key {name!r}", (*src, name), hint, at_key=True)
