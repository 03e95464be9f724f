"""`provision run` on a cloud: the metadata is fetched with the user data, kept in the
run directory, written to /run/metadata/provision, and acted on (default user, keys,
hostname). AWS's stand-in on 127.0.0.1 plays the cloud."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from accounts_fixtures import make_debian_root

from tests.standins.aws_imds import AwsImds

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="useradd --root needs root")

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f my-key"
USER_DATA = b"#cloud-config\nusers: [default]\nwrite_files:\n- path: /etc/motd\n  content: hi\n"


def boot(tmp_path: Path, root: Path, url: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provision", "run", "--root", str(root), "--platform", "aws",
            "--metadata-url", url, "--run-dir", str(tmp_path / "run/provision"), "--cmdline", ""]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def test_aws_boot_gives_the_key_pair_to_the_default_user_and_writes_attributes(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path / "root")
    (root / "etc/provision").mkdir()
    (root / "etc/provision/image.json").write_text(json.dumps(
        {"default_user": {"name": "admin", "groups": "adm,sudo", "shell": "/bin/bash"}}))
    with AwsImds(USER_DATA) as imds:
        imds.meta_data.update({
            "placement/region": b"us-east-2", "placement/availability-zone": b"us-east-2a",
            "local-ipv4": b"172.31.5.9", "public-ipv4": b"3.14.15.92",
            "public-keys": b"0=my-key", "public-keys/0/openssh-key": KEY.encode(),
        })
        done = boot(tmp_path, root, imds.base_url)
    assert done.returncode == 0, done.stderr
    keys = (root / "home/admin/.ssh/authorized_keys.d/provision").read_text()
    assert KEY in keys
    assert (root / "etc/hostname").read_text() == "ip-10-0-0-1\n"
    assert (root / "etc/motd").read_text() == "hi"
    attributes = tmp_path / "run/metadata/provision"
    assert attributes.read_text() == (
        "PROVISION_PLATFORM=aws\n"
        "PROVISION_INSTANCE_ID=i-0123456789abcdef0\n"
        "PROVISION_HOSTNAME=ip-10-0-0-1\n"
        "PROVISION_REGION=us-east-2\n"
        "PROVISION_AVAILABILITY_ZONE=us-east-2a\n"
        "PROVISION_IPV4_PRIVATE=172.31.5.9\n"
        "PROVISION_IPV4_PUBLIC=3.14.15.92\n")
    assert stat.S_IMODE(attributes.stat().st_mode) == 0o644
    kept = tmp_path / "run/provision/instance.json"
    assert json.loads(kept.read_text())["instance_id"] == "i-0123456789abcdef0"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    record = json.loads((root / "etc/.provision/result.json").read_text())
    assert record["instance_id"] == "i-0123456789abcdef0"


def test_nocloud_meta_data_public_keys_and_hostname(tmp_path: Path) -> None:
    from tests.standins.systree import make_sys_root

    sys_root = make_sys_root(tmp_path / "sys")
    seed = sys_root / "seed"
    seed.mkdir()
    (seed / "user-data").write_bytes(b"#cloud-config\nusers: [default]\n")
    (seed / "meta-data").write_text(f"instance-id: iid-local01\nlocal-hostname: seeded.example\n"
                                    f"public-keys:\n  - {KEY}\n")
    root = make_debian_root(tmp_path / "root")
    (root / "etc/provision").mkdir()
    (root / "etc/provision/image.json").write_text('{"default_user": {"name": "debian"}}')
    argv = [sys.executable, "-m", "provision", "run", "--root", str(root),
            "--run-dir", str(tmp_path / "run/provision"), "--cmdline", "ds=nocloud;s=file:///seed/"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PROVISION_SYS_ROOT": str(sys_root)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert KEY in (root / "home/debian/.ssh/authorized_keys.d/provision").read_text()
    assert (root / "etc/hostname").read_text() == "seeded\n"
    attributes = (tmp_path / "run/metadata/provision").read_text()
    assert "PROVISION_INSTANCE_ID=iid-local01\n" in attributes
    assert "PROVISION_HOSTNAME=seeded.example\n" in attributes


def test_openstack_network_data_becomes_the_targets_network(tmp_path: Path) -> None:
    """network_data.json from the metadata service is rendered like a seed's network-config."""
    from tests.standins.openstack import OpenStackMetadata

    root = make_debian_root(tmp_path / "root")
    (root / "etc/systemd/network").mkdir(parents=True)
    networkd = root / "usr/lib/systemd/systemd-networkd"  # the image's network manager
    networkd.parent.mkdir(parents=True, exist_ok=True)
    networkd.write_bytes(b"")
    with OpenStackMetadata(b"#cloud-config\nwrite_files:\n- path: /etc/motd\n  content: hi\n") as nova:
        nova.network_data = {
            "links": [{"id": "tap0", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01"}],
            "networks": [{"id": "net0", "type": "ipv4", "link": "tap0", "ip_address": "192.0.2.10",
                          "netmask": "255.255.255.0",
                          "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}]}],
            "services": [{"type": "dns", "address": "192.0.2.53"}],
        }
        argv = [sys.executable, "-m", "provision", "run", "--root", str(root), "--platform", "openstack",
                "--metadata-url", nova.base_url, "--run-dir", str(tmp_path / "run/provision"),
                "--cmdline", ""]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
    assert done.returncode == 0, done.stderr
    assert (root / "etc/motd").read_text() == "hi"
    rendered = "".join(p.read_text() for p in sorted((root / "etc/systemd/network").glob("*.network")))
    assert "192.0.2.10/24" in rendered and "192.0.2.1" in rendered and "192.0.2.53" in rendered
    assert "fa:16:3e:00:00:01" in rendered.lower()
