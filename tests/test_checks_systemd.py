"""Semantic checks on systemd units and drop-ins, and the unit-file parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from checks_fixtures import only
from hypothesis import given
from hypothesis import strategies as st

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.diagnostics import Diagnostic, Severity
from provision.systemd_unit import UnitSyntaxError, parse_unit

SERVICE = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n"
NO_INSTALL = "[Service]\nExecStart=/bin/true\n"


def check(*units: dict[str, Any]) -> list[Diagnostic]:
    return run_checks(
        build_config({"provision": {"version": "1.0.0"}, "systemd": {"units": list(units)}})
    )


# --- parser ------------------------------------------------------------------


def test_parser_reads_sections_keys_comments_and_continuations() -> None:
    unit = parse_unit(
        "\ufeff# comment\n; another\n[Unit]\nDescription = web server \n"
        "[Service]\nExecStart=/usr/bin/web \\\n  --port 80 \\\n# skipped inside a continuation\n  --verbose\n"
        "Environment=A=1\nEnvironment=B=2\nExecStart=\n\n[Install]\nWantedBy=multi-user.target\r\n"
    )
    assert [s.name for s in unit.sections] == ["Unit", "Service", "Install"]
    assert unit.values("Unit", "Description") == ["web server"]
    assert unit.values("Service", "ExecStart") == ["/usr/bin/web  --port 80  --verbose", ""]
    assert unit.values("Service", "Environment") == ["A=1", "B=2"]
    assert unit.has_section("Install") and unit.values("Install", "WantedBy") == [
        "multi-user.target"
    ]
    assert unit.sections[1].line == 5 and unit.sections[1].entries[0].line == 6


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("Description=x\n[Unit]\n", 1, "outside of any [Section]"),
        ("[Unit]\nDescription\n", 2, "Key=value"),
        ("[Unit\nA=b\n", 1, "does not end with ']'"),
        ("[Unit]\n\n[]\n", 3, "invalid section name"),
        ("[Unit]\n=value\n", 2, "empty key"),
    ],
)
def test_parser_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(UnitSyntaxError) as info:
        parse_unit(text)
    assert info.value.line == line and message in info.value.message


@given(st.text(max_size=300))
def test_parser_either_parses_or_raises_a_positioned_error(text: str) -> None:
    try:
        unit = parse_unit(text)
    except UnitSyntaxError as exc:
        assert 1 <= exc.line <= text.count("\n") + 1
    else:
        assert all(s.name for s in unit.sections)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize(
    "text",
    [
        "[Unit]\nDescription=x \\\n  y\nBroken line\n[Service]\nExecStart=/bin/true\n",
        "Foo=bar\n[Service]\nExecStart=/bin/true\n",
        "[Unit]\n# c\n\n[Service\nExecStart=/bin/true\n",
    ],
)
def test_parser_reports_the_line_systemd_reports(tmp_path: Path, text: str) -> None:
    """systemd itself complains about the same line of the same text."""
    path = tmp_path / "agree.service"
    path.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    with pytest.raises(UnitSyntaxError) as info:
        parse_unit(text)
    assert f"{path}:{info.value.line}: " in proc.stderr, proc.stderr


# --- names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "web.service",
        "foo@.service",
        "foo@bar.service",
        "getty@tty1.service",
        "a:b_c-d.timer",
        "x.slice",
        "sys-kernel-debug.mount",
        "foo@a@b.service",
    ],
)
def test_valid_unit_names(name: str) -> None:
    assert check({"name": name}) == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("web", "no systemd unit extension"),
        (".service", "no systemd unit extension"),
        ("web.servce", "invalid systemd unit extension .servce"),
        ("web.snapshot", "invalid systemd unit extension"),
        ("../../etc/x.service", "invalid characters"),
        ("a b.service", "invalid characters"),
        ("@foo.service", "invalid characters"),
        ("foo@b/r.service", "invalid systemd instantiated unit"),
        ("a" * 250 + ".service", "longer than 255"),
    ],
)
def test_invalid_unit_names(name: str, text: str) -> None:
    only(check({"name": name}), Severity.ERROR, ("systemd", "units", 0, "name"), text)


def test_duplicate_unit_names() -> None:
    only(
        check({"name": "a.service"}, {"name": "a.service"}),
        Severity.ERROR,
        ("systemd", "units", 1, "name"),
        "duplicate unit name",
    )


def test_dropin_names() -> None:
    only(
        check({"name": "a.service", "dropins": [{"name": "10-x.txt"}]}),
        Severity.ERROR,
        ("systemd", "units", 0, "dropins", 0, "name"),
        ".conf",
    )
    only(
        check({"name": "a.service", "dropins": [{"name": "../x.conf"}]}),
        Severity.ERROR,
        ("systemd", "units", 0, "dropins", 0, "name"),
        "plain file name",
    )
    only(
        check({"name": "a.service", "dropins": [{"name": "x.conf"}, {"name": "x.conf"}]}),
        Severity.ERROR,
        ("systemd", "units", 0, "dropins", 1, "name"),
        "duplicate drop-in name",
    )
    assert (
        check({"name": "a.service", "dropins": [{"name": "10-x.conf"}, {"name": "20-y.conf"}]})
        == []
    )


# --- contents --------------------------------------------------------------


def test_unparsable_contents_name_the_line_inside_the_unit() -> None:
    diag = only(
        check(
            {"name": "a.service", "contents": "[Service]\nExecStart=/bin/true\nRestart always\n"}
        ),
        Severity.ERROR,
        ("systemd", "units", 0, "contents"),
        "line 3",
    )
    assert "Key=value" in diag.message
    only(
        check({"name": "a.service", "dropins": [{"name": "x.conf", "contents": "Nice=5\n"}]}),
        Severity.ERROR,
        ("systemd", "units", 0, "dropins", 0, "contents"),
        "invalid drop-in contents: line 1",
    )
    assert (
        check(
            {
                "name": "a.service",
                "contents": SERVICE,
                "dropins": [{"name": "x.conf", "contents": "[Service]\nNice=5\n"}],
            }
        )
        == []
    )


def test_mask_with_contents_is_allowed() -> None:
    assert check({"name": "a.service", "mask": True, "contents": SERVICE}) == []


# --- enabled without [Install] ---------------------------------------------


def test_enabled_without_install_section_warns() -> None:
    only(
        check({"name": "a.service", "enabled": True, "contents": NO_INSTALL}),
        Severity.WARNING,
        ("systemd", "units", 0, "enabled"),
        "no [Install] section",
    )
    assert check({"name": "a.service", "enabled": True, "contents": SERVICE}) == []
    assert check({"name": "a.service", "enabled": False, "contents": NO_INSTALL}) == []
    # Without contents the unit comes from the image: nothing to check.
    assert check({"name": "sshd.service", "enabled": True}) == []


def test_an_enabled_instance_of_a_template_without_install_warns() -> None:
    found = check(
        {"name": "getty@.service", "contents": NO_INSTALL},
        {"name": "getty@tty1.service", "enabled": True},
    )
    diag = only(found, Severity.WARNING, ("systemd", "units", 1, "enabled"), "template unit")
    assert "getty@.service" in diag.message
    assert (
        check(
            {"name": "getty@.service", "contents": SERVICE},
            {"name": "getty@tty1.service", "enabled": True},
        )
        == []
    )


def test_an_enabled_template_needs_a_default_instance() -> None:
    found = check({"name": "worker@.service", "enabled": True, "contents": SERVICE})
    diag = only(found, Severity.WARNING, ("systemd", "units", 0, "enabled"), "DefaultInstance")
    assert diag.hint is not None and "worker@name.service" in diag.hint
    with_default = SERVICE + "DefaultInstance=main\n"
    assert check({"name": "worker@.service", "enabled": True, "contents": with_default}) == []


# --- [Install] names become link names ----------------------------------------


@pytest.mark.parametrize(("install", "key"), [
    ("WantedBy=../../../../etc/evil.target", "WantedBy"),
    ("RequiredBy=multi-user.target/../x.target", "RequiredBy"),
    ("UpheldBy=a/b.target", "UpheldBy"),
    ("Alias=../../x.service", "Alias"),
    ("Also=../y.service", "Also"),
    ("DefaultInstance=../../etc/evil", "DefaultInstance"),
    ("DefaultInstance=a/b", "DefaultInstance"),
    ("WantedBy=multi-user.target ..", "WantedBy"),
])
def test_install_values_that_are_not_unit_names_are_errors_at_their_line(install: str, key: str) -> None:
    text = SERVICE.replace("WantedBy=multi-user.target\n", "") + install + "\n"
    line = text.count("\n")  # the last line
    found = check({"name": "t@.service", "contents": text})
    only(found, Severity.ERROR, ("systemd", "units", 0, "contents"), f"line {line}: {key}=")


def test_install_values_with_specifiers_are_checked_after_expansion() -> None:
    ok = SERVICE + "Alias=%p-alias.service\nDefaultInstance=tty1\nWantedBy=%p-%i.target\n"
    assert check({"name": "getty@.service", "contents": ok}) == []
    bad = SERVICE + "DefaultInstance=x\nAlias=%i/../z.service\n"
    only(check({"name": "t@.service", "contents": bad}), Severity.ERROR, ("systemd", "units", 0, "contents"),
         "Alias=%i/../z.service")


def test_install_values_in_dropins_are_checked() -> None:
    found = check({"name": "a.service", "dropins": [{"name": "x.conf", "contents": "[Install]\nAlias=../b.service\n"}]})
    only(found, Severity.ERROR, ("systemd", "units", 0, "dropins", 0, "contents"), "line 2: Alias=../b.service")


def test_nul_in_unit_or_dropin_contents_is_an_error() -> None:
    found = check({"name": "a.service", "contents": SERVICE + "# \0\n"})
    only(found, Severity.ERROR, ("systemd", "units", 0, "contents"), "NUL")
    found = check({"name": "a.service", "dropins": [{"name": "x.conf", "contents": "[Service]\nUser=a\0b\n"}]})
    only(found, Severity.ERROR, ("systemd", "units", 0, "dropins", 0, "contents"), "NUL")


def test_dropin_names_over_name_max_are_errors() -> None:
    found = check({"name": "a.service", "dropins": [{"name": "d" * 252 + ".conf", "contents": "[Unit]\n"}]})
    only(found, Severity.ERROR, ("systemd", "units", 0, "dropins", 0, "name"), "longer than 255 bytes")


@pytest.mark.parametrize("fmt", ["own", "ignition", "human"])
def test_install_names_are_checked_from_every_format(fmt: str) -> None:
    import json

    from provision.config.pipeline import parse_config

    contents = SERVICE.replace("WantedBy=multi-user.target", "WantedBy=../../../etc/evil.target")
    unit = {"name": "a.service", "enabled": True, "contents": contents}
    if fmt == "human":
        data = ("variant: provision\nversion: 1.0.0\nsystemd:\n  units:\n    - name: a.service\n"
                "      enabled: true\n      contents: " + json.dumps(contents) + "\n").encode()
        line = 7
    else:
        head = {"provision": {"version": "1.0.0"}} if fmt == "own" else {"ignition": {"version": "3.4.0"}}
        data = json.dumps({**head, "systemd": {"units": [unit]}}, indent=1).encode()
        line = next(n for n, text in enumerate(data.decode().splitlines(), 1) if '"contents"' in text)
    parsed = parse_config(data, "config")
    found = [d for d in parsed.diagnostics if d.is_error]
    assert len(found) == 1 and "WantedBy=../../../etc/evil.target" in found[0].message, found
    assert found[0].position is not None and found[0].position.line == line
