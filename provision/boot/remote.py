"""Which sources in a config can only be read over the network.

The offline pass asks this of the config it found: a ``data:`` URL is
inline; http, https, tftp, s3 and gs URLs (and S3 ARNs) need the network,
either for a referenced config now or for file contents and CA certificates
later. So does a LUKS volume's Tang server whose advertisement the config
does not carry: the disks stage fetches it before anything is written. Other ``source`` fields (a container volume's host path) are not
resources at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

NETWORK_SCHEMES = frozenset({"http", "https", "tftp", "s3", "gs", "arn"})


def _sources(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "source" and isinstance(value, str):
                yield value
            else:
                yield from _sources(value)
    elif isinstance(node, list):
        for item in node:
            yield from _sources(item)


def remote_sources(spec: dict[str, Any]) -> list[str]:
    """Every source in ``spec`` (a newest-spec dict) that needs the network, in order."""
    return [s for s in _sources(spec) if scheme(s).lower() in NETWORK_SCHEMES] + _tang_servers(spec)


def _tang_servers(spec: dict[str, Any]) -> list[str]:
    storage = spec.get("storage") if isinstance(spec, dict) else None
    volumes = storage.get("luks") if isinstance(storage, dict) else None
    found = []
    for volume in volumes if isinstance(volumes, list) else ():
        clevis = volume.get("clevis") if isinstance(volume, dict) else None
        servers = clevis.get("tang") if isinstance(clevis, dict) else None
        for server in servers if isinstance(servers, list) else ():
            if isinstance(server, dict) and isinstance(server.get("url"), str) and not server.get("advertisement"):
                found.append(server["url"])
    return found


def scheme(source: str) -> str:
    """The URL scheme, for messages: never the whole URL (it may carry a token)."""
    head, sep, _ = source.partition(":")
    return head if sep else "?"
