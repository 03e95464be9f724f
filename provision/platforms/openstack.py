"""OpenStack: the config-2 config drive, raced against the metadata service.

Offline pass: a config drive present now answers; otherwise the network is
needed. Online pass: we keep looking for the drive (it can appear late) while
asking the metadata service, and take whichever answers first. A drive
without user_data, or a 404 from the service, means no config.
"""

from __future__ import annotations

import threading

from provision.platforms.base import Context, Found, NeedNetwork, Result
from provision.platforms.configdrive import read_labelled
from provision.platforms.detect import CONFIG_DRIVE_LABELS
from provision.platforms.http_cloud import fetch_from_entry, load_entries
from provision.platforms.payload import decode_payload
from provision.platforms.race import first_answer

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
    if ctx.offline:
        drive = _from_drive(ctx, wait=0)
        if drive is not None:
            return drive
        return NeedNetwork("openstack: no config drive; the metadata service needs the network")
    stop = threading.Event()
    try:
        answer = first_answer(
            [lambda: _from_drive(ctx, ctx.settings.fetch_timeout, stop),
             lambda: _from_service(ctx)],
            accept=lambda result: result is not None,
        )
    finally:
        stop.set()
    assert answer is not None  # the service never answers None
    return answer
