"""#cloud-config translation: each supported key, unsupported keys, other formats."""

from __future__ import annotations

import base64
import gzip
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provision.config.pipeline import parse_config
from provision.diagnostics import format_path
from provision.fetch.resource import decode_data_url

HASH = "$6$provisionex$BmON/g1p1C9BeI1o61nW8PO5cVjPjbSV1vG3pKJz2w3I68nLCysd2SgKwscnpBaAUr.quXSiW4Sq0VCyJbzHZ0"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q alice@laptop"


def translate(text: str) -> Any:
    parsed = parse_config(("#cloud-config\n" + text).encode(), "user-data")
    return parsed


def spec_of(text: str) -> dict[str, Any]:
    parsed = translate(text)
    assert parsed.ok, [d.message for d in parsed.diagnostics]
    assert parsed.kind == "cloud-config"
    assert parsed.spec is not None
    return parsed.spec


def file_named(spec: dict[str, Any], path: str) -> dict[str, Any]:
    [entry] = [f for f in spec["storage"]["files"] if f["path"] == path]
    return entry


def contents(resource: dict[str, Any]) -> bytes:
    data = decode_data_url(resource["source"])
    return gzip.decompress(data) if resource.get("compression") == "gzip" else data


def test_users_with_every_supported_field() -> None:
    spec = spec_of(f"""
users:
  - name: alice
    gecos: Alice A
    groups: [wheel, docker]
    homedir: /srv/alice
    shell: /bin/zsh
    uid: "1501"
    primary_group: staff
    no_create_home: true
    no_user_group: true
    no_log_init: true
    lock_passwd: false
    hashed_passwd: {HASH}
    ssh_authorized_keys: [{KEY}]
  - name: svc
    system: true
""")
    alice, svc = spec["passwd"]["users"]
    assert alice == {
        "name": "alice", "gecos": "Alice A", "homeDir": "/srv/alice", "shell": "/bin/zsh",
        "primaryGroup": "staff", "noCreateHome": True, "noUserGroup": True, "noLogInit": True,
        "uid": 1501, "groups": ["wheel", "docker"], "passwordHash": HASH, "sshAuthorizedKeys": [KEY],
    }
    assert svc == {"name": "svc", "system": True}
    # cloud-init creates the supplementary groups a user names.
    assert {"name": "wheel"} in spec["passwd"]["groups"] and {"name": "docker"} in spec["passwd"]["groups"]


def test_password_is_locked_by_default_and_the_hash_dropped() -> None:
    parsed = translate(f"users:\n  - name: bob\n    passwd: {HASH}\n")
    assert parsed.ok
    assert "passwordHash" not in parsed.spec["passwd"]["users"][0]
    [warn] = parsed.diagnostics
    assert "locked" in warn.message and not warn.is_error
    assert HASH not in warn.message


def test_plain_text_password_is_hashed_and_never_echoed() -> None:
    from passlib.hash import sha512_crypt

    parsed = translate("users:\n  - name: bob\n    lock_passwd: false\n    plain_text_passwd: hunter2\n")
    assert parsed.ok
    digest = parsed.spec["passwd"]["users"][0]["passwordHash"]
    assert sha512_crypt.verify("hunter2", digest)
    assert all("hunter2" not in d.message for d in parsed.diagnostics)
    assert any("plain_text_passwd" in d.message for d in parsed.diagnostics)


def test_sudo_rules_become_a_sudoers_dropin() -> None:
    spec = spec_of("users:\n  - name: ops.team\n    sudo: [\"ALL=(ALL) NOPASSWD:ALL\", \"ALL=(root) /bin/ls\"]\n")
    entry = file_named(spec, "/etc/sudoers.d/provision-ops_team")
    assert entry["mode"] == 0o440
    assert contents(entry["contents"]) == b"ops.team ALL=(ALL) NOPASSWD:ALL\nops.team ALL=(root) /bin/ls\n"


