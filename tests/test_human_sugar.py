"""Each piece of human-YAML sugar: what it produces, and every way to misuse it."""

from __future__ import annotations

import base64
import gzip
import os
import socket
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from transpile_fixtures import HEADER, KEY, run_transpile


def decode(resource: dict[str, str]) -> bytes:
    """Decode a data: URL resource independently of the code under test."""
    head, _, data = resource["source"].partition(",")
    raw = base64.b64decode(data) if head.endswith(";base64") else unquote_to_bytes(data)
    return gzip.decompress(raw) if resource.get("compression") == "gzip" else raw


def files_of(text: str) -> str:
    return HEADER + "storage:\n  files:\n" + text


# -- inline / local ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "form"),
    [("hello\n", "percent"), ("\x00\x01\x02\x03ÿþ" * 3, "base64"), ("all work and no play " * 100, "gzip")],
)
def test_inline_takes_the_smallest_data_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, form: str
) -> None:
    import json

    got = run_transpile(capsys, tmp_path, files_of(f"    - path: /a\n      contents:\n        inline: {json.dumps(text)}\n"))
    assert got.status == 0, got.stderr
    assert got.spec is not None
    resource = got.spec["storage"]["files"][0]["contents"]
    assert decode(resource) == text.encode()
    source = resource["source"]
    assert {"percent": source.startswith("data:,"), "base64": ";base64," in source and "compression" not in resource,
            "gzip": resource.get("compression") == "gzip"}[form]
    if form == "gzip":
        assert len(source) < len(text) // 4


def test_local_reads_from_the_yaml_files_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "motd").write_bytes(b"welcome\n")
    got = run_transpile(capsys, tmp_path, files_of("    - path: /etc/motd\n      contents: {local: etc/motd}\n"))
    assert got.spec is not None
    assert decode(got.spec["storage"]["files"][0]["contents"]) == b"welcome\n"


def test_files_dir_option_moves_local_lookups(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "assets"
    other.mkdir()
    (other / "motd").write_bytes(b"from assets\n")
    got = run_transpile(capsys, tmp_path, files_of("    - path: /m\n      append: [{local: motd}]\n"),
                        options=("--files-dir", str(other)))
    assert got.spec is not None
    assert decode(got.spec["storage"]["files"][0]["append"][0]) == b"from assets\n"


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("{local: missing.txt}", "local file 'missing.txt' not found"),
        ("{local: ../outside.txt}", "escapes the files directory"),
        ("{local: /etc/passwd}", "is absolute"),
        ("{local: link-out}", "escapes the files directory"),
        ("{local: sub}", "is a directory, not a file"),
        ("{inline: a, local: x}", "set either inline or local, not both"),
        ("{inline: a, source: 'data:,b'}", "inline and source cannot both be set"),
        ("{inline: a, compression: gzip}", "inline and compression cannot both be set"),
        ("{inline: [1, 2]}", "inline contents must be a string"),
        ("{local: ''}", "a local path must be a non-empty string"),
    ],
)
def test_contents_sugar_misuse(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, contents: str, message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    (work / "link-out").symlink_to(tmp_path / "outside.txt")
    (work / "sub").mkdir()
    got = run_transpile(capsys, work, files_of(f"    - path: /a\n      contents: {contents}\n"))
    assert got.status == 1 and got.spec is None
    assert any(message in m for m in got.messages("error")), got.diagnostics
    assert all(d["line"] == 6 for d in got.diagnostics)
    assert "secret" not in got.stderr


def test_inline_sugar_in_the_wrong_place_is_an_unknown_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    got = run_transpile(capsys, tmp_path, files_of("    - path: /a\n      inline: text\n"))
    assert got.messages("error") == ["unknown key 'inline'"]
    assert "contents: {inline: ...}" in got.only("error")["hint"]


# -- modes ---------------------------------------------------------------------


@pytest.mark.parametrize(("written", "mode"), [('"0644"', 0o644), ('"0o755"', 0o755), ('"600"', 0o600),
                                               ("0644", 0o644), ("420", 420), ('"4755"', 0o4755)])
def test_modes(capsys: pytest.CaptureFixture[str], tmp_path: Path, written: str, mode: int) -> None:
    got = run_transpile(capsys, tmp_path, files_of(f"    - path: /a\n      mode: {written}\n"))
    assert got.status == 0 and got.diagnostics == []
    assert got.spec is not None and got.spec["storage"]["files"][0]["mode"] == mode


@pytest.mark.parametrize("written", ['"0999"', '"rw-r--r--"', '"010000"', '""'])
def test_bad_octal_strings(capsys: pytest.CaptureFixture[str], tmp_path: Path, written: str) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + f"storage:\n  directories:\n    - path: /d\n      mode: {written}\n")
    assert got.status == 1
    diag = got.only("error")
    assert "is not an octal permission mode" in diag["message"] and diag["line"] == 6


