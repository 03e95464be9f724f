"""Bare metal: the kernel command line says where the config is.

``provision.config.url=URL`` (data, http, https, tftp, s3, gs), or
``provision.config.device=LABEL`` with ``provision.config.path=PATH``
(default /provision/config); LABEL may also be a /dev path. Both were asked
for explicitly, so a 404, a missing device (after waiting up to the fetch
deadline for it to appear) or a missing file is an error, not "no config";
an empty one is no config, as in Ignition (see acquire.py).
With neither set, bare metal has no config.
"""

from __future__ import annotations

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.configdrive import wait_for_label
from provision.platforms.media import read_from_filesystem
from provision.platforms.payload import decode_payload
from provision.platforms.urls import fetch_config_url


def _from_device(ctx: Context, device: str, path: str) -> Result:
    if device.startswith("/dev/"):
        data = read_from_filesystem(device, path)
        origin = f"{device} {path}"
    else:
        hit = wait_for_label(ctx.settings, [device], ctx.settings.fetch_timeout)
        if hit is None:
            raise FetchError(f"metal: no filesystem labelled {device!r} appeared within "
                             f"{ctx.settings.fetch_wait_text} (provision.fetch.wait=)")
        label, node = hit
        # An empty file is handed on: the caller treats empty user data as no config.
        data, origin = read_from_filesystem(node, path), f"device {node} (label {label}) {path}"
    if data is None:
        raise FetchError(f"metal: {device} has no {path}")
    return Found(decode_payload(data, None, origin), origin)


def fetch(ctx: Context) -> Result:
    kernel = ctx.settings.kernel
    if kernel.config_url:
        return fetch_config_url(ctx, kernel.config_url, "provision.config.url")
    if kernel.config_device:
        return _from_device(ctx, kernel.config_device, kernel.config_path)
    return NoConfig("metal: no provision.config.url= or provision.config.device= "
                    "on the kernel command line")
