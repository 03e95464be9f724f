"""Fetch the contents a stage writes, all before anything is written.

Resources go through :mod:`provision.fetch.resource` (streamed, decompressed,
hash-verified) with the HTTP client the config's own settings describe
(timeouts, proxy, CAs). Inline ``data:`` contents are part of the config and
already in memory, so they stay in memory; anything else is streamed into an
anonymous temporary file, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import io
import tempfile
from typing import IO, TYPE_CHECKING

from provision.config.model import Config, Resource

if TYPE_CHECKING:
    from provision.fetch.http import HttpClient


class Fetcher:
    """Fetches a config's resources with one lazily made client."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._client: HttpClient | None = None

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            from provision.fetch.settings import client_for_config

            self._client = client_for_config(self.config)
        return self._client

    def fetch(self, resource: Resource) -> IO[bytes]:
        """The resource's bytes (decompressed, verified) as a rewound file object."""
        from provision.fetch.resource import fetch_bytes, fetch_to_file

        source = resource.source
        if source is None:  # no source: empty contents
            return io.BytesIO()
        if source == "" or source.startswith("data:"):  # "": an empty file, as in Ignition
            return io.BytesIO(fetch_bytes(resource, self.client, limit=len(source) * 64 + (1 << 20)))
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, who closes it
        try:
            fetch_to_file(resource, handle, self.client)  # type: ignore[arg-type]
            handle.flush()
            handle.seek(0)
        except BaseException:
            handle.close()
            raise
        return handle

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
