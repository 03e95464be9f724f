"""What validate accepts, apply can apply: account fields and paths that would corrupt
passwd/group/shadow/authorized_keys, or that the kernel refuses, are errors at validate,
with the position of the value, from every input format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from accounts_fixtures import make_debian_root
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.config.pipeline import parse_config
from provision.diagnostics import Diagnostic, Severity
from provision.errors import ProvisionError
from provision.stages.base import Target
from provision.stages.users import UsersStage

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f core@laptop"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/ core@desk"
INJECTED = KEY + '\ncommand="/bin/sh -c evil" ' + KEY2
U = ("passwd", "users", 0)


def errors(passwd: dict[str, object]) -> list[Diagnostic]:
    config = build_config({"provision": {"version": "1.0.0"}, "passwd": passwd})
    return [d for d in run_checks(config) if d.severity is Severity.ERROR]


@pytest.mark.parametrize(("user", "key", "text"), [
    ({"primaryGroup": "a:b"}, "primaryGroup", "invalid name"),
    ({"primaryGroup": "a\nb"}, "primaryGroup", "invalid name"),
    ({"primaryGroup": "4294967295"}, "primaryGroup", "out of range"),
    ({"groups": ["wheel", "x:y"]}, "groups", "invalid group name"),
    ({"groups": ["a,b"]}, "groups", "invalid group name"),
    ({"gecos": "a:b"}, "gecos", "':'"),
    ({"gecos": "a\x00b"}, "gecos", "NUL"),
    ({"homeDir": "/home/a:b"}, "homeDir", "':'"),
    ({"shell": "/bin/sh\n"}, "shell", "line break"),
    ({"passwordHash": "$6$salt$" + "a" * 86 + ":0:0"}, "passwordHash", "':'"),
    ({"passwordHash": "!\n"}, "passwordHash", "line break"),
    ({"sshAuthorizedKeys": [INJECTED]}, "sshAuthorizedKeys", "line break"),
    ({"homeDir": "/home/" + "x" * 256}, "homeDir", "component is 256 bytes"),
    ({"homeDir": "/" + "/".join(["d" * 200] * 21)}, "homeDir", "limit is 4095"),
])
def test_user_fields_that_would_corrupt_a_database_are_errors(user: dict[str, object], key: str, text: str) -> None:
    found = errors({"users": [{"name": "core", **user}]})
    assert len(found) == 1, found
    assert found[0].path[:4] == (*U, key) and text in found[0].message, found[0]
    assert "$6$salt$" not in found[0].message  # a hash is never quoted


@pytest.mark.parametrize(("passwd", "path"), [
    ({"users": [{"name": "core\n"}]}, (*U, "name")),
    ({"users": [{"name": "core", "primaryGroup": "wheel\n"}]}, (*U, "primaryGroup")),
    ({"users": [{"name": "core", "groups": ["wheel\n"]}]}, (*U, "groups", 0)),
    ({"groups": [{"name": "ops\n"}]}, ("passwd", "groups", 0, "name")),
])
def test_a_trailing_newline_does_not_slip_past_the_name_pattern(
    passwd: dict[str, object], path: tuple[object, ...]
) -> None:
    """re.match's "$" matches before a final newline: names are matched whole."""
    assert [d.path for d in errors(passwd)] == [path]


def test_unit_instance_with_a_trailing_newline_is_invalid() -> None:
    from provision.systemd_unit import instance_problem, unit_name_problem

    assert instance_problem("tty1\n") is not None
    assert unit_name_problem("getty@tty1\n.service") is not None
    assert unit_name_problem("getty@tty1.service") is None


def test_group_hash_that_would_corrupt_gshadow_is_an_error() -> None:
    found = errors({"groups": [{"name": "ops", "passwordHash": "x:y"}]})
    assert [d.path for d in found] == [("passwd", "groups", 0, "passwordHash")]


def test_numeric_primary_group_is_a_gid() -> None:
    assert errors({"users": [{"name": "core", "primaryGroup": "100"}]}) == []


@pytest.mark.parametrize("path", ["/etc/" + "n" * 256, "/" + "/".join(["d" * 250] * 17)])
def test_paths_the_kernel_refuses_are_errors(path: str) -> None:
    config = build_config({"provision": {"version": "1.0.0"}, "storage": {"files": [{"path": path}],
                                                                           "directories": [{"path": path + "d"}]}})
    found = [d for d in run_checks(config) if d.severity is Severity.ERROR]
    assert {d.path for d in found} == {("storage", "files", 0, "path"), ("storage", "directories", 0, "path")}
    assert all("bytes long" in d.message for d in found)


def test_multibyte_names_are_measured_in_bytes() -> None:
    fits = "/etc/" + "é" * 127  # 254 bytes
    too_long = "/etc/" + "é" * 128  # 256 bytes, 128 characters
    base = {"provision": {"version": "1.0.0"}}
    assert run_checks(build_config({**base, "storage": {"files": [{"path": fits}]}})) == []
    found = run_checks(build_config({**base, "storage": {"files": [{"path": too_long}]}}))
    assert [d.message for d in found] == ["a path component is 256 bytes long; the limit is 255"]


