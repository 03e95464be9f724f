"""Document.locate / locate_key: where values and keys are, for JSON and YAML."""

from __future__ import annotations

import pytest

from provision.diagnostics import ConfigPath, Position
from provision.source.json_positions import scan
from provision.source.loader import load_document
from provision.source.positions import LineIndex

JSON = b"""\
{
  "storage": {
    "files": [
      {"path": "/etc/a", "mode": 420},
      {
        "path": "/etc/b",
        "contents": {"source": "data:,x"}
      }
    ]
  },
  "k\\u00e9y": "v\xc3\xa9",
  "after": [[1, 2], [3, [4, 5]]]
}
"""

YAML = b"""\
storage:
  files:
    - path: /etc/a
      mode: 420
    - path: /etc/b
      contents:
        source: "data:,x"
passwd:
  users: [{name: core}, {name: admin, groups: [wheel]}]
shared: &shared
  image: nginx
containers:
  - *shared
"""


@pytest.mark.parametrize(
    ("path", "value_at", "key_at"),
    [
        ((), (1, 1), (1, 1)),
        (("storage",), (2, 14), (2, 3)),
        (("storage", "files"), (3, 14), (3, 5)),
        (("storage", "files", 0), (4, 7), (4, 7)),  # list items have no key: the value
        (("storage", "files", 0, "mode"), (4, 34), (4, 26)),
        (("storage", "files", 1), (5, 7), (5, 7)),
        (("storage", "files", 1, "contents", "source"), (7, 32), (7, 22)),
        (("k\u00e9y",), (11, 15), (11, 3)),  # an escaped key, matched by its decoded text
        (("after", 1, 1, 0), (12, 26), (12, 26)),
    ],
)
def test_json_positions(
    path: ConfigPath, value_at: tuple[int, int], key_at: tuple[int, int]
) -> None:
    doc = load_document(JSON, "c.json")
    assert doc.locate(path) == Position(*value_at)
    assert doc.locate_key(path) == Position(*key_at)


@pytest.mark.parametrize(
    ("path", "nearest"),
    [
        (("storage", "files", 7, "mode"), ("storage", "files")),  # index out of range
        (("storage", "files", 0, "nope"), ("storage", "files", 0)),  # missing key
        (("storage", "files", "0"), ("storage", "files")),  # a key where a list is
        (("after", 0, 1, 0), ("after", 0, 1)),  # into a scalar
        (("nope",), ()),
    ],
)
def test_json_missing_path_gives_the_nearest_ancestor(path: ConfigPath, nearest: ConfigPath) -> None:
    doc = load_document(JSON, "c.json")
    assert doc.locate(path) == doc.locate(nearest)
    assert doc.locate_key(path) == doc.locate(nearest)


@pytest.mark.parametrize(
    ("path", "value_at", "key_at"),
    [
        ((), (1, 1), (1, 1)),
        (("storage", "files"), (3, 5), (2, 3)),
        (("storage", "files", 1), (5, 7), (5, 7)),
        (("storage", "files", 1, "path"), (5, 13), (5, 7)),
        (("storage", "files", 0, "mode"), (4, 13), (4, 7)),
        (("storage", "files", 1, "contents", "source"), (7, 17), (7, 9)),
        (("passwd", "users", 1, "groups", 0), (9, 48), (9, 48)),
        (("passwd", "users", 1, "groups"), (9, 47), (9, 39)),
        (("containers", 0), (13, 5), (13, 5)),  # the alias itself
        (("containers", 0, "image"), (11, 10), (11, 3)),  # inside: where the anchor defined it
    ],
)
def test_yaml_positions(
    path: ConfigPath, value_at: tuple[int, int], key_at: tuple[int, int]
) -> None:
    doc = load_document(YAML, "c.yaml")
    assert doc.format == "yaml"
    assert doc.locate(path) == Position(*value_at)
    assert doc.locate_key(path) == Position(*key_at)


def test_yaml_missing_path_gives_the_nearest_ancestor() -> None:
    doc = load_document(YAML, "c.yaml")
    assert doc.locate(("passwd", "users", 5)) == Position(9, 10)
    assert doc.locate_key(("storage", "files", 0, "owner")) == Position(3, 7)


def test_yaml_merged_keys_point_at_their_source() -> None:
    doc = load_document(b"base: &b\n  mode: 420\nfile:\n  <<: *b\n  path: /x\n", "c")
    assert doc.value["file"] == {"path": "/x", "mode": 420}
    assert doc.locate_key(("file", "mode")) == Position(2, 3)
    assert doc.locate(("file", "path")) == Position(5, 9)


def test_crlf_line_endings() -> None:
    doc = load_document(b'{\r\n  "a": 1,\r\n  "b": [true]\r\n}\r\n', "c")
    assert doc.locate(("b", 0)) == Position(3, 9)
    ydoc = load_document(b"a: 1\r\nb:\r\n  - true\r\n", "c")
    assert ydoc.locate(("b", 0)) == Position(3, 5)


def test_non_ascii_columns_count_characters() -> None:
    doc = load_document('{"é€😀": "ü", "x": 1}'.encode(), "c")
    assert doc.locate(("x",)) == Position(1, 19)
    ydoc = load_document("é€😀: ü\nx: [ö, 1]\n".encode(), "c")
    assert ydoc.locate(("x", 1)) == Position(2, 8)


def test_scanner_survives_malformed_text() -> None:
    # Used only on JSON that json.loads had trouble with: it must never raise.
    for text in ['{"a": [1, }', "]]]", '{"a" "b"}', '"unterminated', "{:", "{,}", "[1 2]", "\\"]:
        result = scan(text, 64)
        assert result.too_deep_at is None


def test_line_index() -> None:
    index = LineIndex("ab\ncd\n\nef")
    assert [index.position(i) for i in (0, 1, 3, 6, 7, 8)] == [
        Position(1, 1), Position(1, 2), Position(2, 1), Position(3, 1), Position(4, 1), Position(4, 2),
    ]


def test_snippet_lines_match_position_lines() -> None:
    # LS (U+2028) splits lines for str.splitlines() and YAML, but not for JSON
    # positions. The caret must land on the right line either way.
    from provision.diagnostics import error, render_text

    doc = load_document('{"a": "x\u2028y",\n "b": [1, 2]}'.encode(), "c.json")
    where = doc.locate(("b", 1))
    assert where == Position(2, 11)
    shown = render_text(error("here").at("c.json", where), doc.lines).splitlines()
    assert shown[1].endswith('|  "b": [1, 2]}')
    assert shown[2].index("^") == shown[1].index("2]")

    ydoc = load_document("a: x\u2028b: [1, 2]\n".encode(), "c.yaml")
    assert ydoc.value == {"a": "x", "b": [1, 2]}
    assert ydoc.locate(("b", 1)) == Position(2, 8)
    assert ydoc.lines[1] == "b: [1, 2]"
