"""YAML text to plain values plus a position tree, safely.

We read PyYAML's *event* stream (libyaml's C parser when available) and build
the values ourselves instead of using ``yaml.compose``/``yaml.load``:

- libyaml's composer recurses in C, and ~100,000 nested ``[`` crash the
  process (segfault); the event parser is iterative, so composing from events
  with an explicit stack lets us stop at the nesting limit instead;
- every value's position comes straight from the event marks;
- aliases are expanded against a node budget, which stops "billion laughs";
- duplicate keys are reported (PyYAML silently keeps the last one).

Decisions (what users can rely on):
- only plain data: str, int, float, bool, null, lists and mappings. Explicit
  tags other than the YAML core ones (``!!python/...``, ``!!binary``, custom
  ``!Ref``) are rejected; timestamps (``2001-12-14``) stay strings. The one
  exception is asked for by the caller: ``binary=True`` reads ``!!binary``
  as bytes (cloud-config's write_files content, as cloud-init reads it).
- mapping keys must be strings. ``1: x``, ``true: x`` or ``~: x`` is an error
  with a hint to quote the key, never silently stringified (``yes`` would
  become ``"True"``).
- YAML 1.1 scalars, as PyYAML resolves them: ``0644`` is the octal 420 (as
  Butane users write file modes), ``yes``/``on`` are booleans.
- merge keys (``<<: *defaults``) work, explicit keys taking precedence.
- ``.inf`` / ``.nan`` are rejected, as JSON has no such numbers.
- exactly one document per file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from provision.diagnostics import Diagnostic, PathPart, Position, error
from provision.errors import ConfigError
from provision.gcpause import cyclic_gc_paused
from provision.source.positions import Entry, LineIndex, byte_position
from provision.source.problems import (
    MAX_DUPLICATES_REPORTED,
    capped_duplicates,
    duplicate_key,
    located,
)

YAML_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (YAML_TAG + t for t in ("str", "null", "bool", "int", "float"))
_TIMESTAMP, _MERGE, _VALUE = (YAML_TAG + t for t in ("timestamp", "merge", "value"))
_MAP, _SEQ = YAML_TAG + "map", YAML_TAG + "seq"
_PLAIN_TAGS = frozenset({_STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP, _VALUE})
_BINARY = YAML_TAG + "binary"

# Python's own limit for converting digits to int (sys.int_info default).
MAX_INT_CHARS = 4300

Mark = tuple[int, int]  # 0-based (line, column), as PyYAML reports them


def mark_position(mark: Mark | None) -> Position | None:
    return None if mark is None else Position(mark[0] + 1, mark[1] + 1)


@dataclass(slots=True)
class _Node:
    """A finished value with what the parent needs to know about it."""

    value: Any
    entry: Entry
    size: int  # values in the subtree, aliases expanded
    height: int  # container levels in the subtree (0 for a scalar)
    is_merge_key: bool = False
    source: str | None = None  # a scalar's text as written (``yes``, not True)


@dataclass(slots=True)
class _Open:
    """A mapping or sequence whose end event has not arrived yet."""

    value: dict[str, Any] | list[Any]
    children: dict[str, Entry] | list[Entry]
    mark: Mark
    anchor: str | None
    size: int = 1
    height: int = 1
    key: _Node | None = None  # mapping: the key waiting for its value
    merges: list[tuple[_Node, Mark]] = field(default_factory=list)


class YamlSyntaxError(ConfigError):
    """The text is not YAML at all (as opposed to YAML we refuse, such as a duplicate key)."""


def load_yaml(text: str, name: str, max_depth: int, alias_budget: int,
              binary: bool = False) -> tuple[Any, Entry] | None:
    """(value, position tree) of a one-document YAML text; None if it has no content."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        root = _compose(text, name, loader_class, max_depth, alias_budget, binary)
    except YamlSyntaxError as exc:
        # libyaml 0.2.5 and later stop at flow nesting 1000 while scanning
        # ahead, before our composer sees the 65th level; the pure-Python
        # parser hands over tokens in time, so ours reports its own limit.
        if loader_class is yaml.SafeLoader or "maximum nesting depth" not in str(exc):
            raise
        root = _compose(text, name, yaml.SafeLoader, max_depth, alias_budget, binary)
    if root is None or (root.value is None and root.entry[2] is None and not _has_content(text)):
        return None
    return root.value, root.entry


