"""HTTP metadata platforms against faithful stand-ins on 127.0.0.1 (never a real address)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
import time
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.base import Context, Found, NoConfig
from provision.platforms.http_cloud import fetch_from_entry, load_entries
from provision.platforms.settings import Settings
from tests.standins.aws_imds import TOKEN_HEADER, TTL_HEADER, AwsImds
from tests.standins.azure import USER_DATA_PATH, AzureImds
from tests.standins.clouds import SimpleCloud
from tests.standins.gce import GceMetadata
from tests.standins.metadata import Answer
from tests.standins.openstack import OpenStackMetadata

CONFIG = b'{"provision": {"version": "1.0.0"}}'


def settings_for(platform: str, url: str, tmp_path: Path, timeout: float = 5) -> Settings:
    return Settings.load(platform=platform, metadata_url=url, sys_root=str(tmp_path),
                         cmdline=f"provision.fetch.timeout={timeout:g}",
                         run_dir=str(tmp_path / "run"), environ={})


# --- AWS ----------------------------------------------------------------------

def test_aws_imdsv2_token_is_requested_with_ttl_and_sent_on_every_get(tmp_path: Path) -> None:
    with AwsImds(CONFIG) as imds:
        outcome = acquire_config(settings_for("aws", imds.base_url, tmp_path))
        assert outcome.data == CONFIG
        put, get = imds.requests
        assert (put.method, put.path) == ("PUT", "/latest/api/token")
        assert 1 <= int(put.headers[TTL_HEADER]) <= 21600
        assert (get.method, get.path) == ("GET", "/latest/user-data")
        assert get.headers[TOKEN_HEADER] in imds.tokens
        assert get.headers["User-Agent"].startswith("provision/")


def test_aws_no_user_data_is_no_config(tmp_path: Path) -> None:
    with AwsImds(None) as imds:
        outcome = acquire_config(settings_for("aws", imds.base_url, tmp_path))
    assert outcome.status == "none" and outcome.data is None
    assert "404" in outcome.source


def test_aws_expired_token_is_refreshed_once(tmp_path: Path) -> None:
    with AwsImds(CONFIG) as imds:
        imds.expire_next_tokens = 1  # the first token is already stale when used: 401
        outcome = acquire_config(settings_for("aws", imds.base_url, tmp_path))
        assert outcome.data == CONFIG
        assert imds.count("/latest/api/token", "PUT") == 2
        assert imds.count("/latest/user-data") == 2


def test_aws_token_rejected_twice_fails_instead_of_looping(tmp_path: Path) -> None:
    with AwsImds(CONFIG) as imds:
        imds.expire_next_tokens = 5
        with pytest.raises(FetchError, match="HTTP 401"):
            acquire_config(settings_for("aws", imds.base_url, tmp_path))
        assert imds.count("/latest/api/token", "PUT") == 2


def test_aws_falls_back_to_imdsv1_only_when_token_endpoint_is_404(tmp_path: Path) -> None:
    with AwsImds(CONFIG, v1_only=True) as imds:
        outcome = acquire_config(settings_for("aws", imds.base_url, tmp_path))
        assert outcome.data == CONFIG
        get = imds.requests[-1]
        assert TOKEN_HEADER not in get.headers


def test_aws_disabled_imds_is_a_clear_error(tmp_path: Path) -> None:
    with AwsImds(CONFIG, enabled=False) as imds, pytest.raises(FetchError, match=r"403.*disabled"):
        acquire_config(settings_for("aws", imds.base_url, tmp_path))


def test_aws_throttling_503_is_retried_honouring_retry_after(tmp_path: Path) -> None:
    with AwsImds(CONFIG) as imds:
        imds.throttle(2, retry_after="1")
        started = time.monotonic()
        outcome = acquire_config(settings_for("aws", imds.base_url, tmp_path))
        elapsed = time.monotonic() - started
        assert outcome.data == CONFIG
        assert imds.count("/latest/user-data") == 3
    assert elapsed >= 2.0  # two waits of Retry-After: 1, not the 0.2 s backoff


def test_aws_dropped_connection_and_truncated_body_are_retried(tmp_path: Path) -> None:
    with AwsImds(CONFIG) as imds:
        imds.inject("/latest/api/token", Answer(drop=True))
        imds.inject("/latest/user-data", Answer(200, CONFIG, truncate_at=5))
        outcome = acquire_config(settings_for("aws", imds.base_url, tmp_path))
    assert outcome.data == CONFIG


def test_aws_slow_service_beyond_the_deadline_fails_in_time(tmp_path: Path) -> None:
    with AwsImds(CONFIG) as imds:
        imds.inject("/latest/user-data", *[Answer(200, CONFIG, delay=3)] * 3)
        started = time.monotonic()
        with pytest.raises(FetchError):
            acquire_config(settings_for("aws", imds.base_url, tmp_path, timeout=1.5))
    assert time.monotonic() - started < 10


def test_aws_stand_in_is_faithful_about_ttl_and_dated_token_paths() -> None:
    import requests

    with AwsImds(CONFIG) as imds:
        url = imds.base_url
        assert requests.put(url + "/latest/api/token", timeout=5).status_code == 400
        bad = requests.put(url + "/latest/api/token", headers={TTL_HEADER: "0"}, timeout=5)
        assert bad.status_code == 400
        dated = requests.put(url + "/2021-01-03/api/token", headers={TTL_HEADER: "60"}, timeout=5)
        assert dated.status_code == 403
        assert requests.get(url + "/latest/user-data", timeout=5).status_code == 401
        forged = requests.get(url + "/latest/user-data", headers={TOKEN_HEADER: "x"}, timeout=5)
        assert forged.status_code == 401 and forged.headers["Server"] == "EC2ws"


def test_aws_races_ipv4_and_ipv6_addresses_and_takes_the_one_that_answers(tmp_path: Path) -> None:
    import socket

    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"  # bound, not listening: refused
    try:
        with AwsImds(CONFIG) as imds:
            entry = load_entries()["aws"]
            settings = settings_for("aws", "", tmp_path, timeout=3)
            settings = dataclasses.replace(settings, metadata_url=None)
            patched = type(entry)(**{**entry.__dict__, "base_urls": (dead_url, imds.base_url)})
            result = fetch_from_entry(patched, Context(settings))
            assert isinstance(result, Found) and result.data == CONFIG
    finally:
        dead.close()


# --- GCE ----------------------------------------------------------------------

def test_gce_sends_metadata_flavor_and_decodes_base64_user_data(tmp_path: Path) -> None:
    attrs = {"user-data": base64.b64encode(CONFIG), "user-data-encoding": b"base64"}
    with GceMetadata(attrs) as gce:
        outcome = acquire_config(settings_for("gce", gce.base_url, tmp_path))
        assert outcome.data == CONFIG
        assert all(r.headers["Metadata-Flavor"] == "Google" for r in gce.requests)
        assert not any(r.headers.get("X-Forwarded-For") for r in gce.requests)


def test_gce_missing_user_data_is_no_config(tmp_path: Path) -> None:
    with GceMetadata({}) as gce:
        outcome = acquire_config(settings_for("gce", gce.base_url, tmp_path))
    assert outcome.status == "none"


def test_gce_answer_without_metadata_flavor_is_rejected(tmp_path: Path) -> None:
    with GceMetadata({"user-data": CONFIG}, impostor=True) as gce, \
            pytest.raises(FetchError, match="Metadata-Flavor"):
        acquire_config(settings_for("gce", gce.base_url, tmp_path))


def test_gce_stand_in_refuses_requests_without_flavor_or_with_forwarding() -> None:
    import requests

    with GceMetadata({"user-data": CONFIG}) as gce:
        url = gce.base_url + "/computeMetadata/v1/instance/attributes/user-data"
        assert requests.get(url, timeout=5).status_code == 403
        forwarded = {"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}
        assert requests.get(url, headers=forwarded, timeout=5).status_code == 403


# --- OpenStack (service only; the config drive is in test_platforms_media) ------

def test_openstack_service_user_data_and_404(tmp_path: Path) -> None:
    with OpenStackMetadata(CONFIG) as nova:
        outcome = acquire_config(settings_for("openstack", nova.base_url, tmp_path))
        assert outcome.data == CONFIG
        assert "/openstack/latest/user_data" in [r.path for r in nova.requests]
    with OpenStackMetadata(None) as nova:
        assert acquire_config(settings_for("openstack", nova.base_url, tmp_path)).status == "none"


def test_openstack_gzipped_user_data_is_recognised_by_magic(tmp_path: Path) -> None:
    with OpenStackMetadata(gzip.compress(CONFIG)) as nova:
        assert acquire_config(settings_for("openstack", nova.base_url, tmp_path)).data == CONFIG


# --- Azure ------------------------------------------------------------------------

def test_azure_imds_user_data_base64_with_warm_up_retries(tmp_path: Path) -> None:
    with AzureImds(CONFIG, warm_up=(404, 410, 429, 500)) as imds:
        outcome = acquire_config(settings_for("azure", imds.base_url, tmp_path, timeout=20))
        assert outcome.data == CONFIG
        last = imds.requests[-1]
        assert last.path == USER_DATA_PATH and last.headers["Metadata"] == "true"
        assert last.query["api-version"] and last.query["format"] == ["text"]
        assert len(imds.requests) == 5


def test_azure_empty_user_data_is_no_config(tmp_path: Path) -> None:
    with AzureImds(None) as imds:
        assert acquire_config(settings_for("azure", imds.base_url, tmp_path)).status == "none"


# --- declarative clouds ----------------------------------------------------------

def test_hetzner_204_means_no_user_data(tmp_path: Path) -> None:
    with SimpleCloud("/hetzner/v1/userdata", None, no_data_status=204) as cloud:
        assert acquire_config(settings_for("hetzner", cloud.base_url, tmp_path)).status == "none"
    with SimpleCloud("/hetzner/v1/userdata", CONFIG) as cloud:
        assert acquire_config(settings_for("hetzner", cloud.base_url, tmp_path)).data == CONFIG


def test_oracle_sends_bearer_header_and_decodes_base64(tmp_path: Path) -> None:
    with SimpleCloud("/opc/v2/instance/metadata/user_data", base64.b64encode(CONFIG),
                     required_headers={"Authorization": "Bearer Oracle"}) as cloud:
        assert acquire_config(settings_for("oracle", cloud.base_url, tmp_path)).data == CONFIG


def test_akamai_token_step_then_base64_gzip_user_data(tmp_path: Path) -> None:
    payload = base64.b64encode(gzip.compress(CONFIG))
    with SimpleCloud("/v1/user-data", payload, token_path="/v1/token",
                     token_request_header="Metadata-Token-Expiry-Seconds",
                     token_header="Metadata-Token") as cloud:
        assert acquire_config(settings_for("akamai", cloud.base_url, tmp_path)).data == CONFIG
        assert [r.method for r in cloud.requests] == ["PUT", "GET"]


@pytest.mark.parametrize("name", ["digitalocean", "exoscale", "vultr", "upcloud", "alibaba"])
def test_plain_clouds_fetch_their_user_data_path(name: str, tmp_path: Path) -> None:
    entry = load_entries()[name]
    with SimpleCloud(entry.user_data, CONFIG) as cloud:
        assert acquire_config(settings_for(name, cloud.base_url, tmp_path)).data == CONFIG
    with SimpleCloud(entry.user_data, None) as cloud:
        assert acquire_config(settings_for(name, cloud.base_url, tmp_path)).status == "none"


@pytest.mark.root
def test_scaleway_is_asked_from_a_privileged_source_port(tmp_path: Path) -> None:
    """Scaleway's service only answers source ports below 1024 (binding one needs root)."""
    if os.geteuid() != 0:
        pytest.skip("binding a source port below 1024 needs root")
    with SimpleCloud("/user_data/cloud-init", CONFIG) as cloud:
        assert acquire_config(settings_for("scaleway", cloud.base_url, tmp_path)).data == CONFIG
        assert [r.client_port < 1024 for r in cloud.requests] == [True]


