"""The validation pipeline: version detection, schema layer, positions, formats."""

from __future__ import annotations

import json

import pytest

from provision.config.pipeline import parse_config
from provision.diagnostics import format_path


def _parse(text: str, name: str = "c.json"):  # type: ignore[no-untyped-def]
    return parse_config(text.encode(), name)


def test_minimal_config_is_valid_and_typed() -> None:
    parsed = _parse('{"provision": {"version": "1.0.0"}}')
    assert parsed.ok and parsed.kind == "provision" and parsed.version == "1.0.0"
    assert parsed.config is not None and parsed.config.storage.files == ()


def test_unknown_version_names_the_supported_ones() -> None:
    parsed = _parse('{"provision": {"version": "9.9.9"}}')
    [diag] = parsed.diagnostics
    assert "unsupported config version '9.9.9'" in diag.message
    assert diag.hint is not None and "1.0.0" in diag.hint
    assert diag.position is not None and diag.position.line == 1


def test_missing_version() -> None:
    parsed = _parse('{"provision": {}}')
    assert not parsed.ok
    assert parsed.diagnostics[0].message == "missing config version"


def test_unknown_key_points_at_the_key_with_a_suggestion() -> None:
    text = '{\n  "provision": {"version": "1.0.0"},\n  "storage": {\n    "files": [{"path": "/a", "Mode": 420}]\n  }\n}\n'
    parsed = _parse(text)
    [diag] = parsed.diagnostics
    assert diag.message == "unknown key 'Mode'"
    assert format_path(diag.path) == "$.storage.files[0].Mode"
    assert diag.hint == "did you mean 'mode'?"
    assert diag.position is not None
    assert (diag.position.line, diag.position.column) == (4, 30)  # the opening quote of "Mode"


def test_every_unknown_key_is_reported() -> None:
    parsed = _parse('{"provision": {"version": "1.0.0"}, "a": 1, "b": 2}')
    assert sorted(d.message for d in parsed.diagnostics) == ["unknown key 'a'", "unknown key 'b'"]


def test_type_error_does_not_echo_the_value() -> None:
    secret = "$6$salt$notreallyahashbutsecret"
    text = json.dumps({"provision": {"version": "1.0.0"}, "passwd": {"users": [{"name": "x", "uid": secret}]}})
    parsed = _parse(text)
    [diag] = parsed.diagnostics
    assert diag.message == "expected an integer, found a string"
    assert secret not in diag.message and secret not in (diag.hint or "")
    assert format_path(diag.path) == "$.passwd.users[0].uid"


def test_yaml_positions() -> None:
    text = "provision:\n  version: 1.0.0\nstorage:\n  files:\n    - path: /etc/x\n      mode: nope\n"
    parsed = _parse(text, "c.yaml")
    [diag] = parsed.diagnostics
    assert diag.file == "c.yaml"
    assert diag.position is not None and diag.position.line == 6


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"#part-handler\ndef list_types():\n    return []\n", "part handlers are Python code"),
        (b"#upstart-job\ndescription 'x'\n", "upstart is gone"),
        (b"Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n\n--x\n"
         b"Content-Type: text/x-unknown\n\nhello\n--x--\n", "text/x-unknown"),
        (b"#include ftp://example.com/x\n", "not a URL provision can fetch"),
    ],
)
def test_user_data_provision_cannot_honour_is_refused_clearly(payload: bytes, words: str) -> None:
    # The user-data formats themselves are translated (tests/test_userdata*.py); these parts are not.
    parsed = parse_config(payload, "user-data")
    assert not parsed.ok and parsed.kind == "user-data"
    assert words in parsed.diagnostics[0].message and parsed.diagnostics[0].position is not None


def test_unrecognised_document() -> None:
    parsed = _parse('{"hello": "world"}')
    assert not parsed.ok
    assert parsed.diagnostics[0].message == "not a recognised config"


def test_a_missing_semantic_check_module_fails_loudly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A broken installation must not pass every config: the validate command fails."""
    import subprocess
    import sys

    config = tmp_path / "bad.json"
    # Invalid only semantically (two files at one path): schema-valid.
    config.write_text(json.dumps({"provision": {"version": "1.0.0"}, "storage": {"files": [
        {"path": "/etc/a"}, {"path": "/etc/a"}]}}))
    hide_checks = (
        "import sys; sys.modules['provision.config.checks.passwd'] = None; "
        "from provision.cli import main; sys.exit(main(['validate', sys.argv[1]]))"
    )
    run = subprocess.run([sys.executable, "-c", hide_checks, str(config)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "internal error" in run.stderr and "ModuleNotFoundError" in run.stderr
    # The same config with the checks present is refused for what is wrong with it.
    ok = subprocess.run([sys.executable, "-m", "provision", "validate", str(config)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 1 and "internal error" not in ok.stderr