def _compose(text: str, name: str, loader_class: Any, max_depth: int, alias_budget: int,
             binary: bool = False) -> _Node | None:
    import yaml

    composer = _Composer(name, max_depth, alias_budget, binary)
    loader = None
    # Composing allocates many objects and no cycles: the cyclic GC would only
    # rescan them over and over (~40 % of the time on large inputs).
    with cyclic_gc_paused():
        try:
            loader = loader_class(text)  # the pure-Python reader checks characters here
            return composer.compose(loader)
        except yaml.MarkedYAMLError as exc:
            raise _syntax_error(exc, text, name) from None
        except yaml.reader.ReaderError as exc:
            raise _reader_error(exc, text, name, loader_class is not yaml.SafeLoader) from None
        except yaml.YAMLError as exc:
            raise located(name, Position(1, 1), f"invalid YAML: {exc}", kind=YamlSyntaxError) from None
        finally:
            if loader is not None:
                loader.dispose()


def _has_content(text: str) -> bool:
    """Whether a YAML text that parsed to null says so (``null``, ``~``) rather than being blank."""
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped and stripped not in ("---", "..."):
            return True
    return False


def _syntax_error(exc: Any, text: str, name: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
    problem = exc.problem or exc.context or "syntax error"
    hint = None
    if exc.context and exc.problem and exc.context_mark:
        hint = f"{exc.context} (line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    if mark and _character_at(text, mark.line, mark.column) == "\t":
        hint = "YAML indentation uses spaces, not tabs"
    return located(name, position, f"invalid YAML: {problem}", hint, kind=YamlSyntaxError)


def _character_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n", line + 1)
    return lines[line][column : column + 1] if line < len(lines) else ""


def _reader_error(exc: Any, text: str, name: str, c_loader: bool) -> ConfigError:
    # libyaml reports a byte offset into the UTF-8 text, PyYAML a character offset.
    offset = int(exc.position)
    if c_loader:
        position = byte_position(text.encode("utf-8"), offset)
    else:
        position = LineIndex(text).position(offset)
    character = exc.character
    shown = f"U+{character:04X}" if isinstance(character, int) else repr(character)
    return located(
        name, position, f"invalid YAML: character {shown} is not allowed",
        "YAML text may not contain control characters", kind=YamlSyntaxError,
    )


class _Composer:
    def __init__(self, name: str, max_depth: int, alias_budget: int, binary: bool = False) -> None:
        import yaml

        self.yaml = yaml
        self.binary = binary
        self.name = name
        self.max_depth = max_depth
        self.alias_budget = alias_budget
        self.expanded = 0
        self.anchors: dict[str, _Node] = {}
        self.stack: list[_Open] = []
        self.root: _Node | None = None
        self.duplicates: list[Diagnostic] = []
        self.duplicate_count = 0
        self.resolver: Any = yaml.resolver.Resolver()  # untyped in the stubs
        self.constructor: Any = yaml.constructor.SafeConstructor()
        self.resolved: dict[tuple[str, Any], str] = {}

    # -- errors -----------------------------------------------------------
    def fail(self, message: str, mark: Mark | None, hint: str | None = None) -> ConfigError:
        diagnostic = error(message, self.path(), hint).at(self.name, mark_position(mark))
        return ConfigError([diagnostic])

    def path(self) -> tuple[PathPart, ...]:
        parts: list[PathPart] = []
        for frame in self.stack:
            if isinstance(frame.value, list):
                parts.append(len(frame.value))
            elif frame.key is not None and isinstance(frame.key.value, str):
                parts.append(frame.key.value)
        return tuple(parts)

    # -- events -------------------------------------------------------------
    def compose(self, loader: Any) -> _Node | None:
        events = self.yaml.events
        documents = 0
        while True:
            event = loader.get_event()
            kind = type(event)
            mark: Mark = (event.start_mark.line, event.start_mark.column)
            if kind is events.ScalarEvent:
                self.add(self.scalar(event, mark), event.anchor)
            elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
                self.open(event, mark, kind is events.MappingStartEvent)
            elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
                self.close()
            elif kind is events.AliasEvent:
                self.add(self.alias(event.anchor, mark), None)
            elif kind is events.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.fail(
                        "expected one YAML document, found a second one", mark,
                        "a config file holds a single document; remove the '---' separator",
                    )
            elif kind is events.StreamEndEvent:
                if self.duplicates:
                    raise ConfigError(capped_duplicates(self.duplicates, self.duplicate_count))
                return self.root

    def open(self, event: Any, mark: Mark, is_mapping: bool) -> None:
        wanted = _MAP if is_mapping else _SEQ
        if event.tag not in (None, "!", wanted):
            raise self.fail(f"unsupported YAML tag {event.tag}", mark, _TAG_HINT)
        if len(self.stack) >= self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth} levels", mark)
        self.key_must_be_scalar(mark)
        if is_mapping:
            self.stack.append(_Open({}, {}, mark, event.anchor))
        else:
            self.stack.append(_Open([], [], mark, event.anchor))

    def close(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict):
            self.apply_merges(frame)
        node = _Node(frame.value, (None, frame.mark, frame.children), frame.size, frame.height)
        self.add(node, frame.anchor)

    def key_must_be_scalar(self, mark: Mark) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.key is None:
            raise self.fail("mapping keys must be strings, not lists or mappings", mark)

    def add(self, node: _Node, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = node
        if not self.stack:
            self.root = node
            return
        top = self.stack[-1]
        top.size += node.size
        top.height = max(top.height, node.height + 1)
        if isinstance(top.value, list):
            assert isinstance(top.children, list)
            top.value.append(node.value)
            top.children.append(node.entry)
            return
        if top.key is None:
            self.accept_key(top, node)
            return
        key, top.key = top.key, None
        if key.is_merge_key:
            top.merges.append((node, key.entry[1]))
            return
        assert isinstance(top.children, dict)
        name = key.value
        previous = top.children.get(name)
        if previous is not None:
            self.duplicate_count += 1
            if len(self.duplicates) <= MAX_DUPLICATES_REPORTED:  # the rest are only counted
                first, second = mark_position(previous[0]), mark_position(key.entry[1])
                assert first is not None and second is not None
                path = (*self.path(), name)
                self.duplicates.append(duplicate_key(self.name, path, first, second))
        top.value[name] = node.value
        top.children[name] = (key.entry[1], node.entry[1], node.entry[2])

    def accept_key(self, top: _Open, node: _Node) -> None:
        mark = node.entry[1]
        if node.is_merge_key:
            top.key = node
            return
        if isinstance(node.value, str):
            top.key = node
        elif node.source is None:  # an alias to a list or mapping
            raise self.fail("mapping keys must be strings, not lists or mappings", mark)
        else:
            kind = _KIND_NAMES.get(type(node.value), "a non-string value")
            raise self.fail(
                f"mapping keys must be strings; {node.source!r} is read as {kind}",
                mark,
                f'quote the key: "{node.source}":',
            )

    def apply_merges(self, frame: _Open) -> None:
        """``<<: *base`` or ``<<: [*a, *b]``: copy keys the mapping does not set itself."""
        assert isinstance(frame.value, dict) and isinstance(frame.children, dict)
        for source, mark in frame.merges:
            sources = [source] if isinstance(source.value, dict) else None
            if isinstance(source.value, list) and isinstance(source.entry[2], list):
                sources = [
                    _Node(v, e, 1, 0)
                    for v, e in zip(source.value, source.entry[2], strict=True)
                    if isinstance(v, dict)
                ]
                if len(sources) != len(source.value):
                    sources = None
            if sources is None:
                raise self.fail(
                    "a merge key (<<) needs a mapping or a list of mappings", mark
                )
            for merged in sources:
                assert isinstance(merged.entry[2], dict)
                for name, value in merged.value.items():
                    if name not in frame.value:
                        frame.value[name] = value
                        frame.children[name] = merged.entry[2][name]

    # -- values -------------------------------------------------------------
    def alias(self, anchor: str, mark: Mark) -> _Node:
        target = self.anchors.get(anchor)
        if target is None:
            raise self.fail(f"unknown YAML alias *{anchor}", mark, "define the anchor (&name) before using it")
        if len(self.stack) + target.height > self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth} levels (through alias *{anchor})", mark)
        self.expanded += target.size
        if self.expanded > self.alias_budget:
            raise self.fail(
                f"YAML aliases expand to more than {self.alias_budget} values",
                mark,
                "this looks like an alias bomb (\"billion laughs\"); use fewer nested aliases",
            )
        value = _copy(target.value)
        return _Node(value, (None, mark, target.entry[2]), target.size, target.height)

    def scalar(self, event: Any, mark: Mark) -> _Node:
        text: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            # Keys and common values repeat: resolve each distinct scalar once.
            key = (text, event.implicit)
            tag = self.resolved.get(key)
            if tag is None:
                tag = self.resolved[key] = self.resolver.resolve(
                    self.yaml.ScalarNode, text, event.implicit
                )
        entry: Entry = (None, mark, None)
        if tag == _MERGE:
            return _Node("<<", entry, 1, 0, is_merge_key=self.expecting_key())
        if tag == _BINARY and self.binary:
            return _Node(self.decode_binary(text, mark), entry, 1, 0, source=text)
        if tag not in _PLAIN_TAGS:
            raise self.fail(f"unsupported YAML tag {tag}", mark, _TAG_HINT)
        return _Node(self.convert(tag, text, mark), entry, 1, 0, source=text)

    def decode_binary(self, text: str, mark: Mark) -> bytes:
        import base64
        import binascii

        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise self.fail("!!binary data is not valid base64", mark) from None

    def expecting_key(self) -> bool:
        top = self.stack[-1] if self.stack else None
        return top is not None and isinstance(top.value, dict) and top.key is None

    def convert(self, tag: str, text: str, mark: Mark) -> Any:
        if tag in (_STR, _TIMESTAMP, _VALUE):
            return text
        if tag == _NULL:
            return None
        if tag == _INT:
            if len(text) > MAX_INT_CHARS:
                # Checked first: base-60 ints ("1:2:3...") convert in quadratic time.
                raise self.fail("integer too long", mark)
            if text.isdecimal() and text.isascii() and text[0] != "0":
                return int(text)  # the common case, without PyYAML's general conversion
        node = self.yaml.ScalarNode(tag, text)
        try:
            if tag == _BOOL:
                return self.constructor.construct_yaml_bool(node)
            if tag == _INT:
                return self.constructor.construct_yaml_int(node)
            number = self.constructor.construct_yaml_float(node)
        except (ValueError, KeyError, IndexError):
            kind = {_BOOL: "boolean", _INT: "integer"}.get(tag, "number")
            raise self.fail(f"not a valid {kind}: {text[:40]!r}", mark) from None
        if not math.isfinite(number):
            raise self.fail(
                f"{text!r} is not a finite number", mark,
                "JSON-compatible configs have no infinity or NaN; quote it to make it a string",
            )
        return number


_KIND_NAMES = {bool: "a boolean", int: "a number", float: "a number", type(None): "null"}
_TAG_HINT = "only plain data is accepted: strings, numbers, booleans, null, lists and mappings"


def _copy(value: Any) -> Any:
    """An independent copy of an aliased value (depth is bounded by the nesting limit)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
