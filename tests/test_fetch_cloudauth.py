"""s3://, arn:, gs:// and Azure blob sources read with the instance's credentials, as
Ignition does, against stand-ins that check the SigV4 signature or the bearer token."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from provision.config.model import Resource
from provision.errors import FetchError
from provision.fetch import cloudauth
from provision.fetch.http import HttpClient
from provision.fetch.resource import ObjectStoreEndpoints, fetch_bytes
from provision.fetch.sigv4 import AwsCredentials, signed_headers
from provision.platforms.acquire import acquire_config
from provision.platforms.settings import Settings
from tests.standins.object_stores import (
    SECRET_KEY,
    AwsRoleAndS3,
    AzureIdentityAndBlob,
    GceTokenAndGcs,
)

CONFIG = b'{"provision": {"version": "1.0.0"}}'


def client() -> HttpClient:
    return HttpClient(deadline=10)


def test_sigv4_matches_aws_worked_example() -> None:
    # AWS's documented example: GET /test.txt from examplebucket, Range bytes=0-9.
    headers = signed_headers(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"},
        AwsCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "us-east-1", "s3", "20130524T000000Z")
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_aws_role_signs_s3_requests(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with AwsRoleAndS3({"bucket/dir/config.ign": CONFIG}) as aws:
        cloudauth.activate("aws", aws.base_url)
        endpoints = ObjectStoreEndpoints(s3=aws.endpoint())
        for source in ("s3://bucket/dir/config.ign", "arn:aws:s3:::bucket/dir/config.ign"):
            assert fetch_bytes(Resource(source=source), client(), endpoints=endpoints) == CONFIG
        assert aws.count("/latest/api/token", "PUT") == 1  # credentials looked up once
        s3 = [r for r in aws.requests if r.path.startswith("/s3/")]
        assert len(s3) == 2 and all("Signature=" in r.headers["Authorization"] for r in s3)
    assert SECRET_KEY not in caplog.text and aws.session_token not in caplog.text


def test_aws_bucket_in_another_region_is_signed_again_for_it() -> None:
    with AwsRoleAndS3({"b/k": CONFIG}, instance_region="us-east-1",
                      bucket_region="eu-west-1") as aws:
        cloudauth.activate("aws", aws.base_url)
        data = fetch_bytes(Resource(source="s3://b/k"), client(),
                           endpoints=ObjectStoreEndpoints(s3=aws.endpoint()))
        assert data == CONFIG
        assert aws.count("/s3/b/k") == 2


def test_a_tampered_signature_is_refused_by_the_stand_in() -> None:
    # The stand-in really checks: sign with the wrong secret and it says no.
    with AwsRoleAndS3({"b/k": CONFIG}) as aws:
        creds = cloudauth.activate("aws", aws.base_url)
        assert creds is not None
        real_lookup = creds._aws_credentials

        def lookup(c: HttpClient) -> tuple[object, float]:
            found = real_lookup(c)
            assert found is not None
            (good, region), expires = found
            wrong = AwsCredentials(good.access_key_id, "not-" + SECRET_KEY, good.session_token)
            return (wrong, region), expires

        creds._aws_credentials = lookup  # type: ignore[method-assign,assignment]
        with pytest.raises(FetchError, match=r"HTTP 403.*with this instance's credentials"):
            fetch_bytes(Resource(source="s3://b/k"), client(),
                        endpoints=ObjectStoreEndpoints(s3=aws.endpoint()))


def test_aws_without_a_role_reads_anonymously() -> None:
    with AwsRoleAndS3({"b/k": CONFIG}, role=None, public=True) as aws:
        cloudauth.activate("aws", aws.base_url)
        data = fetch_bytes(Resource(source="s3://b/k"), client(),
                           endpoints=ObjectStoreEndpoints(s3=aws.endpoint()))
        assert data == CONFIG
        (get,) = [r for r in aws.requests if r.path == "/s3/b/k"]
        assert "Authorization" not in get.headers


def test_other_platforms_never_look_for_credentials() -> None:
    with AwsRoleAndS3({"b/k": CONFIG}, public=True) as aws:
        cloudauth.activate("metal", aws.base_url)
        fetch_bytes(Resource(source="s3://b/k"), client(),
                    endpoints=ObjectStoreEndpoints(s3=aws.endpoint()))
        assert [r.path for r in aws.requests] == ["/s3/b/k"]


def test_gce_service_account_token_for_gs() -> None:
    with GceTokenAndGcs({"bucket/cfg.ign": CONFIG}) as gce:
        cloudauth.activate("gce", gce.base_url)
        data = fetch_bytes(Resource(source="gs://bucket/cfg.ign"), client(),
                           endpoints=ObjectStoreEndpoints(gs=gce.endpoint()))
        assert data == CONFIG
        token_request = gce.requests[0]
        assert token_request.headers["Metadata-Flavor"] == "Google"


def test_gce_without_a_service_account_reads_anonymously() -> None:
    with GceTokenAndGcs({"b/k": CONFIG}, service_account=False, public=True) as gce:
        cloudauth.activate("gce", gce.base_url)
        assert fetch_bytes(Resource(source="gs://b/k"), client(),
                           endpoints=ObjectStoreEndpoints(gs=gce.endpoint())) == CONFIG
        assert "Authorization" not in gce.requests[-1].headers


def test_azure_managed_identity_for_blob_urls() -> None:
    with AzureIdentityAndBlob({"container/cfg.ign": CONFIG}) as azure:
        cloudauth.activate("azure", azure.base_url, azure_blob_hosts=("127.0.0.1",))
        url = f"{azure.base_url}/blob/container/cfg.ign"
        assert fetch_bytes(Resource(source=url), client()) == CONFIG
        assert azure.count("/metadata/identity/oauth2/token") == 1


def test_azure_without_identity_reads_blobs_anonymously() -> None:
    with AzureIdentityAndBlob({"c/b": CONFIG}, identity=False, public=True) as azure:
        cloudauth.activate("azure", azure.base_url, azure_blob_hosts=("127.0.0.1",))
        assert fetch_bytes(Resource(source=f"{azure.base_url}/blob/c/b"), client()) == CONFIG
        assert "Authorization" not in azure.requests[-1].headers


def test_azure_blob_refused_to_the_identity_falls_back_to_plain_https() -> None:
    # As Ignition: a public container (or a SAS URL) still works when the identity
    # has no role on it.
    with AzureIdentityAndBlob({"c/b": CONFIG}, public=True, identity_has_access=False) as azure:
        cloudauth.activate("azure", azure.base_url, azure_blob_hosts=("127.0.0.1",))
        assert fetch_bytes(Resource(source=f"{azure.base_url}/blob/c/b"), client()) == CONFIG
        first, second = [r for r in azure.requests if r.path == "/blob/c/b"]
        assert first.headers["Authorization"].startswith("Bearer ")
        assert "Authorization" not in second.headers


def test_azure_stack_has_no_identity_lookup() -> None:
    with AzureIdentityAndBlob({"c/b": CONFIG}, public=True) as azure:
        cloudauth.activate("azurestack", azure.base_url, azure_blob_hosts=("127.0.0.1",))
        assert fetch_bytes(Resource(source=f"{azure.base_url}/blob/c/b"), client()) == CONFIG
        assert azure.count("/metadata/identity/oauth2/token") == 0


def test_azure_blob_urls_only_on_azure() -> None:
    with AzureIdentityAndBlob({"c/b": CONFIG}) as azure:
        cloudauth.activate("aws", azure.base_url, azure_blob_hosts=("127.0.0.1",))
        with pytest.raises(FetchError, match="401"):
            fetch_bytes(Resource(source=f"{azure.base_url}/blob/c/b"), client())
        assert azure.count("/metadata/identity/oauth2/token") == 0


def test_acquire_on_aws_activates_the_role_for_the_config_url(tmp_path: Path) -> None:
    with AwsRoleAndS3({"b/k": CONFIG}) as aws:
        settings = Settings.load(platform="aws", metadata_url=aws.base_url,
                                 sys_root=str(tmp_path), cmdline="", environ={})
        assert acquire_config(settings).status == "none"  # this stand-in has no user data
        active = cloudauth.active()
        assert active is not None and active.platform == "aws"
        assert active.metadata_base == aws.base_url
