"""load_document and read_config_file: every way input can be wrong, with its position."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provision.diagnostics import Diagnostic, Position
from provision.errors import ConfigError, UsageError
from provision.source.loader import MAX_CONFIG_BYTES, MAX_DEPTH, load_document, read_config_file


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """YAML behaviour must not depend on whether PyYAML was built with libyaml."""
    if request.param == "pure-python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    yield request.param


def only_error(data: bytes, name: str = "conf") -> Diagnostic:
    with pytest.raises(ConfigError) as caught:
        load_document(data, name)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.file == name
    assert diagnostic.is_error
    return diagnostic


def at(diagnostic: Diagnostic) -> tuple[int, int]:
    assert diagnostic.position is not None
    return diagnostic.position.line, diagnostic.position.column


# -- text and encoding ---------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", b"\xef\xbb\xbf\n"])
def test_empty_or_blank_input_is_an_empty_config(data: bytes) -> None:
    d = only_error(data)
    assert d.message == "config is empty"
    assert at(d) == (1, 1)


@pytest.mark.parametrize("data", [b"# just a comment\n", b"---\n", b"--- # nothing\n...\n"])
def test_yaml_without_content_is_an_empty_config(data: bytes, yaml_parser: str) -> None:
    assert only_error(data).message == "config is empty"


def test_nul_byte_is_reported_at_its_line_and_column() -> None:
    d = only_error(b'{"a": 1,\n  "b": "x\x00y"}')
    assert d.message == "config contains a NUL byte"
    assert at(d) == (2, 10)
    assert d.hint is not None and "binary" in d.hint


def test_invalid_utf8_is_reported_at_the_bad_byte() -> None:
    # "é" (2 bytes) counts as one column; the stray 0xff is the 5th character of line 3.
    d = only_error(b"a: 1\nb: 2\n\xc3\xa9: \xff\n")
    assert d.message == "config is not valid UTF-8 (byte 0xff)"
    assert at(d) == (3, 4)


def test_random_binary_gets_a_clear_error() -> None:
    d = only_error(bytes(range(256)) * 4)
    assert "NUL byte" in d.message
    assert at(d) == (1, 1)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [("{}".encode("utf-16"), "UTF-16"), ("{}".encode("utf-32"), "UTF-32")],
)
def test_utf16_and_utf32_are_named(data: bytes, encoding: str) -> None:
    d = only_error(data)
    assert d.message == f"config is {encoding} text; only UTF-8 is accepted"


def test_utf8_bom_is_accepted_and_not_counted_as_a_column() -> None:
    doc = load_document(b'\xef\xbb\xbf{"a": [1, 2]}', "c")
    assert doc.value == {"a": [1, 2]}
    assert doc.locate(("a", 1)) == Position(1, 11)


def test_over_the_size_limit_is_refused_before_parsing() -> None:
    d = only_error(b"#" * (MAX_CONFIG_BYTES + 1))
    assert d.message == "config is larger than 16 MiB"
    assert at(d) == (1, 1)


def test_exactly_at_the_size_limit_is_parsed() -> None:
    body = b'{"a": "' + b"x" * (MAX_CONFIG_BYTES - 10) + b'"}'
    assert len(body) == MAX_CONFIG_BYTES - 1
    assert len(load_document(body, "c").value["a"]) == MAX_CONFIG_BYTES - 10


# -- format detection ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b'{"a": 1}', "json"),
        (b"\n\n  [1, 2]", "json"),
        (b"a: 1", "yaml"),
        (b"# comment\n{a: 1}", "yaml"),  # a YAML comment first: YAML flow mapping
        (b'"just a string"', "yaml"),
    ],
)
def test_format_is_json_when_the_text_starts_with_a_bracket(data: bytes, fmt: str) -> None:
    assert load_document(data, "c").format == fmt


def test_json_error_is_reported_as_json_not_yaml() -> None:
    d = only_error(b'{\n  "a": 1\n  "b": 2\n}')
    assert d.message == "invalid JSON: expecting ',' delimiter"
    assert at(d) == (3, 3)


# -- JSON syntax ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "where", "hint_word"),
    [
        ('{"a": [1, 2,]}', "invalid JSON: expecting value", (1, 13), "comma"),
        ('{"a": 1,\n}', "invalid JSON: expecting property name enclosed in double quotes", (2, 1), "comma"),
        ("{'a': 1}", "invalid JSON: expecting property name enclosed in double quotes", (1, 2), "double quotes"),
        ('{"a": 1, // note\n "b": 2}', "invalid JSON: expecting property name enclosed in double quotes", (1, 10), "comments"),
        ('{"a": 1} {"b": 2}', "invalid JSON: unexpected text after the end of the JSON document", (1, 10), None),
        ('{"a": [1, 2\n', "invalid JSON: unexpected end of input", (2, 1), "not closed"),
        ('{"a": "line\nbreak"}', "invalid JSON: invalid control character in string", (1, 12), "\\n"),
        ('{"a": NaN}', "invalid JSON: NaN is not valid JSON", (1, 7), "NaN"),
        ('{"a":\n  -Infinity}', "invalid JSON: -Infinity is not valid JSON", (2, 3), "Infinity"),
        ('[1, 2e999]', "invalid JSON: 2e999 is too large a number", (1, 5), None),
        ('{"a": "\\ud800 x"}', "invalid JSON: unpaired UTF-16 surrogate \\ud800", (1, 8), None),
        ('{"a": "ok \\udc00"}', "invalid JSON: unpaired UTF-16 surrogate \\udc00", (1, 11), None),
    ],
)
def test_json_syntax_errors(
    text: str, message: str, where: tuple[int, int], hint_word: str | None
) -> None:
    d = only_error(text.encode(), "conf.json")
    assert d.message == message
    assert at(d) == where
    if hint_word:
        assert d.hint is not None and hint_word in d.hint


@pytest.mark.parametrize("name", ["user-data", "c.yaml", "stdin"])
def test_json_lookalike_that_is_yaml_is_read_as_yaml_unless_named_json(name: str) -> None:
    text = b"{storage: {files: [{path: /a, mode: 0644},]}}"
    doc = load_document(text, name)
    assert doc.format == "yaml"
    assert doc.value == {"storage": {"files": [{"path": "/a", "mode": 0o644}]}}
    d = only_error(text, "c.json")
    assert d.message == "invalid JSON: expecting property name enclosed in double quotes"
    assert at(d) == (1, 2)


def test_json_error_is_kept_when_yaml_fails_too() -> None:
    d = only_error(b'{"a": 1,\n "b": 2 "c": 3}', "user-data")
    assert d.message == "invalid JSON: expecting ',' delimiter"
    assert at(d) == (2, 9)


def test_many_surrogate_pairs_load_in_linear_time() -> None:
    # 2 MB of escaped emoji: a quadratic check would not finish.
    pairs = "\\ud83d\\ude00" * 170_000
    doc = load_document(('{"a": "' + pairs + '"}').encode(), "c")
    assert doc.value["a"] == "\U0001F600" * 170_000


def test_json_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    doc = load_document(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}', "c")
    assert doc.value == {"a": "\U0001F600", "b": "\\ud800"}


def test_json_overlong_integer_is_an_error_not_a_crash() -> None:
    d = only_error(b'{"a":\n 1' + b"2" * 5000 + b"}")
    assert d.message.startswith("invalid JSON: 1222")
    assert d.message.endswith("is an integer longer than 4300 digits")
    assert at(d) == (2, 2)


def test_json_duplicate_keys_name_both_positions() -> None:
    text = b'{\n  "storage": {\n    "files": [],\n    "files": [1]\n  }\n}'
    d = only_error(text)
    assert d.message == "duplicate key 'files' (first defined at line 3, column 5)"
    assert d.path == ("storage", "files")
    assert at(d) == (4, 5)
    assert d.related == (("conf", Position(3, 5)),)


def test_json_every_duplicate_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_document(b'[{"a": 1, "a": 2}, {"b": {"c": 1, "c": 1}}]', "c")
    found = [(d.path, at(d)) for d in caught.value.diagnostics]
    assert found == [((0, "a"), (1, 11)), ((1, "b", "c"), (1, 35))]


def test_many_duplicates_are_summarised() -> None:
    members = ", ".join(f'"k{i % 5}": {i}' for i in range(100))
    with pytest.raises(ConfigError) as caught:
        load_document(("{" + members + "}").encode(), "c")
    found = caught.value.diagnostics
    assert len(found) == 21
    assert all(d.message.startswith("duplicate key") for d in found[:20])
    assert found[20].message == "75 more duplicate keys"


def test_json_nesting_limit() -> None:
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    load_document(ok, "c")
    d = only_error(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert d.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert at(d) == (1, MAX_DEPTH + 1)


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_json_very_deep_nesting_never_recurses(opener: bytes) -> None:
    # Far past Python's recursion limit, and unclosed.
    d = only_error(opener * 200_000)
    assert d.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert at(d) == (1, len(opener) * MAX_DEPTH + 1)  # the first bracket too many


# -- YAML ----------------------------------------------------------------------


def test_yaml_values_are_plain_data(yaml_parser: str) -> None:
    text = b"""\
