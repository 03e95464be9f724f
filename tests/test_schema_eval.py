"""provision's schema evaluator agrees with jsonschema (the reference) on our schemas.

Instances are example configs with a random part replaced by a random JSON
value, so most of them are near-valid and exercise deep paths. Known,
deliberate differences are excluded from generation and tested apart:
integral floats (we refuse 420.0 where an integer is expected, as Ignition
does) and anyOf reporting (we report the failures inside the closest
branch, jsonschema one error at the anyOf).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.config.schema_eval import compile_schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "schemas").glob("*.json"))}
EXAMPLES = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8) | st.sampled_from(
    ["gzip", "ext4", "docker", "/abs/path", "1.0.0", "3.3.0", "tcp", "always"]
) | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["path", "name", "mode", "source", "device", "x", "contents", "enabled"]), inner, max_size=3
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@st.composite
def mutated_configs(draw: st.DrawFn, as_ignition: bool = False) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    if as_ignition:
        doc.pop("containers", None)
        doc["ignition"] = {"version": "3.3.0"}
        del doc["provision"]
        for fs in doc.get("storage", {}).get("filesystems", []):
            fs.pop("subvolumes", None)
    path = draw(st.sampled_from(_paths(doc)))
    return _replace(doc, path, draw(json_values))


def _reference_failures(schema: dict[str, Any], instance: Any) -> set[tuple[tuple[Any, ...], str]]:
    validator = jsonschema.Draft202012Validator(schema)
    return {(tuple(e.absolute_path), str(e.validator)) for e in validator.iter_errors(instance)}


def _our_failures(schema: dict[str, Any], instance: Any) -> set[tuple[tuple[Any, ...], str]]:
    return {(f.path, f.keyword) for f in compile_schema(schema).failures(instance, ())}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_same_failures_as_jsonschema_on_our_spec(instance: Any) -> None:
    schema = SCHEMAS["provision-1.0.0.json"]
    ours = _our_failures(schema, instance)
    assert ours == _reference_failures(schema, instance)
    # The quick verdict (used when a config has no schema error) agrees with the report.
    assert compile_schema(schema).valid(instance) == (not ours)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs(as_ignition=True))
def test_same_verdict_as_jsonschema_on_ignition_specs(instance: Any) -> None:
    schema = SCHEMAS["ignition-3.3.0.json"]
    ours = _our_failures(schema, instance)
    theirs = _reference_failures(schema, instance)
    assert bool(ours) == bool(theirs)
    assert compile_schema(schema).valid(instance) == (not ours)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_compiles_and_is_a_valid_2020_12_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])
    compile_schema(SCHEMAS[name], eager=True)


def test_integral_floats_are_refused_where_integers_are_expected() -> None:
    schema = {"type": "integer"}
    assert [f.keyword for f in compile_schema(schema).failures(420.0, ())] == ["type"]
    assert not list(compile_schema(schema).failures(420, ()))


def test_anyof_reports_the_closest_branch() -> None:
    schema = SCHEMAS["ignition-3.3.0.json"]
    doc = {"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/a", "contents": {"source": "x", "bogus": 1}}]}}
    failures = list(compile_schema(schema).failures(doc, ()))
    assert [(f.path, f.keyword, f.detail) for f in failures] == [
        (("storage", "files", 0, "contents"), "additionalProperties", "bogus")]


def test_unsupported_keywords_are_refused_at_compile_time() -> None:
    with pytest.raises(ValueError, match="not supported"):
        compile_schema({"oneOf": [{"type": "string"}]})
    in_a_definition = {"$defs": {"odd": {"oneOf": [{"type": "string"}]}}, "$ref": "#/$defs/odd"}
    with pytest.raises(ValueError, match="not supported"):
        compile_schema(in_a_definition, eager=True)
    with pytest.raises(ValueError, match="not supported"):  # lazily: when first reached
        compile_schema(in_a_definition).valid("x")