def test_decimal_looking_mode_warns_with_the_intended_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    got = run_transpile(capsys, tmp_path, files_of("    - path: /a\n      mode: 644\n"))
    assert got.status == 0
    diag = got.only("warning")
    assert diag["line"] == 6 and "644" in diag["message"] and "420" in (diag["hint"] or "")
    strict = run_transpile(capsys, tmp_path, files_of("    - path: /a\n      mode: 644\n"), options=("--strict",))
    assert strict.status == 1 and strict.spec is None


# -- trees ---------------------------------------------------------------------


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(tree / "bin" / "tool", 0o750)
    (tree / "readme").write_bytes(b"read me\n")
    os.chmod(tree / "readme", 0o600)
    (tree / "current").symlink_to("bin/tool")
    return tree


def test_tree_becomes_files_directories_and_links(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    make_tree(tmp_path)
    got = run_transpile(capsys, tmp_path, HEADER + "storage:\n  trees:\n    - local: tree\n      path: /opt/x\n")
    assert got.status == 0, got.stderr
    assert got.spec is not None
    storage = got.spec["storage"]
    files = {f["path"]: f for f in storage["files"]}
    assert files["/opt/x/bin/tool"]["mode"] == 0o755  # executable: 0755, whatever its local mode
    assert files["/opt/x/readme"]["mode"] == 0o644
    assert decode(files["/opt/x/readme"]["contents"]) == b"read me\n"
    assert storage["directories"] == [{"path": "/opt/x/bin"}]  # no mode: an existing one keeps its own
    assert storage["links"] == [{"path": "/opt/x/current", "target": "bin/tool"}]


def test_tree_modes_and_overwrite_are_overridable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    make_tree(tmp_path)
    got = run_transpile(capsys, tmp_path, HEADER + (
        "storage:\n  trees:\n    - local: tree\n      file_mode: '0600'\n      executable_mode: '0700'\n"
        "      directory_mode: '0750'\n      overwrite: true\n"
    ))
    assert got.spec is not None
    modes = {e["path"]: e["mode"] for e in got.spec["storage"]["files"] + got.spec["storage"]["directories"]}
    assert modes == {"/bin/tool": 0o700, "/readme": 0o600, "/bin": 0o750}
    assert all(e["overwrite"] is True for e in got.spec["storage"]["files"] + got.spec["storage"]["links"])
    assert all("overwrite" not in e for e in got.spec["storage"]["directories"])


def test_tree_rejects_sockets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tree / "sock"))
        got = run_transpile(capsys, tmp_path, HEADER + "storage:\n  trees:\n    - local: tree\n")
    finally:
        sock.close()
    assert got.status == 1
    assert "not a regular file, directory or symlink" in got.only("error")["message"]


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ("{local: readme}", "is not a directory"),
        ("{local: nowhere}", "local directory 'nowhere' not found"),
        ("{local: ..}", "escapes the files directory"),
        ("{local: tree, path: relative}", "a tree's path must be an absolute path"),
        ("{path: /x}", "missing required key 'local'"),
        ("{local: tree, mode: '0644'}", "unknown key 'mode'"),
        ("{local: tree, file_mode: 'rw'}", "is not an octal permission mode"),
    ],
)
def test_tree_misuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: str, message: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    make_tree(work)
    (work / "readme").write_text("x")
    got = run_transpile(capsys, work, HEADER + f"storage:\n  trees:\n    - {tree}\n")
    assert got.status == 1
    assert any(message in m for m in got.messages("error")), got.diagnostics