name: web
count: 3
ratio: 0.5
on_boot: true
nothing: ~
mode: 0644
when: 2001-12-14
quoted: "yes"
list: [a, 1, null]
"""
    assert load_document(text, "c").value == {
        "name": "web",
        "count": 3,
        "ratio": 0.5,
        "on_boot": True,
        "nothing": None,
        "mode": 0o644,  # YAML 1.1 octal, as Butane users write file modes
        "when": "2001-12-14",  # timestamps stay strings
        "quoted": "yes",
        "list": ["a", 1, None],
    }


def test_yaml_syntax_error_has_position(yaml_parser: str) -> None:
    d = only_error(b"storage:\n  files:\n    - path: /a\n   mode: 420\n")
    assert d.message.startswith("invalid YAML: ")
    assert at(d)[0] == 4


def test_yaml_tab_indentation_hint(yaml_parser: str) -> None:
    d = only_error(b"a:\n\tb: 1\n")
    assert d.hint == "YAML indentation uses spaces, not tabs"
    assert at(d) == (2, 1)


def test_yaml_control_character(yaml_parser: str) -> None:
    d = only_error("é: 1\nb: x\x01\n".encode())
    assert d.message == "invalid YAML: character U+0001 is not allowed"
    assert at(d) == (2, 5)


def test_yaml_duplicate_keys_name_both_positions(yaml_parser: str) -> None:
    d = only_error(b"passwd:\n  users:\n    - name: core\n      name: admin\n")
    assert d.message == "duplicate key 'name' (first defined at line 3, column 7)"
    assert d.path == ("passwd", "users", 0, "name")
    assert at(d) == (4, 7)
    assert d.related == (("conf", Position(3, 7)),)


def test_yaml_second_document_is_an_error(yaml_parser: str) -> None:
    d = only_error(b"a: 1\n---\nb: 2\n")
    assert d.message == "expected one YAML document, found a second one"
    assert at(d) == (2, 1)


@pytest.mark.parametrize(
    ("text", "written", "kind", "where"),
    [
        (b"1: x\n", "1", "a number", (1, 1)),
        (b"a:\n  yes: x\n", "yes", "a boolean", (2, 3)),
        (b"~: x\n", "~", "null", (1, 1)),
    ],
)
def test_yaml_keys_must_be_strings(
    text: bytes, written: str, kind: str, where: tuple[int, int], yaml_parser: str
) -> None:
    d = only_error(text)
    assert d.message == f"mapping keys must be strings; {written!r} is read as {kind}"
    assert d.hint == f'quote the key: "{written}":'
    assert at(d) == where


def test_yaml_complex_keys_are_refused(yaml_parser: str) -> None:
    d = only_error(b"? [a, b]\n: 1\n")
    assert d.message == "mapping keys must be strings, not lists or mappings"


@pytest.mark.parametrize(
    "text",
    [b"a: !!python/object:os.system {}\n", b"a: !!binary aGVsbG8=\n", b"a: !Ref x\n", b"a: !!set {x}\n"],
)
def test_yaml_unsafe_or_unknown_tags_are_refused(text: bytes, yaml_parser: str) -> None:
    d = only_error(text)
    assert d.message.startswith("unsupported YAML tag ")
    assert at(d) == (1, 4)


@pytest.mark.parametrize("text", [b"a: .inf\n", b"a: -.Inf\n", b"a: .nan\n"])
def test_yaml_non_finite_numbers_are_refused(text: bytes, yaml_parser: str) -> None:
    assert only_error(text).message.endswith("is not a finite number")


def test_yaml_overlong_integer(yaml_parser: str) -> None:
    d = only_error(b"a: " + b"9" * 5000 + b"\n")
    assert d.message == "integer too long"
    assert at(d) == (1, 4)


def test_yaml_long_base60_integer_is_refused_before_conversion(yaml_parser: str) -> None:
    # "1:2:3:..." is a YAML 1.1 integer; converting 1 MB of it would take hours.
    d = only_error(b"a: 1" + b":30" * 300_000 + b"\n")
    assert d.message == "integer too long"
    assert at(d) == (1, 4)


def test_yaml_many_duplicates_are_summarised(yaml_parser: str) -> None:
    text = "".join(f"k{i % 5}: {i}\n" for i in range(100)).encode()
    with pytest.raises(ConfigError) as caught:
        load_document(text, "c")
    assert len(caught.value.diagnostics) == 21
    assert caught.value.diagnostics[20].message == "75 more duplicate keys"


def test_yaml_anchors_aliases_and_merge_keys_work(yaml_parser: str) -> None:
    text = b"""\
