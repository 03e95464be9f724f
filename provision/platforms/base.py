"""What every platform provides, and what a fetch can come back with.

A platform is one function, ``fetch(ctx) -> Found | NoConfig | NeedNetwork``.
In the offline pass (``ctx.offline``) it must not touch the network: it
answers from local sources or returns NeedNetwork, and the online pass asks
again with the network up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from provision.platforms.settings import Settings

if TYPE_CHECKING:
    from provision.fetch.http import HttpClient
    from provision.platforms.transport import Transport


@dataclass(frozen=True)
class Found:
    """The platform gave us config bytes (already decoded).

    ``extras``: what else the platform handed over next to the user data,
    raw, by cloud-init's names (``meta-data``, ``vendor-data``,
    ``network-config``); kept in the run directory for whoever renders them.
    """

    data: bytes
    source: str  # human-readable origin, never containing the data
    extras: Mapping[str, bytes] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class NoConfig:
    """The platform answered: there is no config for this machine."""

    reason: str


@dataclass(frozen=True)
class NeedNetwork:
    """Offline pass only: the config can only come over the network."""

    reason: str


Result = Found | NoConfig | NeedNetwork


def default_client(settings: Settings) -> HttpClient:
    """The HTTP client for metadata and config URLs: our User-Agent, the fetch deadline.

    The deadline (provision.fetch.timeout) bounds every request and every
    config body whole, streamed or not: a server trickling a config must not
    outlast it. No proxy: metadata services are link-local, and a config's
    own proxy settings only apply to what the config references.
    """
    from provision.fetch.http import HttpClient

    return HttpClient(user_agent=settings.user_agent, deadline=settings.fetch_timeout,
                      total_timeout=settings.fetch_timeout, total_timeout_name="provision.fetch.timeout")


@dataclass
class Context:
    settings: Settings
    offline: bool = False
    # Overwrite secrets at their source after reading (VMware guestinfo).
    # Only the real first-boot run does this; `provision fetch` leaves them.
    scrub: bool = False
    client_factory: Callable[[Settings], HttpClient] = default_client
    _client: HttpClient | None = field(default=None, repr=False)

    @property
    def client(self) -> HttpClient:
        """The HTTP client, built on first use (importing requests is not free)."""
        if self._client is None:
            self._client = self.client_factory(self.settings)
        return self._client

    @property
    def transport(self) -> Transport:
        from provision.platforms.transport import HttpClientTransport

        return HttpClientTransport(self.client)


class Platform(Protocol):
    def __call__(self, ctx: Context) -> Result: ...
