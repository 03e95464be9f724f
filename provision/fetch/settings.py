"""An HttpClient configured from a config's ``provision`` section: timeouts, proxy, extra CAs.

Ignition's rule, kept here: once a config has been fetched, its settings apply
to every later fetch (referenced configs, file contents). CA certificates are
themselves resources, fetched with the client as it was before they apply.
"""

from __future__ import annotations

from provision.config import model
from provision.errors import FetchError
from provision.fetch.http import DEFAULT_RESPONSE_HEADER_TIMEOUT, HttpClient
from provision.fetch.resource import (
    DEFAULT_ENDPOINTS,
    ObjectStoreEndpoints,
    describe_source,
    fetch_bytes,
)
from provision.fetch.urls import ProxySettings

_CA_LIMIT = 4 << 20


def client_for_meta(
    client: HttpClient, meta: model.Meta, *, endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS
) -> HttpClient:
    """``client`` with ``meta.timeouts``, ``meta.proxy`` and ``meta.security.tls`` applied."""
    timeouts, proxy = meta.timeouts, meta.proxy
    pems = tuple(_fetch_ca(ca, client, endpoints) for ca in meta.security.tls.certificate_authorities)
    return client.with_settings(
        response_header_timeout=float(timeouts.http_response_headers or DEFAULT_RESPONSE_HEADER_TIMEOUT),
        total_timeout=float(timeouts.http_total) if timeouts.http_total else None,
        total_timeout_name="timeouts.httpTotal",
        proxies=ProxySettings(proxy.http_proxy, proxy.https_proxy, proxy.no_proxy),
        ca_certificates=client.settings.ca_certificates + pems,
    )


def client_for_config(
    config: model.Config, client: HttpClient | None = None, *,
    endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS,
) -> HttpClient:
    """The client every fetch made on behalf of ``config`` should use (e.g. file contents)."""
    return client_for_meta(client or HttpClient(), config.provision, endpoints=endpoints)


def _fetch_ca(resource: model.Resource, client: HttpClient, endpoints: ObjectStoreEndpoints) -> bytes:
    data = fetch_bytes(resource, client, limit=_CA_LIMIT, endpoints=endpoints)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise FetchError(f"certificate authority {describe_source(resource.source)}: not a PEM certificate")
    return data