def test_offline_pass_writes_neednet_flag_for_http_clouds(tmp_path: Path) -> None:
    settings = settings_for("aws", "http://127.0.0.1:9", tmp_path)
    outcome = acquire_config(settings, offline=True)
    assert outcome.status == "need-network"
    assert settings.neednet_flag.is_file()


def test_every_datasource_entry_is_well_formed() -> None:
    entries = load_entries()
    assert {"aws", "gce", "azure", "openstack", "digitalocean", "hetzner", "exoscale", "vultr",
            "oracle", "akamai", "scaleway", "upcloud", "alibaba"} <= set(entries)
    for entry in entries.values():
        assert entry.base_urls and entry.user_data.startswith("/")
        # Equinix Metal is bare metal: DMI names the server's maker, not the cloud, so
        # it is only ever named (ignition.platform.id=packet / provision.platform=packet).
        assert entry.detect or entry.name == "packet", f"{entry.name} has no detection rules"
        assert not (entry.no_data_statuses & entry.retry_statuses)


def test_metadata_url_override_replaces_only_scheme_and_host() -> None:
    for entry in load_entries().values():
        for base in entry.base_urls:
            assert base.count("/") == 2, f"{entry.name}: put paths in user_data, not {base}"


def test_no_config_result_type_for_empty_body(tmp_path: Path) -> None:
    with SimpleCloud("/metadata/v1/user-data", b"  \n") as cloud:
        entry = load_entries()["digitalocean"]
        result = fetch_from_entry(entry, Context(settings_for("digitalocean", cloud.base_url, tmp_path)))
    assert isinstance(result, NoConfig)


def test_gce_slow_and_dropped_answers_within_the_deadline(tmp_path: Path) -> None:
    path = "/computeMetadata/v1/instance/attributes/user-data"
    with GceMetadata({"user-data": CONFIG}) as gce:
        gce.inject(path, Answer(drop=True), Answer(200, CONFIG, delay=1.0, truncate_at=3))
        outcome = acquire_config(settings_for("gce", gce.base_url, tmp_path, timeout=10))
        assert outcome.data == CONFIG
        assert gce.count(path) == 3
