"""Instance metadata from each platform's stand-in on 127.0.0.1: ids, hostname, region,
zone, IPs and SSH keys, read by the declarative ``metadata`` sections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.instance.collect import collect_instance
from provision.instance.data import InstanceData, PublicKey
from provision.instance.section import check_section
from provision.platforms.base import Context
from provision.platforms.http_cloud import load_entries
from provision.platforms.settings import Settings
from tests.standins.aws_imds import TOKEN_HEADER, AwsImds
from tests.standins.azure import AzureImds
from tests.standins.clouds import SimpleCloud
from tests.standins.gce import GceMetadata
from tests.standins.metadata import Answer
from tests.standins.openstack import OpenStackMetadata

KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f one"
KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDx two"


def collect(platform: str, url: str, tmp_path: Path) -> InstanceData | None:
    settings = Settings.load(platform=platform, metadata_url=url, sys_root=str(tmp_path),
                             cmdline="provision.fetch.timeout=5", run_dir=str(tmp_path / "run"),
                             environ={})
    return collect_instance(Context(settings=settings), platform)


def test_every_shipped_metadata_section_is_well_formed() -> None:
    entries = load_entries()
    with_sections = {name for name, entry in entries.items() if entry.metadata}
    assert {"aws", "gce", "openstack", "azure", "digitalocean", "hetzner", "packet"} <= with_sections
    for name in with_sections:
        check_section(name, entries[name].metadata)


@pytest.mark.parametrize("section, message", [
    ({"hostname": {"path": "/x"}}, "unknown keys"),
    ({"instance_id": {"path": "/x", "document": "d", "key": "k"}}, "exactly one of"),
    ({"instance_id": {"document": "nope", "key": "k"}}, "not listed"),
    ({"public_keys": [{"path": "/k", "parse": "csv"}]}, "unknown parse"),
])
def test_malformed_sections_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_section("x", section)


def test_aws_key_pair_ids_and_placement_through_the_imdsv2_token(tmp_path: Path) -> None:
    with AwsImds(b"") as imds:
        imds.meta_data.update({
            "placement/region": b"eu-west-1", "placement/availability-zone": b"eu-west-1b",
            "local-ipv4": b"10.0.0.7", "public-keys": b"0=my-key\n1=other",
            "public-keys/0/openssh-key": KEY1.encode() + b"\n",
            "public-keys/1/openssh-key": KEY2.encode(),
        })
        instance = collect("aws", imds.base_url, tmp_path)
        gets = [r for r in imds.requests if r.method == "GET"]
        assert gets and all(r.headers[TOKEN_HEADER] in imds.tokens for r in gets)
    assert instance == InstanceData(
        platform="aws", instance_id="i-0123456789abcdef0", local_hostname="ip-10-0-0-1",
        region="eu-west-1", zone="eu-west-1b", ipv4_private="10.0.0.7",
        public_keys=(PublicKey(KEY1), PublicKey(KEY2)))


def test_aws_metadata_failure_is_an_error_not_a_silent_gap(tmp_path: Path) -> None:
    with AwsImds(b"") as imds:
        imds.inject("/latest/meta-data/instance-id", Answer(403, b"Forbidden"))
        with pytest.raises(FetchError, match="instance-id answered HTTP 403"):
            collect("aws", imds.base_url, tmp_path)


@pytest.mark.parametrize("blocked, expected", [
    (None, [PublicKey(KEY1, "debian"), PublicKey(KEY2, "ops")]),
    (b"true", [PublicKey(KEY1, "debian")]),
])
def test_gce_instance_and_project_keys_honour_block_project_ssh_keys(
    tmp_path: Path, blocked: bytes | None, expected: list[PublicKey],
) -> None:
    with GceMetadata({"ssh-keys": f"debian:{KEY1}\n".encode()}) as gce:
        gce.values.update({
            "instance/hostname": b"vm-1.c.project.internal",
            "instance/zone": b"projects/1234/zones/europe-west1-b",
            "project/attributes/ssh-keys": f"ops:{KEY2}\n".encode(),
        })
        if blocked is not None:
            gce.attributes["block-project-ssh-keys"] = blocked
        instance = collect("gce", gce.base_url, tmp_path)
    assert instance is not None
    assert list(instance.public_keys) == expected
    assert (instance.instance_id, instance.zone, instance.region) == (
        "1234567890123456789", "europe-west1-b", "europe-west1")
    assert instance.local_hostname == "vm-1.c.project.internal"


def test_openstack_meta_data_json_public_keys(tmp_path: Path) -> None:
    with OpenStackMetadata(b"") as nova:
        nova.meta_data.update({"public_keys": {"mykey": KEY1}, "availability_zone": "nova"})
        instance = collect("openstack", nova.base_url, tmp_path)
    assert instance is not None
    assert (instance.instance_id, instance.local_hostname, instance.zone) == (
        "83679162-1378-4288-a2d4-70e13ec132aa", "vm1", "nova")
    assert instance.public_keys == (PublicKey(KEY1),)


def test_azure_imds_compute_public_keys_and_addresses(tmp_path: Path) -> None:
    with AzureImds(b"") as imds:
        imds.instance = {
            "compute": {"vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "location": "westeurope",
                        "zone": "1", "osProfile": {"computerName": "examplevmname"},
                        "publicKeys": [{"keyData": KEY1, "path": "/home/azureuser/.ssh/authorized_keys"}]},
            "network": {"interface": [{"ipv4": {"ipAddress": [
                {"privateIpAddress": "10.144.133.132", "publicIpAddress": "203.0.113.4"}]}}]},
        }
        instance = collect("azure", imds.base_url, tmp_path)
        assert all(r.headers["Metadata"] == "true" for r in imds.requests)
    assert instance is not None
    assert (instance.instance_id, instance.local_hostname, instance.region, instance.zone) == (
        "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "examplevmname", "westeurope", "1")
    assert (instance.ipv4_private, instance.ipv4_public) == ("10.144.133.132", "203.0.113.4")
    assert instance.public_keys == (PublicKey(KEY1),)


def test_digitalocean_v1_json(tmp_path: Path) -> None:
    with SimpleCloud("/metadata/v1/user-data", b"") as do:
        do.files["/metadata/v1.json"] = json.dumps({
            "droplet_id": 2756294, "hostname": "sample-droplet", "region": "nyc3",
            "public_keys": [KEY1, KEY2],
            "interfaces": {"public": [{"ipv4": {"ip_address": "104.131.20.105"}}],
                           "private": [{"ipv4": {"ip_address": "10.132.255.113"}}]},
        }).encode()
        instance = collect("digitalocean", do.base_url, tmp_path)
    assert instance is not None
    assert (instance.instance_id, instance.local_hostname, instance.region) == ("2756294", "sample-droplet", "nyc3")
    assert (instance.ipv4_public, instance.ipv4_private) == ("104.131.20.105", "10.132.255.113")
    assert instance.public_keys == (PublicKey(KEY1), PublicKey(KEY2))


def test_hetzner_metadata_yaml(tmp_path: Path) -> None:
    with SimpleCloud("/hetzner/v1/userdata", b"", no_data_status=204) as hetzner:
        hetzner.files["/hetzner/v1/metadata"] = (
            "availability-zone: fsn1-dc14\nhostname: my-server\ninstance-id: 42\n"
            f"public-ipv4: 198.51.100.3\nregion: eu-central\npublic-keys:\n- {KEY1}\n").encode()
        instance = collect("hetzner", hetzner.base_url, tmp_path)
    assert instance is not None
    assert (instance.instance_id, instance.local_hostname, instance.region, instance.zone) == (
        "42", "my-server", "eu-central", "fsn1-dc14")
    assert instance.ipv4_public == "198.51.100.3" and instance.public_keys == (PublicKey(KEY1),)


def test_packet_report_urls(tmp_path: Path) -> None:
    with SimpleCloud("/userdata", b"") as metal:
        metal.files["/metadata"] = json.dumps({
            "id": "3cd6f2c1", "hostname": "metal-1", "facility": "am6", "ssh_keys": [KEY1],
            "phone_home_url": "http://127.0.0.1:1/phone-home",
            "user_state_url": "http://127.0.0.1:1/events"}).encode()
        instance = collect("packet", metal.base_url, tmp_path)
    assert instance is not None and instance.report_urls == {
        "phone_home": "http://127.0.0.1:1/phone-home", "user_state": "http://127.0.0.1:1/events"}


def test_platform_without_a_section_has_no_metadata(tmp_path: Path) -> None:
    with SimpleCloud("/1.0/user-data", b"") as exo:
        assert collect("exoscale", exo.base_url, tmp_path) is None
        assert exo.requests == []


def test_instance_data_round_trips_through_json() -> None:
    instance = InstanceData(platform="gce", instance_id="1", public_keys=(PublicKey(KEY1, "u"),),
                            report_urls={"phone_home": "http://x"})
    assert InstanceData.from_json(json.loads(json.dumps(instance.to_json()))) == instance


def test_kept_cloud_init_meta_data_of_other_platforms_is_read(tmp_path: Path) -> None:
    (tmp_path / "run/platform").mkdir(parents=True)
    (tmp_path / "run/platform/meta-data").write_text(
        f"instance-id: i-maas-7\nlocal-hostname: node7\npublic-keys: ['{KEY1}']\n")
    instance = collect("maas", "http://127.0.0.1:9", tmp_path)
    assert instance is not None and instance.instance_id == "i-maas-7"
    assert instance.local_hostname == "node7" and instance.public_keys == (PublicKey(KEY1),)
    (tmp_path / "run/platform/meta-data").write_text("{not: yaml: at all")
    assert collect("maas", "http://127.0.0.1:9", tmp_path) is None
