"""The machine spec written back as human YAML (``provision transpile --to-human``).

The inverse of the key mapping only: keys become snake_case, the version
moves to the top next to ``variant``, modes become octal strings. Contents
stay as the ``source`` URLs they are, so translating the result again gives
back exactly the same spec.
"""

from __future__ import annotations

from typing import Any

from provision.importers.human.modes import render_mode
from provision.importers.human.shape import Shape, machine_shape
from provision.importers.human.translate import VARIANT, VERSIONS

_SPEC_KEYS: dict[int, dict[str, tuple[str, Shape]]] = {}


def _by_spec_key(shape: Shape) -> dict[str, tuple[str, Shape]]:
    found = _SPEC_KEYS.get(id(shape))
    if found is None:
        found = {spec: (human, sub) for human, (spec, sub) in shape.fields.items()}
        _SPEC_KEYS[id(shape)] = found
    return found


def _render(value: Any, shape: Shape) -> Any:
    if shape.kind == "array" and isinstance(value, list):
        assert shape.items is not None
        return [_render(v, shape.items) for v in value]
    if shape.kind != "object" or not isinstance(value, dict):
        return value
    fields = _by_spec_key(shape)
    out: dict[str, Any] = {}
    for key, sub in value.items():
        human, sub_shape = fields.get(key, (key, Shape("value")))
        if key == "mode" and shape.name in ("file", "directory") and isinstance(sub, int):
            out[human] = render_mode(sub)
        else:
            out[human] = _render(sub, sub_shape)
    return out


def to_human(spec: dict[str, Any]) -> dict[str, Any]:
    """A newest-version machine spec as a human YAML document (a dict ready for yaml.safe_dump)."""
    body = _render({k: v for k, v in spec.items()}, machine_shape())
    meta = dict(body.pop("provision", {}))
    meta.pop("version", None)
    out: dict[str, Any] = {"variant": VARIANT, "version": VERSIONS[-1]}
    if meta:
        out["provision"] = meta
    out.update(body)
    return out


def _represent_str(dumper: Any, data: str) -> Any:
    import yaml

    if any(c in data for c in "\x85\u2028\u2029"):
        # YAML line breaks PyYAML would fold in single quotes: escape them.
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    if "\n" in data.rstrip("\n"):
        # Unit files and scripts read best as literal blocks (the emitter falls back if it cannot).
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return yaml.SafeDumper.represent_str(dumper, data)


def dump_human(spec: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(str, _represent_str)
    text: str = yaml.dump(to_human(spec), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text