def test_tree_file_clashing_with_an_explicit_file_is_reported_at_the_tree(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make_tree(tmp_path)
    got = run_transpile(capsys, tmp_path, HEADER + (
        "storage:\n  files:\n    - path: /readme\n  trees:\n    - local: tree\n"
    ))
    assert got.status == 1
    assert {d["line"] for d in got.diagnostics if d["severity"] == "error"} <= {5, 7}
    assert any(d["line"] == 7 for d in got.diagnostics)


# -- units, keys, passwords --------------------------------------------------------


def test_contents_local_for_units_and_dropins(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "x.conf").write_text("[Service]\nNice=5\n")
    got = run_transpile(capsys, tmp_path, HEADER + (
        "systemd:\n  units:\n    - name: a.service\n      contents_local: a.service\n"
        "      dropins: [{name: x.conf, contents_local: x.conf}]\n"
    ))
    assert got.spec is not None
    [unit] = got.spec["systemd"]["units"]
    assert unit["contents"] == "[Service]\nExecStart=/bin/true\n"
    assert unit["dropins"] == [{"name": "x.conf", "contents": "[Service]\nNice=5\n"}]


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("contents: x\n      contents_local: a.service", "set either contents or contents_local, not both"),
        ("contents_local: gone.service", "local file 'gone.service' not found"),
        ("contents_local: binary", "is not UTF-8 text"),
    ],
)
def test_contents_local_misuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, unit: str, message: str) -> None:
    (tmp_path / "a.service").write_text("[Service]\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    got = run_transpile(capsys, tmp_path, HEADER + f"systemd:\n  units:\n    - name: a.service\n      {unit}\n")
    assert got.status == 1
    assert any(message in m for m in got.messages("error")), got.diagnostics


def test_ssh_keys_from_local_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(f"# team keys\n\n{KEY}\n")
    got = run_transpile(capsys, tmp_path, HEADER + (
        "passwd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: [keys]\n"
    ))
    assert got.spec is not None
    assert got.spec["passwd"]["users"][0]["sshAuthorizedKeys"] == [KEY]


@pytest.mark.parametrize(
    ("value", "message"),
    [("[nokeys]", "local file 'nokeys' not found"), ("keys", "must be a list of local file names")],
)
def test_ssh_keys_local_misuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "keys").write_text(KEY + "\n")
    got = run_transpile(capsys, tmp_path, HEADER + (
        f"passwd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: {value}\n"
    ))
    assert got.status == 1 and message in got.only("error")["message"]


def test_plain_password_is_hashed_with_a_warning_that_never_echoes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from passlib.hash import sha512_crypt

    got = run_transpile(capsys, tmp_path, HEADER + (
        "passwd:\n  users:\n    - name: core\n      password: {plain: Tr0ub4dor&3}\n"
    ))
    assert got.status == 0
    assert got.spec is not None
    hashed = got.spec["passwd"]["users"][0]["passwordHash"]
    assert hashed.startswith(("$6$", "$y$")) and sha512_crypt.verify("Tr0ub4dor&3", hashed)
    diag = got.only("warning")
    assert "plain" in diag["message"] and diag["line"] == 6
    assert "Tr0ub4dor" not in got.stderr
    strict = run_transpile(capsys, tmp_path, HEADER + (
        "passwd:\n  users:\n    - name: core\n      password: {plain: Tr0ub4dor&3}\n"
    ), options=("--strict",))
    assert strict.status == 1 and "Tr0ub4dor" not in strict.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [("{plain: a}\n      password_hash: x", "set either password or password_hash, not both"),
     ("hunter2", "password must be a mapping with one key, plain"),
     ("{plain: a, hash: b}", "password must be a mapping with one key, plain")],
)
def test_password_misuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str, message: str) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + f"passwd:\n  groups:\n    - name: g\n      password: {value}\n")
    assert got.status == 1 and message in got.only("error")["message"]
    assert all("hunter2" not in f"{d['message']} {d['hint']}" for d in got.diagnostics)