@pytest.mark.skipif(shutil.which("visudo") is None, reason="visudo not installed")
def test_sudoers_dropin_passes_visudo(tmp_path: Path) -> None:
    spec = spec_of("users:\n  - name: ops\n    sudo: ALL=(ALL) NOPASSWD:ALL\n")
    path = tmp_path / "sudoers"
    path.write_bytes(contents(file_named(spec, "/etc/sudoers.d/provision-ops")["contents"]))
    assert subprocess.run(["visudo", "-cf", str(path)], capture_output=True).returncode == 0


def test_groups_list_and_mapping_forms() -> None:
    spec = spec_of("users:\n  - name: alice\ngroups:\n  - plain\n  - admins: [alice]\n  - ops: alice\n")
    names = [g["name"] for g in spec["passwd"]["groups"]]
    assert names == ["plain", "admins", "ops"]
    assert spec["passwd"]["users"][0]["groups"] == ["admins", "ops"]


def test_group_member_not_in_document_is_reported() -> None:
    parsed = translate("groups:\n  - admins: [stranger]\n")
    assert any("stranger" in d.message and "not supported" in d.message for d in parsed.diagnostics)


@pytest.mark.parametrize("encoding", ["b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64", "text/plain", None])
def test_write_files_encodings(encoding: str | None) -> None:
    payload = b"line one\nline two\n" * 20
    if encoding in ("b64", "base64"):
        content = base64.b64encode(payload).decode()
    elif encoding and "+" in encoding:
        content = base64.b64encode(gzip.compress(payload)).decode()
    else:
        content = payload.decode()
    enc = f"    encoding: {encoding}\n" if encoding else ""
    spec = spec_of(f"write_files:\n  - path: /etc/x\n{enc}    content: |\n" + "".join(
        f"      {line}\n" for line in content.splitlines()))
    entry = file_named(spec, "/etc/x")
    assert contents(entry["contents"]) == payload
    assert entry["mode"] == 0o644 and entry["overwrite"] is True


def test_write_files_permissions_owner_append() -> None:
    spec = spec_of("users: [{name: app}]\nwrite_files:\n"
                   "  - {path: /etc/app.conf, content: x, permissions: '0640', owner: 'app:adm', defer: true}\n"
                   "  - {path: /etc/motd, content: more, append: true}\n")
    conf = file_named(spec, "/etc/app.conf")
    assert conf["mode"] == 0o640 and conf["user"] == {"name": "app"} and conf["group"] == {"name": "adm"}
    motd = file_named(spec, "/etc/motd")
    assert "contents" not in motd and contents(motd["append"][0]) == b"more"


def test_bad_encoding_and_bad_permissions_are_errors_at_their_line() -> None:
    parsed = translate("write_files:\n  - path: /a\n    encoding: rot13\n    content: x\n"
                       "  - path: /b\n    permissions: rw-r--r--\n")
    assert not parsed.ok
    by_path = {format_path(d.path): d for d in parsed.diagnostics}
    assert by_path["$.write_files[0].encoding"].position.line == 4  # type: ignore[union-attr]
    assert by_path["$.write_files[1].permissions"].position.line == 7  # type: ignore[union-attr]


def test_default_user_gets_top_level_keys() -> None:
    spec = spec_of(f"user: admin\nusers: [default]\nssh_authorized_keys: [{KEY}]\n")
    assert spec["passwd"]["users"] == [{"name": "admin", "sshAuthorizedKeys": [KEY]}]


def test_top_level_keys_without_user_go_to_the_images_default_user() -> None:
    spec = spec_of(f"ssh_authorized_keys: [{KEY}]\n")
    assert spec["passwd"] == {"defaultUser": {"sshAuthorizedKeys": [KEY]}}
    # disable_root: false gives them to root as well, as cloud-init does.
    spec = spec_of(f"disable_root: false\nssh_authorized_keys: [{KEY}]\n")
    assert spec["passwd"]["users"] == [{"name": "root", "sshAuthorizedKeys": [KEY]}]


