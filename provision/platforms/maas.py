"""MAAS: user data from the MAAS metadata service, with OAuth 1.0 (PLAINTEXT) signatures.

Where the credentials come from, first found wins (cloud-init's places):

1. ``cloud-config-url=URL`` on the kernel command line (MAAS's ephemeral
   boots): a cloud-config whose ``datasource: MAAS:`` section has them;
2. ``/etc/cloud/cloud.cfg.d/*.cfg`` (a deployed image; in the initramfs
   only if the image build copied it in), the same section.

The section holds ``metadata_url``, ``consumer_key``, ``token_key``,
``token_secret`` and optionally ``consumer_secret``. We read
``<metadata_url>/2012-03-01/user-data`` (404: no user data) and keep
``meta-data/instance-id``, ``meta-data/local-hostname`` and
``meta-data/public-keys`` as YAML meta-data and ``meta-data/vendor-data`` raw. Every request is signed as cloud-init
signs it: ``Authorization: OAuth ...`` with the PLAINTEXT method, a fresh
nonce and the current time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NeedNetwork, NoConfig, Result
from provision.platforms.localread import read_platform_file
from provision.platforms.payload import decode_payload

VERSION = "2012-03-01"
CLOUD_CFG_DIR = "/etc/cloud/cloud.cfg.d"
KEYS = ("metadata_url", "consumer_key", "token_key", "token_secret")


def oauth_header(consumer_key: str, token_key: str, token_secret: str,
                 consumer_secret: str = "", *, now: float | None = None,
                 nonce: str | None = None) -> str:
    """An OAuth 1.0 ``Authorization`` header value with the PLAINTEXT signature."""
    signature = f"{quote(consumer_secret, safe='~')}&{quote(token_secret, safe='~')}"
    params = {
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_timestamp": str(int(time.time() if now is None else now)),
        "oauth_version": "1.0",
        "oauth_signature_method": "PLAINTEXT",
        "oauth_consumer_key": consumer_key,
        "oauth_token": token_key,
        "oauth_signature": signature,
    }
    return "OAuth " + ", ".join(f'{k}="{quote(v, safe="~")}"' for k, v in params.items())


def _maas_section(document: Any) -> Mapping[str, Any] | None:
    section = document.get("datasource", {}) if isinstance(document, dict) else {}
    maas = section.get("MAAS") if isinstance(section, dict) else None
    return maas if isinstance(maas, dict) and all(maas.get(k) for k in KEYS) else None


def _credentials(ctx: Context) -> tuple[Mapping[str, Any], str] | NeedNetwork | None:
    import yaml

    url = ctx.settings.kernel.cloud_config_url
    if url:
        if ctx.offline:
            return NeedNetwork("maas: cloud-config-url= needs the network")
        reply = ctx.transport.request("GET", url, headers={})
        if reply.status != 200:
            raise FetchError(f"maas: cloud-config-url answered HTTP {reply.status}")
        try:
            found = _maas_section(yaml.safe_load(reply.body))
        except yaml.YAMLError:
            raise FetchError("maas: cloud-config-url did not answer YAML") from None
        if found:
            return found, "cloud-config-url"
    directory = ctx.settings.host_path(CLOUD_CFG_DIR)
    for path in sorted(directory.glob("*.cfg")) if directory.is_dir() else []:
        try:
            found = _maas_section(yaml.safe_load(read_platform_file(path, "maas") or b""))
        except (FetchError, yaml.YAMLError):
            continue
        if found:
            return found, f"{CLOUD_CFG_DIR}/{path.name}"
    return None


def fetch(ctx: Context) -> Result:
    found = _credentials(ctx)
    if isinstance(found, NeedNetwork):
        return found
    if found is None:
        return NoConfig(f"maas: no MAAS credentials (cloud-config-url= or {CLOUD_CFG_DIR})")
    if ctx.offline:
        return NeedNetwork("maas: the metadata service needs the network")
    creds, where = found
    base = str(creds["metadata_url"]).rstrip("/")
    if ctx.settings.metadata_url:  # the seam replaces scheme and host; the path stays MAAS's
        from urllib.parse import urlsplit, urlunsplit

        seam, parts = urlsplit(ctx.settings.metadata_url), urlsplit(base)
        base = urlunsplit((seam.scheme, seam.netloc, parts.path, parts.query, ""))

    def get(path: str) -> tuple[int, bytes]:
        auth = oauth_header(str(creds["consumer_key"]), str(creds["token_key"]),
                            str(creds["token_secret"]), str(creds.get("consumer_secret") or ""))
        reply = ctx.transport.request("GET", f"{base}/{VERSION}/{path}",
                                      headers={"Authorization": auth})
        if reply.status not in (200, 404):
            hint = " (the MAAS credentials were refused)" if reply.status == 401 else ""
            raise FetchError(f"maas: {VERSION}/{path} answered HTTP {reply.status}{hint}")
        return reply.status, reply.body

    status, user_data = get("user-data")
    extras: dict[str, bytes] = {}
    meta: dict[str, object] = {}
    for key in ("instance-id", "local-hostname"):
        code, body = get(f"meta-data/{key}")
        if code == 200:
            meta[key] = body.decode("utf-8", "replace").strip()
    code, body = get("meta-data/public-keys")
    if code == 200:
        meta["public-keys"] = [line for line in body.decode("utf-8", "replace").splitlines()
                               if line.strip()]
    if meta:
        import yaml

        extras["meta-data"] = yaml.safe_dump(meta, sort_keys=True).encode()
    code, vendor = get("meta-data/vendor-data")
    if code == 200:
        extras["vendor-data"] = vendor
    if status == 404 or not user_data.strip():
        return NoConfig(f"maas: no user data (credentials from {where})")
    origin = f"maas {VERSION}/user-data (credentials from {where})"
    return Found(decode_payload(user_data, None, origin), origin, extras)
