"""Fetch a config named by URL (kernel command line, NoCloud seed) with the fetch core.

``data:`` URLs need no network and are answered in the offline pass; http,
https, tftp, s3 and gs go through :mod:`provision.fetch.resource` in the
online pass. A 404 is an error: the URL was named on purpose.
"""

from __future__ import annotations

from provision.platforms.base import Context, Found, NeedNetwork, Result
from provision.platforms.payload import decode_payload

NETWORK_SCHEMES = ("http", "https", "tftp", "s3", "gs", "arn")


def scheme_of(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def describe(url: str) -> str:
    from provision.fetch.resource import describe_source

    return describe_source(url)


def fetch_config_url(ctx: Context, url: str, what: str) -> Result:
    from provision.config.model import Resource
    from provision.errors import FetchError
    from provision.fetch.resource import decode_data_url, fetch_bytes

    scheme = scheme_of(url)
    if scheme == "data":
        return Found(decode_payload(decode_data_url(url), None, what), f"{what} (data: URL)")
    if scheme not in NETWORK_SCHEMES:
        raise FetchError(f"{what}: unsupported URL scheme {scheme + ':' if scheme else '(none)'} "
                         f"(use {', '.join(('data', *NETWORK_SCHEMES[:-1]))})")
    if ctx.offline:
        return NeedNetwork(f"{what}: {describe(url)} needs the network")
    data = fetch_bytes(Resource(source=url), ctx.client)
    return Found(decode_payload(data, None, what), f"{what} {describe(url)}")
