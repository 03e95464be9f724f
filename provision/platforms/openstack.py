"""OpenStack: the config-2 config drive, raced against the metadata service.

Offline pass: a config drive present now answers; otherwise the network is
needed. Online pass: we keep looking for the drive (it can appear late) while
asking the metadata service, and take whichever answers first. A drive
without user_data, or a 404 from the service, means no config.
"""

from __future__ import annotations

import threading

from provision.platforms.base import Context, Found, Result
from provision.platforms.configdrive import read_labelled
from provision.platforms.detect import CONFIG_DRIVE_LABELS
from provision.platforms.http_cloud import fetch_from_entry, load_entries
from provision.platforms.payload import decode_payload
from provision.platforms.race import drive_or_service

USER_DATA = "openstack/latest/user_data"
NETWORK_DATA = "openstack/latest/network_data.json"


def _from_drive(
    ctx: Context, wait: float | None, stop: threading.Event | None = None
) -> Result | None:
    result = read_labelled(ctx.settings, CONFIG_DRIVE_LABELS, USER_DATA, "config drive",
                           wait, stop)
    if isinstance(result, Found):
        # The drive that answered is there now: its network_data.json needs no wait.
        network = read_labelled(ctx.settings, CONFIG_DRIVE_LABELS, NETWORK_DATA, "config drive", 0.0)
        extras = {"network_data.json": network.data} if isinstance(network, Found) else {}
        return Found(decode_payload(result.data, None, result.source), result.source, extras)
    return result


def _from_service(ctx: Context) -> Result | None:
    return fetch_from_entry(load_entries()["openstack"], ctx)


def fetch(ctx: Context) -> Result:
    return drive_or_service(ctx, "openstack", "metadata service", _from_drive, _from_service)
