"""Azure: custom data from the provisioning media, else IMDS userData.

The provisioning media (a UDF or iso9660 CD, /dev/sr0 or /dev/sr1) carries
``ovf-env.xml`` with base64 ``CustomData``; that needs no network, so the
offline pass takes it. Without it, the online pass reads IMDS ``userData``
through the declarative datasources/azure.json entry.
"""

from __future__ import annotations

from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.http_cloud import fetch_from_entry, load_entries
from provision.platforms.media import read_from_filesystem
from provision.platforms.ovf import element_text
from provision.platforms.payload import decode_payload

MEDIA_DEVICES = ("/dev/sr0", "/dev/sr1")
OVF_ENV = "ovf-env.xml"


def _media_device(ctx: Context) -> str | None:
    for name in MEDIA_DEVICES:
        path = ctx.settings.host_path(name)
        if path.exists():
            return str(path.resolve())
    return None


def custom_data(ctx: Context) -> Result | None:
    """CustomData from the provisioning media; None when there is no media or no ovf-env.xml."""
    device = _media_device(ctx)
    if device is None:
        return None
    text = read_from_filesystem(device, OVF_ENV)
    if text is None:
        return None
    origin = f"azure provisioning media {device} {OVF_ENV}"
    value = element_text(text.decode("utf-8", errors="replace"), "CustomData", origin)
    if not value:
        return NoConfig(f"{origin}: no CustomData")
    return Found(decode_payload(value.encode(), "base64", origin), f"{origin} CustomData")


def fetch(ctx: Context) -> Result:
    media = custom_data(ctx)
    if isinstance(media, Found):
        return media
    return fetch_from_entry(load_entries()["azure"], ctx)
