"""Turn a schema-valid spec dict into the typed model.

Generic over the dataclasses in :mod:`provision.config.model`: each field is
looked up by its camelCase spec name. The dict has passed the schema, so
types are right; this only reshapes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from provision.config import model

T = TypeVar("T")

# Spec names whose camelCase form is not the mechanical one.
_SPEC_NAME_OVERRIDES = {"size_mib": "sizeMiB", "start_mib": "startMiB"}


def spec_name(field_name: str) -> str:
    if field_name in _SPEC_NAME_OVERRIDES:
        return _SPEC_NAME_OVERRIDES[field_name]
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@cache
def _fields(cls: Any) -> list[tuple[str, str, Any]]:
    hints = typing.get_type_hints(cls, vars(model))
    return [(f.name, spec_name(f.name), hints[f.name]) for f in dataclasses.fields(cls)]


def _converter(tp: Any) -> Callable[[Any], Any] | None:
    """How to turn a spec value into a field of type ``tp``; None: as it is."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _converter(inner[0])  # None never reaches a converter
    if origin is tuple:
        item = _converter(typing.get_args(tp)[0])
        if item is None:
            return tuple
        return lambda values: tuple(item(v) for v in values)
    if origin is dict:
        return dict
    if dataclasses.is_dataclass(tp):
        return _builder(tp)  # type: ignore[arg-type]  # classes are hashable
    return None


@cache
def _builder(cls: Any) -> Callable[[dict[str, Any]], Any]:
    # Worked out once per class: building a 1,000-file config then costs
    # a few dict look-ups per value instead of type introspection.
    plan = [(name, key, _converter(tp)) for name, key, tp in _fields(cls)]
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    required: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            factories[f.name] = f.default_factory
        else:
            required.add(f.name)

    def make(data: dict[str, Any]) -> Any:
        values = dict(defaults)
        for name, factory in factories.items():
            values[name] = factory()
        for name, key, convert in plan:
            value = data.get(key)
            if value is not None:
                values[name] = value if convert is None else convert(value)
        missing = required - values.keys()
        if missing:  # the schema requires these; only a bug gets here
            raise TypeError(f"{cls.__name__} needs {sorted(missing)}")
        # The data passed the schema: fill the instance directly instead of
        # through __init__ and the model's write-once __setattr__ per field.
        built = object.__new__(cls)
        built.__dict__.update(values)
        return built

    return make


def build(cls: type[T], data: dict[str, Any]) -> T:
    built: T = _builder(cls)(data)  # type: ignore[arg-type]  # classes are hashable
    return built


def build_config(data: dict[str, Any]) -> model.Config:
    return build(model.Config, data)


def to_spec(obj: Any) -> Any:
    """The inverse of :func:`build`: a model object back to a spec dict (unset fields omitted)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING
            )
            if value is None or value == default:
                continue
            out[spec_name(f.name)] = to_spec(value)
        return out
    if isinstance(obj, tuple):
        return [to_spec(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_spec(v) for k, v in obj.items()}
    return obj