def test_users_default_entry_is_the_images_default_user() -> None:
    spec = spec_of("users: [default, {name: bob}]\n")
    assert spec["passwd"]["defaultUser"] == {"create": True}
    assert [u["name"] for u in spec["passwd"]["users"]] == ["bob"]


def test_users_without_default_means_no_default_user() -> None:
    spec = spec_of("users: [{name: bob}]\n")
    assert spec["passwd"]["defaultUser"] == {"create": False}


@pytest.mark.parametrize("text, grow", [
    ("growpart: {mode: auto}\n", {"devices": ["/"]}),
    ("growpart: {mode: growpart, devices: [/, /var, /dev/vdb1]}\n", {"devices": ["/", "/var", "/dev/vdb1"]}),
    ("growpart: {mode: off}\n", {"devices": []}),
    ("growpart: {mode: false}\n", {"devices": []}),
    ("resize_rootfs: false\n", {"resizeFilesystems": False}),
    ("growpart: {devices: [/]}\nresize_rootfs: noblock\n", {"devices": ["/"]}),
])
def test_growpart_and_resize_rootfs_become_storage_grow(text: str, grow: dict[str, object]) -> None:
    assert spec_of(text)["storage"]["grow"] == grow


@pytest.mark.parametrize("text, message", [
    ("growpart: {mode: fast}\n", "growpart mode must be one of"),
    ("growpart: {devices: /}\n", "growpart devices must be a list"),
    ("resize_rootfs: maybe\n", "resize_rootfs must be true, false or noblock"),
])
def test_bad_growpart_is_a_positioned_error(text: str, message: str) -> None:
    parsed = translate(text)
    assert not parsed.ok
    assert any(d.message.startswith(message) and d.position is not None for d in parsed.diagnostics)


def test_hostname_timezone_and_password_auth() -> None:
    spec = spec_of("hostname: node-7\ntimezone: America/New_York\nssh_pwauth: true\n")
    assert contents(file_named(spec, "/etc/hostname")["contents"]) == b"node-7\n"
    assert contents(file_named(spec, "/etc/timezone")["contents"]) == b"America/New_York\n"
    assert spec["storage"]["links"] == [
        {"path": "/etc/localtime", "overwrite": True, "target": "/usr/share/zoneinfo/America/New_York"}]
    sshd = file_named(spec, "/etc/ssh/sshd_config.d/50-provision-pwauth.conf")
    assert contents(sshd["contents"]) == b"PasswordAuthentication yes\n"


def test_fqdn_alone_gives_the_short_hostname_unless_preferred() -> None:
    assert contents(file_named(spec_of("fqdn: a.example.com\n"), "/etc/hostname")["contents"]) == b"a\n"
    spec = spec_of("hostname: a\nfqdn: a.example.com\nprefer_fqdn_over_hostname: true\n")
    assert contents(file_named(spec, "/etc/hostname")["contents"]) == b"a.example.com\n"


def test_timezone_cannot_escape_zoneinfo() -> None:
    assert not translate("timezone: ../../etc/shadow\n").ok


def _unit(spec: dict[str, Any], name: str) -> str:
    [unit] = [u for u in spec["systemd"]["units"] if u["name"] == name]
    assert unit["enabled"] is True
    return str(unit["contents"])


def test_runcmd_is_a_once_only_unit_failing_on_the_first_failure() -> None:
    text = _unit(spec_of("runcmd:\n  - echo \"$HOME 100%\"\n  - [touch, /tmp/a b]\n"), "provision-runcmd.service")
    execs = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert execs == ['ExecStart=/bin/sh -c "echo \\"$$HOME 100%%\\""', 'ExecStart="touch" "/tmp/a b"']
    assert "ConditionPathExists=!/var/lib/provision/runcmd.done" in text
    assert "Type=oneshot" in text and "WantedBy=multi-user.target" in text