defaults: &defaults
  mode: 420
  overwrite: true
files:
  - <<: *defaults
    path: /a
  - <<: *defaults
    path: /b
    mode: 384
"""
    value = load_document(text, "c").value
    assert value["files"] == [
        {"path": "/a", "mode": 420, "overwrite": True},
        {"path": "/b", "mode": 384, "overwrite": True},
    ]
    # Aliased values are independent copies: changing one changes no other.
    value["files"][0]["mode"] = 1
    assert value["defaults"]["mode"] == 420 and value["files"][1]["mode"] == 384


def test_yaml_undefined_alias(yaml_parser: str) -> None:
    d = only_error(b"a: *nowhere\n")
    assert d.message in ("unknown YAML alias *nowhere", "invalid YAML: found undefined alias")


def test_yaml_recursive_alias_is_refused(yaml_parser: str) -> None:
    with pytest.raises(ConfigError):
        load_document(b"a: &x [1, *x]\n", "c")


def billion_laughs(levels: int) -> bytes:
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * 10)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


def test_yaml_alias_bomb_is_stopped(yaml_parser: str) -> None:
    d = only_error(billion_laughs(10))  # 10**9 values if expanded
    assert d.message == "YAML aliases expand to more than 100000 values"
    assert d.hint is not None and "alias bomb" in d.hint
    # The budget runs out on line 6, where aliases first add up to over 100,000 values.
    assert at(d)[0] == 6


def test_yaml_moderate_alias_use_is_fine(yaml_parser: str) -> None:
    value = load_document(billion_laughs(4), "c").value  # 1,000 strings
    assert len(value["l3"]) == 10 and value["l3"][9][9] == ["lol"] * 10


def test_yaml_nesting_limit(yaml_parser: str) -> None:
    load_document(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "c")
    # The mapping is the first level, so the 64th bracket is one too many.
    d = only_error(b"a:\n  " + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"\n")
    assert d.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert d.path == ("a",) + (0,) * (MAX_DEPTH - 1)
    assert at(d) == (2, 2 + MAX_DEPTH)


def test_yaml_very_deep_nesting_never_crashes(yaml_parser: str) -> None:
    # libyaml's own composer segfaults on this; ours stops at the limit.
    d = only_error(b"x: " + b"[" * 200_000)
    assert d.message == f"nesting deeper than {MAX_DEPTH} levels"


def test_yaml_nesting_through_aliases_counts(yaml_parser: str) -> None:
    deep = b"[" * 40 + b"]" * 40
    d = only_error(b"a: &a " + deep + b"\nb: " + b"[" * 30 + b"*a" + b"]" * 30 + b"\n")
    assert d.message == f"nesting deeper than {MAX_DEPTH} levels (through alias *a)"


def test_yaml_scalar_document_is_returned_for_the_schema_to_judge(yaml_parser: str) -> None:
    assert load_document(b"hello\n", "c").value == "hello"


# -- reading files ---------------------------------------------------------------


def test_read_a_file(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_bytes(b"{}")
    assert read_config_file(str(tmp_path / "c.json")) == b"{}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"/nope\.json: no such file$") as caught:
        read_config_file(str(tmp_path / "nope.json"))
    assert caught.value.exit_status == 2


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r": is a directory, not a config file$"):
        read_config_file(str(tmp_path))


def test_path_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(UsageError, match=r"/f/c\.json: cannot read: Not a directory$"):
        read_config_file(str(tmp_path / "f" / "c.json"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_permission_denied(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_bytes(b"{}")
    secret.chmod(0o000)
    tmp_path.chmod(0o755)
    pid = os.fork()
    if pid == 0:  # child: become nobody, then try
        code = 3
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            read_config_file(str(secret))
        except UsageError as exc:
            code = 0 if str(exc).endswith("secret.json: permission denied") else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_huge_file_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024)  # sparse: 50 MB of zeros
    data = read_config_file(str(big))
    assert len(data) == MAX_CONFIG_BYTES + 1
    assert only_error(data).message == "config is larger than 16 MiB"


def test_nul_in_path() -> None:
    with pytest.raises(UsageError, match="not a valid file name"):
        read_config_file("a\0b")


def test_closed_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(UsageError, match="standard input is closed"):
        read_config_file("-")


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a: 1\n")))
    assert read_config_file("-") == b"a: 1\n"


def test_json_fast_path_does_not_scan_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.source import json_positions

    calls: list[str] = []
    real_scan = json_positions.scan

    def counting_scan(text: str, max_depth: int) -> json_positions.Scan:
        calls.append(text)
        return real_scan(text, max_depth)

    monkeypatch.setattr(json_positions, "scan", counting_scan)
    doc = load_document(b'{"a": {"b": [1, 2]}}', "c")
    assert calls == []
    assert doc.locate(("a", "b", 1)) == Position(1, 17)
    assert doc.locate(("a",)) == Position(1, 7)
    assert len(calls) == 1  # one scan serves every later lookup


def test_json_input_does_not_import_yaml() -> None:
    code = (
        "import sys; from provision.source.loader import load_document;"
        "load_document(b'{\"a\": 1}', 'c'); print('yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"



def test_yaml_alias_to_a_mapping_as_a_key_is_refused(yaml_parser: str) -> None:
    d = only_error(b"a: &m {x: 1}\nb:\n  *m : 2\n")
    assert d.message == "mapping keys must be strings, not lists or mappings"
    assert at(d) == (3, 3)


def test_json_lookalike_yaml_reports_its_yaml_problems() -> None:
    # Not JSON (unquoted keys) but YAML with a duplicate key: that is the error to report.
    d = only_error(b"{a: 1,\n a: 2}", "user-data")
    assert d.message == "duplicate key 'a' (first defined at line 1, column 2)"
    assert at(d) == (2, 2)
