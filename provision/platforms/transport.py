"""The datasources' view of HTTP: one request in, status + headers + body out.

Platforms interpret statuses themselves (401 means "new token", 204 "no
data", 403 "disabled"), so unlike :class:`provision.fetch.http.HttpClient`
this never raises for a status: it returns it. Retries, backoff, Retry-After
and the deadline are the client's. Metadata services are link-local, so no
proxy is ever used for them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from provision.fetch.http import HttpClient

# A metadata answer is small (16 KiB on AWS, 512 KB on GCE); cap what we buffer.
MAX_METADATA_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    def request(
        self, method: str, url: str, *, headers: Mapping[str, str],
        retry_statuses: Collection[int] = (), privileged_source_port: bool = False,
    ) -> Reply: ...


class HttpClientTransport:
    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str],
        retry_statuses: Collection[int] = (), privileged_source_port: bool = False,
    ) -> Reply:
        # Scaleway only answers clients bound to a source port below 1024 (root).
        client = self.client.with_settings(privileged_source_port=True) if privileged_source_port else self.client
        statuses = frozenset(retry_statuses)
        attempt = 1
        started = self.client.settings.clock()
        while True:
            reply = self._request_once(client, method, url, headers, statuses)
            # HttpClient hands 404 back at once; a platform that lists 404 as
            # retryable (Azure, while its IMDS warms up) gets the same backoff.
            if reply.status != 404 or 404 not in statuses:
                return reply
            deadline = self.client.settings.deadline
            delay = self.client.backoff_delay(attempt)
            if deadline is not None and self.client.settings.clock() - started + delay >= deadline:
                return reply
            self.client.settings.sleep(delay)
            attempt += 1

    def _request_once(
        self, client: HttpClient, method: str, url: str, headers: Mapping[str, str],
        statuses: frozenset[int],
    ) -> Reply:
        from provision.fetch.http import HttpStatusError

        try:
            if method == "GET":
                response = client.get(url, headers, retry_statuses=statuses,
                                           limit=MAX_METADATA_BYTES)
            elif method == "PUT":
                response = client.put(url, headers, retry_statuses=statuses,
                                           limit=MAX_METADATA_BYTES)
            else:
                raise ValueError(f"unsupported method {method}")
        except HttpStatusError as exc:
            return Reply(exc.status, exc.headers, b"")
        return Reply(response.status, response.headers, response.body)