def test_bootcmd_runs_every_boot() -> None:
    text = _unit(spec_of("bootcmd:\n  - echo hi\n"), "provision-bootcmd.service")
    assert "ConditionPathExists" not in text and 'ExecStart=/bin/sh -c "echo hi"' in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_generated_units_verify_and_quote_as_intended(tmp_path: Path) -> None:
    """systemd itself reads back the argv we meant (checked with a real unit file)."""
    spec = spec_of("runcmd:\n  - [printf, '%s|', 'a \"b\" $c', 'd\\e']\nbootcmd:\n  - echo boot\n")
    for unit in spec["systemd"]["units"]:
        (tmp_path / unit["name"]).write_text(unit["contents"])
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_mounts_append_to_fstab_and_create_mount_points() -> None:
    spec = spec_of("mounts:\n  - [vdb1, /data, ext4, 'defaults,noatime']\n  - [LABEL=logs, /var/log/app]\n")
    fstab = file_named(spec, "/etc/fstab")
    lines = contents(fstab["append"][0]).decode().splitlines()
    assert lines == ["/dev/vdb1\t/data\text4\tdefaults,noatime\t0\t2",
                     "LABEL=logs\t/var/log/app\tauto\tdefaults,nofail\t0\t2"]
    assert [d["path"] for d in spec["storage"]["directories"]] == ["/data", "/var/log/app"]


def test_disk_and_fs_setup() -> None:
    parsed = translate("disk_setup:\n  /dev/vdb: {table_type: mbr, layout: true, overwrite: true}\n"
                       "fs_setup:\n  - {label: data, filesystem: xfs, device: /dev/vdb, partition: 1, overwrite: true}\n"
                       "  - {label: raw, filesystem: ext4, device: /dev/nvme1n1, partition: 2}\n")
    assert parsed.ok
    storage = parsed.spec["storage"]
    assert storage["disks"] == [{"device": "/dev/vdb", "wipeTable": True, "partitions": [{"number": 1, "sizeMiB": 0}]}]
    assert storage["filesystems"] == [
        {"device": "/dev/vdb1", "format": "xfs", "wipeFilesystem": True, "label": "data"},
        {"device": "/dev/nvme1n1p2", "format": "ext4", "wipeFilesystem": False, "label": "raw"},
    ]
    assert any("GPT" in d.message for d in parsed.diagnostics)


def test_percentage_layouts_are_reported_not_guessed() -> None:
    parsed = translate("disk_setup:\n  /dev/vdb: {table_type: gpt, layout: [33, 67]}\n")
    assert "disks" not in (parsed.spec or {}).get("storage", {})
    assert any("percentages" in d.message for d in parsed.diagnostics)


def test_every_unsupported_key_is_reported_with_its_line() -> None:
    parsed = translate("hostname: a\npackages: [nginx]\napt:\n  primary: []\nmystery_key: 1\n")
    found = {d.path[0]: d for d in parsed.diagnostics}
    assert set(found) == {"packages", "apt", "mystery_key"}
    assert [found[k].position.line for k in ("packages", "apt", "mystery_key")] == [3, 4, 6]  # type: ignore[union-attr]
    assert all(not d.is_error for d in found.values())
    assert "image builder" in found["packages"].message


def test_empty_cloud_config_is_valid() -> None:
    assert translate("").ok


def test_phone_home_becomes_provision_phone_home() -> None:
    spec = spec_of("phone_home:\n  url: http://example.com/$INSTANCE_ID/\n  post: [pub_key_rsa, instance_id]\n  tries: 5\n")
    assert spec["provision"] == {"version": "1.1.0", "phoneHome": {
        "url": "http://example.com/$INSTANCE_ID/", "post": ["pub_key_rsa", "instance_id"], "tries": 5}}
    assert spec_of("phone_home: {url: 'http://x/', post: all}\n")["provision"]["phoneHome"] == {"url": "http://x/"}
    parsed = translate("phone_home: {url: 'http://x/', post: [password]}\n")
    assert not parsed.ok
