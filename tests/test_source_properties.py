"""Properties of the loader: any bytes give a Document or a positioned ConfigError;
serialised values come back equal, and every path in them can be located."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.diagnostics import ConfigPath, PathPart, Position
from provision.errors import ConfigError
from provision.source.document import Document
from provision.source.loader import load_document

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

def plain_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=5)
        | st.dictionaries(text.filter(lambda t: len(t) <= 8), children, max_size=5),
        max_leaves=40,
    )


json_values = plain_values(st.text())
# PyYAML's emitter writes NEL/LS/PS raw inside quoted scalars, where every YAML
# reader (PyYAML's own included) folds them: keep them out of the YAML property.
yaml_values = plain_values(
    st.text(alphabet=st.characters(blacklist_characters="\x85\u2028\u2029", blacklist_categories=["Cs"]))
)

# Text made of the characters that matter to JSON and YAML parsers, so that
# the fuzzing reaches deep into them rather than failing at the first byte.
syntax_soup = st.text(
    alphabet=st.sampled_from(list('{}[]:,"\'-?&*!|>#%@`~ \t\n\r\\0123456789.eEaxyz\u00e9\ufeff')),
    max_size=200,
)


def check_outcome(data: bytes) -> None:
    try:
        doc = load_document(data, "fuzz")
    except ConfigError as exc:
        assert exc.diagnostics
        for diagnostic in exc.diagnostics:
            assert diagnostic.file == "fuzz" and diagnostic.message
            assert diagnostic.position is not None
            assert diagnostic.position.line >= 1 and diagnostic.position.column >= 1
        return
    assert doc.format in ("json", "yaml")
    assert doc.locate(()) is not None


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_give_a_document_or_a_config_error(data: bytes) -> None:
    check_outcome(data)


@SETTINGS
@given(syntax_soup)
def test_any_syntax_soup_gives_a_document_or_a_config_error(text: str) -> None:
    check_outcome(text.encode("utf-8"))


@SETTINGS
@given(json_values, st.sampled_from([None, 0, 2]), st.booleans())
def test_json_round_trip_and_every_path_locatable(
    value: Any, indent: int | None, ensure_ascii: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
    if text[0] not in "{[":
        text = f"[{text}]"
        value = [value]
    doc = load_document(text.encode(), "v.json")
    assert doc.format == "json"
    assert doc.value == value
    for path, member in walk(value):
        start = offset(doc.text, doc.locate(path))
        if isinstance(member, dict | list):
            assert doc.text[start] == ("{" if isinstance(member, dict) else "[")
        else:
            assert doc.text.startswith(json.dumps(member, ensure_ascii=ensure_ascii), start)
        if path and isinstance(path[-1], str):
            key_start = offset(doc.text, doc.locate_key(path))
            assert doc.text.startswith(json.dumps(path[-1], ensure_ascii=ensure_ascii), key_start)
    assert_in_document_order(doc, value)


@SETTINGS
@given(yaml_values, st.booleans(), st.booleans())
def test_yaml_round_trip_and_every_path_locatable(
    value: Any, flow: bool, allow_unicode: bool
) -> None:
    text = yaml.safe_dump(
        {"root": value}, default_flow_style=flow, allow_unicode=allow_unicode, width=60
    )
    doc = load_document(text.encode(), "v.yaml")
    assert doc.format == "yaml"
    assert doc.value == {"root": value}
    for path, member in walk(doc.value):
        position = doc.locate(path)
        start = offset(doc.text, position)
        if member is None:
            assert doc.text.startswith("null", start)
        elif isinstance(member, bool):
            assert doc.text.startswith(str(member).lower(), start)
        elif isinstance(member, int):
            assert doc.text.startswith(str(member), start)
    assert_in_document_order(doc, doc.value)


def walk(value: Any, path: ConfigPath = ()) -> Iterator[tuple[ConfigPath, Any]]:
    """Every (path, value) in document order."""
    yield path, value
    items: list[tuple[PathPart, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for part, child in items:
        yield from walk(child, (*path, part))


def offset(text: str, position: Position | None) -> int:
    assert position is not None
    lines = text.split("\n")
    assert position.line <= len(lines)
    assert position.column <= len(lines[position.line - 1]) + 1
    return sum(len(line) + 1 for line in lines[: position.line - 1]) + position.column - 1


def assert_in_document_order(doc: Document, value: Any) -> None:
    """Keys and values appear in the order the serialiser wrote them."""
    marks: list[tuple[int, int]] = []
    for path, _member in walk(value):
        if path and isinstance(path[-1], str):
            key = doc.locate_key(path)
            assert key is not None
            marks.append((key.line, key.column))
        position = doc.locate(path)
        assert position is not None
        marks.append((position.line, position.column))
    assert marks == sorted(marks)
