"""Turn a schema-valid spec dict into the typed model.

Generic over the classes in :mod:`provision.config.model`: each field is
looked up by its camelCase spec name. The dict has passed the schema, so
types are right; this only reshapes.
"""

from __future__ import annotations

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


def _converter(annotation: str) -> Callable[[Any], Any] | None:
    """How to turn a spec value into a field annotated ``annotation``; None: as it is.

    Reads the annotation string directly rather than evaluating it with
    typing.get_type_hints: the model only uses ``X | None``, ``tuple[X, ...]``,
    ``dict[...]``, model classes and plain types, and this runs on every boot.
    """
    annotation = annotation.removesuffix(" | None")  # None never reaches a converter
    if annotation.startswith("tuple[") and annotation.endswith(", ...]"):
        item = _converter(annotation.removeprefix("tuple[").removesuffix(", ...]"))
        if item is None:
            return tuple
        return lambda values: tuple(map(item, values))
    if annotation.startswith("dict["):
        return dict
    cls = getattr(model, annotation, None)
    if model.is_model_class(cls):
        return _builder(cls)
    if "[" in annotation or "|" in annotation:
        # A shape this reader does not know would silently stay a raw value.
        raise TypeError(f"build: unsupported model annotation {annotation!r}")
    return None


def _default_maker(factory: Callable[[], Any]) -> Callable[[], Any]:
    """``factory``, or for a model class one instance built from no data, shared.

    Model instances are immutable values, so every file without an owner can
    hold the same empty NodeOwner: a 1,000-file config then builds a few
    defaults instead of three thousand.
    """
    if model.is_model_class(factory):
        empty = _builder(factory)({})
        return lambda: empty
    return factory


@cache
def _builder(cls: Any) -> Callable[[dict[str, Any]], Any]:
    # Worked out once per class: building a 1,000-file config then costs
    # a few dict look-ups per value instead of type introspection.
    fields = model.model_fields(cls)
    by_key = {spec_name(f.name): (f.name, _converter(f.annotation)) for f in fields}
    defaults = {f.name: f.default for f in fields if f.default is not model.MISSING}
    factories = [(f.name, _default_maker(f.default_factory)) for f in fields if f.default_factory is not None]

    def make(data: dict[str, Any]) -> Any:
        values = dict(defaults)
        # Walk the keys present (usually a few) rather than every field.
        for key, value in data.items():
            entry = by_key.get(key)
            if entry is not None and value is not None:
                name, convert = entry
                values[name] = value if convert is None else convert(value)
        # Default factories only for what the data left out (a 1,000-file
        # config would otherwise build and discard thousands of NodeOwners).
        for name, factory in factories:
            if name not in values:
                values[name] = factory()
        if len(values) != len(fields):  # the schema requires these; only a bug gets here
            raise TypeError(f"{cls.__name__} needs {sorted({f.name for f in fields} - values.keys())}")
        # The data passed the schema: fill the instance directly instead of
        # through __init__ and the model's write-once __setattr__ per field.
        built = object.__new__(cls)
        built.__dict__.update(values)
        return built

    return make


def build(cls: type[T], data: dict[str, Any]) -> T:
    built: T = _builder(cls)(data)  # type: ignore[arg-type]  # T is a model class
    return built


def build_config(data: dict[str, Any]) -> model.Config:
    return build(model.Config, data)


def to_spec(obj: Any) -> Any:
    """The inverse of :func:`build`: a model object back to a spec dict (unset fields omitted)."""
    if model.is_model_class(type(obj)):
        out = {}
        for f in model.model_fields(obj):
            value = getattr(obj, f.name)
            default = f.default if f.default_factory is None else f.default_factory()
            if value is None or value == default:
                continue
            out[spec_name(f.name)] = to_spec(value)
        return out
    if isinstance(obj, tuple):
        return [to_spec(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_spec(v) for k, v in obj.items()}
    return obj
