"""The instance's own credentials for object-store sources, as Ignition uses them.

On AWS, ``s3://`` and ``arn:aws:s3:::`` sources are read with the instance
role's temporary credentials (IMDSv2: a session token, the role name, then
its keys) and SigV4-signed; on Google Compute Engine ``gs://`` sources carry
the default service account's OAuth token; on Azure
``https://<account>.blob.core.windows.net/...`` sources carry a managed
identity token for ``https://storage.azure.com/``. Where the platform has no
such credentials (no role attached, no service account, no identity) the
source is read anonymously, as before; an Azure blob that cannot be read
with the identity (or whose token cannot be had) is read as a plain HTTPS
URL, as Ignition falls back (a SAS URL, a public container). On every
other platform nothing is looked up.

The platform is known only once detection has run, so the boot phases and
``provision fetch`` call :func:`activate` for their process (as Ignition's
platform hook configures its fetcher); :mod:`provision.fetch.resource` asks
:func:`active` when it opens an object-store source. Credentials are looked
up on first use and kept for the process (refreshed shortly before they
expire). Secrets never reach logs or messages.

Endpoints are injectable: ``metadata_base`` replaces the metadata service
(``--metadata-url`` / ``PROVISION_METADATA_URL`` in the boot process), and
``azure_blob_hosts`` lists the host suffixes treated as Azure Blob storage.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from provision.errors import FetchError
from provision.fetch.sigv4 import AwsCredentials, signed_headers

if TYPE_CHECKING:
    from provision.fetch.http import HttpClient

log = logging.getLogger(__name__)

DEFAULT_METADATA_BASE = "http://169.254.169.254"
AZURE_BLOB_HOSTS = (".blob.core.windows.net",)
AZURE_STORAGE_RESOURCE = "https://storage.azure.com/"
AZURE_STORAGE_VERSION = "2021-08-06"  # bearer tokens need 2017-11-09 or later
AWS_TOKEN_TTL = "21600"
# Credential look-ups are quick on the platform that has them; never the whole fetch wait.
LOOKUP_DEADLINE = 30.0
REFRESH_MARGIN = 300.0  # seconds before expiry that a token counts as stale

AWS_PLATFORMS = frozenset({"aws"})
GCE_PLATFORMS = frozenset({"gce"})
AZURE_PLATFORMS = frozenset({"azure"})  # Ignition sets up Azure credentials on azure only


@dataclass(frozen=True)
class Signed:
    """How to send one object-store request: its URL and the headers to add."""

    url: str
    headers: Mapping[str, str]


@dataclass
class PlatformCredentials:
    """The credentials of one platform's instance, looked up lazily."""

    platform: str
    metadata_base: str = DEFAULT_METADATA_BASE
    azure_blob_hosts: tuple[str, ...] = AZURE_BLOB_HOSTS
    clock: Callable[[], float] = time.time
    _cached: dict[str, tuple[Any, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- what resource.py asks ------------------------------------------------

    def for_object(self, scheme: str, url: str, client: HttpClient) -> Signed | None:
        """Headers for an s3/gs object URL, or None to read it anonymously."""
        if scheme == "s3" and self.platform in AWS_PLATFORMS:
            return self._aws_signed(url, client, region=None)
        if scheme == "gs" and self.platform in GCE_PLATFORMS:
            token = self._token("gce", client, self._gce_token)
            return Signed(url, {"Authorization": f"Bearer {token}"}) if token else None
        return None

    def resign_s3(self, url: str, client: HttpClient, region: str) -> Signed | None:
        """The same S3 request signed for ``region`` (the bucket lives elsewhere)."""
        return self._aws_signed(url, client, region=region)

    def is_azure_blob(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        return self.platform in AZURE_PLATFORMS and any(
            host == suffix.lstrip(".") or host.endswith(suffix) for suffix in self.azure_blob_hosts)

    def for_azure_blob(self, url: str, client: HttpClient) -> Signed | None:
        token = self._token("azure", client, self._azure_token)
        if not token:
            return None
        return Signed(url, {"Authorization": f"Bearer {token}", "x-ms-version": AZURE_STORAGE_VERSION})

    # -- AWS ----------------------------------------------------------------

    def _aws_signed(self, url: str, client: HttpClient, region: str | None) -> Signed | None:
        found = self._token("aws", client, self._aws_credentials)
        if not found:
            return None
        credentials, instance_region = found
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        headers = signed_headers("GET", url, {}, credentials, region or instance_region, "s3",
                                 amz_date)
        return Signed(url, headers)

    def _aws_credentials(self, client: HttpClient) -> tuple[Any, float] | None:
        base = self.metadata_base.rstrip("/")
        token_reply = client.put(f"{base}/latest/api/token",
                                 {"X-aws-ec2-metadata-token-ttl-seconds": AWS_TOKEN_TTL})
        headers = ({"X-aws-ec2-metadata-token": token_reply.body.decode().strip()}
                   if token_reply.found else {})  # 404: IMDSv1 only, as for the user data
        roles = client.get(f"{base}/latest/meta-data/iam/security-credentials/", headers)
        names = roles.body.decode("utf-8", "replace").split() if roles.has_data else []
        if not names:
            log.info("aws: no instance role; reading S3 objects anonymously")
            return None
        answer = client.get(f"{base}/latest/meta-data/iam/security-credentials/"
                            f"{quote(names[0], safe='')}", headers)
        document = _json(answer.body, "aws: the instance role's credentials")
        if document.get("Code", "Success") != "Success":
            raise FetchError(f"aws: the instance role's credentials are unavailable "
                             f"(Code {document.get('Code')!r})")
        try:
            credentials = AwsCredentials(document["AccessKeyId"], document["SecretAccessKey"],
                                         document.get("Token"))
        except KeyError as missing:
            raise FetchError(f"aws: the instance role's credentials lack {missing}") from None
        region_reply = client.get(f"{base}/latest/meta-data/placement/region", headers)
        region = region_reply.body.decode().strip() if region_reply.has_data else "us-east-1"
        expires = _iso_seconds(document.get("Expiration")) or self.clock() + 3600
        log.info("aws: S3 requests signed with the instance role %s", names[0])
        return (credentials, region), expires

    # -- Google ---------------------------------------------------------------

    def _gce_token(self, client: HttpClient) -> tuple[Any, float] | None:
        base = self.metadata_base.rstrip("/")
        answer = client.get(f"{base}/computeMetadata/v1/instance/service-accounts/default/token",
                            {"Metadata-Flavor": "Google"})
        if not answer.found:
            log.info("gce: no service account; reading gs:// objects anonymously")
            return None
        if answer.headers.get("Metadata-Flavor") != "Google":
            raise FetchError("gce: the token answer lacks 'Metadata-Flavor: Google'; "
                             "not the GCE metadata service")
        document = _json(answer.body, "gce: the service account token")
        return _bearer(document, self.clock(), "gce")

    # -- Azure ---------------------------------------------------------------

    def _azure_token(self, client: HttpClient) -> tuple[Any, float] | None:
        from provision.fetch.http import HttpStatusError

        base = self.metadata_base.rstrip("/")
        url = (f"{base}/metadata/identity/oauth2/token?api-version=2018-02-01"
               f"&resource={quote(AZURE_STORAGE_RESOURCE, safe='')}")
        try:
            answer = client.get(url, {"Metadata": "true"}, retry_statuses=(404, 410, 429))
        except HttpStatusError as exc:
            if exc.status == 400:  # "Identity not found": no managed identity assigned
                log.info("azure: no managed identity; reading blobs anonymously")
                return None
            raise
        document = _json(answer.body, "azure: the managed identity token")
        return _bearer(document, self.clock(), "azure")

    # -- caching ---------------------------------------------------------------

    def _token(self, kind: str, client: HttpClient,
               lookup: Callable[[HttpClient], tuple[Any, float] | None]) -> Any:
        from provision.fetch.urls import ProxySettings

        with self._lock:
            cached = self._cached.get(kind)
            if cached is not None and cached[1] - REFRESH_MARGIN > self.clock():
                return cached[0]
            # The metadata service is link-local: never through the config's proxy.
            deadline = client.settings.deadline
            quick = client.with_settings(
                proxies=ProxySettings(),
                deadline=LOOKUP_DEADLINE if deadline is None else min(deadline, LOOKUP_DEADLINE))
            try:
                found = lookup(quick)
            finally:
                quick.close()
            value = None if found is None else found[0]
            self._cached[kind] = (value, float("inf") if found is None else found[1])
            return value


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise FetchError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise FetchError(f"{what} is not a JSON object")
    return value


def _bearer(document: Mapping[str, Any], now: float, what: str) -> tuple[str, float]:
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise FetchError(f"{what}: the token answer has no access_token")
    try:
        lifetime = float(document.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    return token, now + lifetime


def _iso_seconds(value: object) -> float | None:
    """Seconds since the epoch for an ISO 8601 UTC time such as 2026-01-01T00:00:00Z."""
    import calendar

    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value.replace("Z", ""), "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


_active: PlatformCredentials | None = None


def activate(platform: str | None, metadata_base: str | None = None,
             azure_blob_hosts: tuple[str, ...] = AZURE_BLOB_HOSTS) -> PlatformCredentials | None:
    """Use ``platform``'s instance credentials for object-store sources in this process."""
    global _active
    if not platform or platform not in AWS_PLATFORMS | GCE_PLATFORMS | AZURE_PLATFORMS:
        _active = None
    else:
        _active = PlatformCredentials(platform, metadata_base or DEFAULT_METADATA_BASE,
                                      azure_blob_hosts)
    return _active


def active() -> PlatformCredentials | None:
    return _active
