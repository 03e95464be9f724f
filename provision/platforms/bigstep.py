"""Bigstep (cloud-init's datasource): a URL in ``/var/lib/cloud/data/seed/bigstep/url``.

The URL answers a JSON object with ``userdata_raw`` (the config),
``vendordata_raw`` and ``metadata``; the latter two are kept raw. The seed
file must be where provision runs (in the initramfs: copied in by the image
build). No seed file: no config.
"""

from __future__ import annotations

import json

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NeedNetwork, NoConfig, Result
from provision.platforms.payload import decode_payload

URL_FILE = "/var/lib/cloud/data/seed/bigstep/url"
MAX_BYTES = 16 << 20


def fetch(ctx: Context) -> Result:
    try:
        url = ctx.settings.host_path(URL_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return NoConfig(f"bigstep: no {URL_FILE}")
    except OSError as exc:
        raise FetchError(f"bigstep: cannot read {URL_FILE}: {exc.strerror}") from None
    if ctx.offline:
        return NeedNetwork("bigstep: the metadata URL needs the network")
    reply = ctx.transport.request("GET", url, headers={})
    from provision.fetch.http import redact_url

    shown = redact_url(url)
    if reply.status != 200:
        raise FetchError(f"bigstep: {shown} answered HTTP {reply.status}")
    try:
        document = json.loads(reply.body)
        user_data = document["userdata_raw"]
    except (ValueError, KeyError, TypeError):
        raise FetchError(f"bigstep: {shown} did not answer a JSON object with userdata_raw") from None
    extras: dict[str, bytes] = {}
    if isinstance(document.get("vendordata_raw"), str):
        extras["vendor-data"] = document["vendordata_raw"].encode()
    if "metadata" in document:
        extras["meta-data"] = json.dumps(document["metadata"]).encode()
    if not isinstance(user_data, str) or not user_data.strip():
        return NoConfig(f"bigstep: {shown} has no user data")
    return Found(decode_payload(user_data.encode(), None, f"bigstep {shown}"),
                 f"bigstep {shown}", extras)