# ---- every format reaches the checks, with the value's position ----------------

def _ignition(users: list[dict[str, object]]) -> bytes:
    return json.dumps({"ignition": {"version": "3.4.0"}, "passwd": {"users": users}}, indent=1).encode()


def _line_of(data: bytes, text: str) -> int:
    return next(n for n, line in enumerate(data.decode().splitlines(), 1) if text in line)


OWN = json.dumps({"provision": {"version": "1.0.0"}, "passwd": {"users": [
    {"name": "core", "primaryGroup": "a:b", "sshAuthorizedKeys": [INJECTED]}]}}, indent=1).encode()
IGNITION = _ignition([{"name": "core", "primaryGroup": "a:b", "sshAuthorizedKeys": [INJECTED]}])
FORMATS = {
    "own": (OWN, {"primaryGroup": _line_of(OWN, "primaryGroup"), "sshAuthorizedKeys": _line_of(OWN, "ssh-ed25519")}),
    "ignition": (IGNITION, {"primaryGroup": _line_of(IGNITION, "primaryGroup"),
                            "sshAuthorizedKeys": _line_of(IGNITION, "ssh-ed25519")}),
    "human": (("variant: provision\nversion: 1.0.0\npasswd:\n  users:\n    - name: core\n"
               '      primary_group: "a:b"\n      ssh_authorized_keys:\n        - '
               + json.dumps(INJECTED) + "\n").encode(),
              {"primaryGroup": 6, "sshAuthorizedKeys": 8}),
    "cloud-config": (("#cloud-config\nusers:\n  - name: core\n    primary_group: \"a:b\"\n"
                      "    ssh_authorized_keys:\n      - " + json.dumps(INJECTED) + "\n").encode(),
                     {"primaryGroup": 4, "sshAuthorizedKeys": 6}),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_refuses_at_validate_with_positions(fmt: str) -> None:
    data, lines = FORMATS[fmt]
    parsed = parse_config(data, "config")
    assert not parsed.ok
    errors = [d for d in parsed.diagnostics if d.is_error]
    # (cloud-config also creates the primary group, so its name may be reported twice, same place)
    found = {("sshAuthorizedKeys" if "line break" in d.message else "primaryGroup"): d for d in errors}
    assert all("invalid name" in d.message for d in errors if d is not found["sshAuthorizedKeys"]), errors
    for key, line in lines.items():
        assert found[key].position is not None and found[key].position.line == line, (key, found[key])


def test_apply_still_refuses_what_validation_refuses(tmp_path: Path) -> None:
    """Defence in depth: a config built without validation cannot inject a line either."""
    root = make_debian_root(tmp_path)
    before = (root / "etc/passwd").read_bytes()
    config = build_config({"provision": {"version": "1.0.0"},
                           "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [INJECTED]}]}})
    stage = UsersStage("direct")
    with pytest.raises(ProvisionError, match="line break"):
        stage.apply(stage.plan(config, Target(root)), Target(root))
    assert (root / "etc/passwd").read_bytes() == before


# ---- the property: whatever validate accepts, the users stage accepts and writes as one row ----

# Mostly clean values (so many configs pass validation and reach the stage's check), some tricky.
_CLEAN = st.text(alphabet=st.sampled_from("abc_"), min_size=1, max_size=8)
_TRICKY = st.one_of(_CLEAN, _CLEAN, _CLEAN,
                    st.text(alphabet=st.sampled_from("ab_.-:,\n\r\x00 /$9é"), max_size=12))


@settings(max_examples=300, deadline=None)
@given(name=_TRICKY, gecos=_TRICKY, home=_TRICKY, shell=_TRICKY, primary=_TRICKY,
       groups=st.lists(_TRICKY, max_size=2, unique=True), key_tail=_TRICKY,
       group_hash=st.text(alphabet=st.sampled_from("!*:\n\x00"), max_size=4))
def test_validate_accepts_only_what_apply_can_write(
    name: str, gecos: str, home: str, shell: str, primary: str, groups: list[str], key_tail: str,
    group_hash: str,
) -> None:
    from provision.stages.users import check_fields

    user = {"name": name, "gecos": gecos, "homeDir": "/" + home, "shell": "/" + shell,
            "primaryGroup": primary, "groups": groups, "sshAuthorizedKeys": [KEY + " " + key_tail]}
    config = build_config({"provision": {"version": "1.0.0"}, "passwd": {
        "users": [user], "groups": [{"name": "g" + name, "passwordHash": group_hash}]}})
    if any(d.severity is Severity.ERROR for d in run_checks(config)):
        return
    check_fields(config.passwd)  # the stage's own defensive check never disagrees
    row = ":".join([name, "x", "1000", "1000", gecos, "/" + home, "/" + shell])
    assert len(row.split(":")) == 7 and "\n" not in row and "\0" not in row
    assert not any(c in (KEY + " " + key_tail).strip() for c in "\n\r\0")
    assert "," not in primary and ":" not in primary and all("," not in g and ":" not in g for g in groups)
    assert ":" not in group_hash and "\n" not in group_hash