# -- with_mount_unit -------------------------------------------------------------


def test_with_mount_unit_on_btrfs_adds_subvolume_units(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        "storage:\n  filesystems:\n    - device: /dev/vdb\n      format: btrfs\n      path: /var/pool\n"
        "      with_mount_unit: true\n      subvolumes: [{name: home, path: /home}]\n"
    ))
    assert got.status == 0, got.stderr
    assert got.spec is not None
    units = {u["name"]: u for u in got.spec["systemd"]["units"]}
    assert set(units) == {"var-pool.mount", "home.mount"}
    assert "Options=subvol=home" in units["home.mount"]["contents"]
    assert all(u["enabled"] for u in units.values())
    assert "with_mount_unit" not in str(got.spec)


@pytest.mark.parametrize(
    ("fs", "message"),
    [("format: ext4", "with_mount_unit needs path"),
     ("format: none\n      path: /x", "format is none"),
     ("format: ext4\n      path: /x\n      with_mount_unit: yes please", "with_mount_unit must be true or false")],
)
def test_with_mount_unit_misuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, fs: str, message: str) -> None:
    extra = "" if "with_mount_unit" in fs else "\n      with_mount_unit: true"
    got = run_transpile(capsys, tmp_path, HEADER + f"storage:\n  filesystems:\n    - device: /dev/vdb\n      {fs}{extra}\n")
    assert got.status == 1 and message in got.only("error")["message"]


def test_with_mount_unit_false_adds_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        "storage:\n  filesystems:\n    - {device: /dev/vdb, format: ext4, path: /x, with_mount_unit: false}\n"
    ))
    assert got.spec is not None and "systemd" not in got.spec


# -- containers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [("ports: ['80:80:80']", "is not [host_ip:][host:]container"),
     ("ports: ['127.0.0.1:80']", "names a host address but no host port"),
     ("ports: ['http']", "is not [host_ip:][host:]container"),
     ("volumes: ['/only-one']", "is not source:target[:ro|rw]"),
     ("volumes: ['/a:/b:rx']", "is not source:target[:ro|rw]"),
     ("env: [NOVALUE]", "an env entry is NAME=value"),
     ("env: [A=1, A=2]", "environment variable 'A' is set twice")],
)
def test_container_shorthand_misuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, message: str) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        f"containers:\n  runtime: podman\n  containers:\n    - name: a\n      image: busybox\n      {line}\n"
    ))
    assert got.status == 1
    diag = got.only("error")
    assert message in diag["message"] and diag["line"] == 8


def test_container_structured_form_still_works(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        "containers:\n  runtime: podman\n  containers:\n    - name: a\n      image: busybox\n"
        "      ports: [{host: 80, container: 8080, host_ip: 0.0.0.0}, '53/udp']\n"
        "      volumes: [{source: /a, target: /b, read_only: true}]\n"
    ))
    assert got.spec is not None
    [container] = got.spec["containers"]["containers"]
    assert container["ports"] == [{"host": 80, "container": 8080, "hostIp": "0.0.0.0"},
                                  {"container": 53, "protocol": "udp"}]
    assert container["volumes"] == [{"source": "/a", "target": "/b", "readOnly": True}]


def test_remote_human_yaml_cannot_read_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """User data fetched at boot has no files directory: local sugar must not read the provisioning host."""
    from provision.config.pipeline import parse_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret").write_text("host secret")
    parsed = parse_config(files_of("    - path: /a\n      contents: {local: secret}\n").encode(), "aws user data")
    assert parsed.config is None
    [diag] = parsed.diagnostics
    assert "not a file on disk" in diag.message and diag.position is not None and diag.position.line == 6
