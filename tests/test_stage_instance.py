"""The instance stage: the image's default user gets the platform's SSH keys, the
hostname comes from metadata unless the config sets one (real roots, real useradd)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from accounts_fixtures import make_debian_root

from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages
from provision.config.pipeline import parse_config
from provision.errors import ProvisionError
from provision.instance.data import InstanceData, PublicKey

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown and useradd --root need root")

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f aws-keypair"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/ other"
KEY_C = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEBBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f config-key"
DEBIAN_USER = {"name": "debian", "groups": ["adm", "sudo", "netdev"], "shell": "/bin/bash",
               "sudo": ["ALL=(ALL) NOPASSWD:ALL"], "lock_passwd": True, "gecos": "Debian"}


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def image(root: Path, settings: dict[str, object]) -> Path:
    make_debian_root(root)
    (root / "etc/provision").mkdir(parents=True, exist_ok=True)
    (root / "etc/provision/image.json").write_text(json.dumps(settings))
    (root / "etc/hostname").write_text("localhost\n")
    return root


def run(root: Path, text: str, instance: InstanceData | None) -> None:
    data = text.encode()
    parsed = parse_config(data, "test")
    assert parsed.ok and parsed.config is not None, parsed.diagnostics
    request = ApplyRequest(config=parsed.config, config_sha256=hashlib.sha256(data).hexdigest(),
                           root=root, instance=instance)
    apply_config(request, load_stages(["users", "instance", "files"]))


def passwd_entry(root: Path, name: str) -> list[str] | None:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    return None


def group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    return []


def keys_of(root: Path, user: str) -> list[str]:
    path = root / "home" / user / ".ssh/authorized_keys.d/provision"
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


AWS = InstanceData(platform="aws", instance_id="i-0abc", local_hostname="ip-10-0-0-7.ec2.internal",
                   public_keys=(PublicKey(KEY_A),))
EMPTY_CONFIG = '{"provision": {"version": "1.0.0"}}'


def test_default_user_gets_platform_keys_sudo_and_groups(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER})
    run(root, EMPTY_CONFIG, AWS)
    entry = passwd_entry(root, "debian")
    assert entry is not None and entry[4] == "Debian" and entry[6] == "/bin/bash"
    assert keys_of(root, "debian") == [KEY_A]
    owner = (root / "home/debian/.ssh/authorized_keys.d/provision").stat()
    assert owner.st_uid == int(entry[2])
    # netdev was missing from the image: created, as cloud-init does.
    for group in ("adm", "sudo", "netdev"):
        assert "debian" in group_members(root, group)
    sudoers = root / "etc/sudoers.d/90-provision-default-user"
    assert sudoers.read_text() == "debian ALL=(ALL) NOPASSWD:ALL\n"
    assert stat.S_IMODE(sudoers.stat().st_mode) == 0o440
    # The password stays locked: no hash in shadow.
    shadow = {line.split(":")[0]: line.split(":")[1] for line in (root / "etc/shadow").read_text().splitlines()}
    assert shadow["debian"].startswith(("!", "*"))
    assert (root / "etc/hostname").read_text() == "ip-10-0-0-7\n"


def test_gce_keys_only_for_the_default_user_or_cloudinit(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER})
    gce = InstanceData(platform="gce", public_keys=(
        PublicKey(KEY_A, "debian"), PublicKey(KEY_B, "alice"), PublicKey(KEY_C, "cloudinit")))
    run(root, EMPTY_CONFIG, gce)
    assert keys_of(root, "debian") == [KEY_A, KEY_C]


def test_config_hostname_wins_and_config_keys_join_platform_keys(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER})
    config = f"#cloud-config\nhostname: web1\nuser: debian\nssh_authorized_keys: ['{KEY_C}']\n"
    run(root, config, AWS)
    assert (root / "etc/hostname").read_text() == "web1\n"
    assert keys_of(root, "debian") == [KEY_C, KEY_A]


def test_no_default_user_in_the_image_means_no_user(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {})
    before = (root / "etc/passwd").read_text()
    run(root, EMPTY_CONFIG, AWS)
    assert (root / "etc/passwd").read_text() == before
    assert (root / "etc/hostname").read_text() == "ip-10-0-0-7\n"


def test_image_can_turn_off_hostname_and_platform_keys(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER, "hostname_from_metadata": False,
                                     "platform_ssh_keys": False})
    run(root, EMPTY_CONFIG, AWS)
    assert passwd_entry(root, "debian") is not None
    assert not (root / "home/debian/.ssh/authorized_keys.d/provision").exists()
    assert (root / "etc/hostname").read_text() == "localhost\n"


def test_without_metadata_the_default_user_is_still_made(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER})
    run(root, EMPTY_CONFIG, None)
    assert passwd_entry(root, "debian") is not None
    assert (root / "etc/hostname").read_text() == "localhost\n"


def test_image_settings_from_usr_lib_overridden_by_etc(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": {"name": "admin"}})
    (root / "usr/lib/provision/image.d").mkdir(parents=True)
    (root / "usr/lib/provision/image.d/50-distro.json").write_text(
        json.dumps({"default_user": DEBIAN_USER, "hostname_from_metadata": False}))
    run(root, EMPTY_CONFIG, AWS)
    assert passwd_entry(root, "admin") is not None and passwd_entry(root, "debian") is None
    assert (root / "etc/hostname").read_text() == "localhost\n"


@pytest.mark.parametrize("settings, message", [
    ({"default_user": {"groups": ["adm"]}}, "default_user needs a name"),
    ({"grow_root": "yes"}, "grow_root must be true or false"),
    ({"defaultUser": {"name": "x"}}, "unknown keys defaultUser"),
])
def test_bad_image_settings_are_one_clear_error_and_nothing_changes(
    tmp_path: Path, settings: dict[str, object], message: str,
) -> None:
    root = image(tmp_path / "root", settings)
    before = (root / "etc/passwd").read_text()
    with pytest.raises(ProvisionError, match=message):
        run(root, EMPTY_CONFIG, AWS)
    assert (root / "etc/passwd").read_text() == before
    assert (root / "etc/hostname").read_text() == "localhost\n"


def test_metadata_hostname_that_is_no_host_name_is_ignored(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {})
    run(root, EMPTY_CONFIG, InstanceData(platform="x", local_hostname="bad_name;rm -rf /"))
    assert (root / "etc/hostname").read_text() == "localhost\n"


def test_cloud_config_users_without_default_means_no_default_user(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER})
    run(root, "#cloud-config\nusers: [{name: bob}]\n", AWS)
    assert passwd_entry(root, "bob") is not None and passwd_entry(root, "debian") is None


def test_cloud_config_default_entry_and_top_level_keys(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {"default_user": DEBIAN_USER})
    run(root, f"#cloud-config\nusers: [default, {{name: bob}}]\nssh_authorized_keys: ['{KEY_C}']\n", AWS)
    assert passwd_entry(root, "bob") is not None
    assert keys_of(root, "debian") == [KEY_C, KEY_A]


def test_keys_for_a_default_user_the_image_lacks_are_an_error(tmp_path: Path) -> None:
    root = image(tmp_path / "root", {})
    before = (root / "etc/passwd").read_text()
    with pytest.raises(ProvisionError, match="the image names none"):
        run(root, f"#cloud-config\nssh_authorized_keys: ['{KEY_C}']\n", AWS)
    assert (root / "etc/passwd").read_text() == before
