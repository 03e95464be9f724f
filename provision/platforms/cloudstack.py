"""CloudStack (Ignition's ``cloudstack`` and cloud-init's CloudStack datasource).

The config comes from a ``config-2``/``CONFIG-2`` config drive
(``cloudstack/userdata/user_data.txt``) or from the metadata service on the
virtual router, ``http://<router>/latest/user-data``, whichever answers
first (404 from the router: no user data); the router's
``/latest/meta-data/`` keys are kept as YAML meta-data. The router is the DHCP server
that gave this machine its lease, read from the lease files of
systemd-networkd (``/run/systemd/netif/leases/*``: ``SERVER_ADDRESS=``) or
dhclient (``/var/lib/dhclient``, ``/var/lib/dhcp``:
``option dhcp-server-identifier``); ``--metadata-url`` replaces it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from provision.errors import FetchError
from provision.platforms.base import Context, Found, Result
from provision.platforms.configdrive import read_labelled
from provision.platforms.detect import CONFIG_DRIVE_LABELS
from provision.platforms.http_cloud import CloudEntry, fetch_from_entry
from provision.platforms.payload import decode_payload
from provision.platforms.race import drive_or_service
from provision.platforms.settings import Settings

DRIVE_USER_DATA = "cloudstack/userdata/user_data.txt"
MAX_META_KEYS = 64
NETWORKD_LEASES = "/run/systemd/netif/leases"
DHCLIENT_LEASE_DIRS = ("/var/lib/dhclient", "/var/lib/dhcp")
_SERVER_ID = re.compile(r"option\s+dhcp-server-identifier\s+([0-9.]+)\s*;")


def dhcp_server(settings: Settings) -> str | None:
    """The address of the DHCP server of the newest lease found, or None."""
    candidates: list[tuple[float, str]] = []
    leases = settings.host_path(NETWORKD_LEASES)
    for lease in sorted(leases.glob("*")) if leases.is_dir() else []:
        for line in _text(lease).splitlines():
            if line.startswith("SERVER_ADDRESS="):
                candidates.append((lease.stat().st_mtime, line.split("=", 1)[1].strip()))
    for directory in DHCLIENT_LEASE_DIRS:
        folder = settings.host_path(directory)
        for lease in sorted(folder.glob("*.lease*")) if folder.is_dir() else []:
            found = _SERVER_ID.findall(_text(lease))
            if found:  # the last lease block in a file is the newest
                candidates.append((lease.stat().st_mtime, found[-1]))
    return max(candidates)[1] if candidates else None


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _from_drive(ctx: Context, wait: float | None, stop: threading.Event | None = None
                ) -> Result | None:
    result = read_labelled(ctx.settings, CONFIG_DRIVE_LABELS, DRIVE_USER_DATA,
                           "cloudstack config drive", wait, stop)
    if isinstance(result, Found):
        return Found(decode_payload(result.data, None, result.source), result.source)
    return result


def _from_router(ctx: Context) -> Result:
    base = ctx.settings.metadata_url
    if base is None:
        router = dhcp_server(ctx.settings)
        if router is None:
            raise FetchError("cloudstack: no DHCP lease names the virtual router "
                             f"(looked in {NETWORKD_LEASES} and {', '.join(DHCLIENT_LEASE_DIRS)})")
        base = f"http://{router}"
    entry = CloudEntry(name="cloudstack", title="CloudStack virtual router",
                       base_urls=(base,), user_data="/latest/user-data",
                       no_data_statuses=frozenset({404}))
    result = fetch_from_entry(entry, ctx)
    if isinstance(result, Found):
        meta = _meta_data(ctx, base)
        if meta:
            result = Found(result.data, result.source, {"meta-data": meta})
    return result


def _meta_data(ctx: Context, base: str) -> bytes | None:
    """The router's meta-data keys (instance-id, local-hostname, public-keys, ...) as YAML,
    read as cloud-init reads them: the listing, then each key."""
    import yaml

    listing = ctx.transport.request("GET", f"{base}/latest/meta-data/", headers={})
    if listing.status != 200:
        return None
    meta: dict[str, str] = {}
    names = listing.body.decode("utf-8", "replace").split()
    for name in names[:MAX_META_KEYS]:
        if "/" in name.rstrip("/") or name.endswith("/"):
            continue  # cloud-init's CloudStack keys are flat
        reply = ctx.transport.request("GET", f"{base}/latest/meta-data/{name}", headers={})
        if reply.status == 200:
            meta[name] = reply.body.decode("utf-8", "replace").strip()
    return yaml.safe_dump(meta, sort_keys=True).encode() if meta else None


def fetch(ctx: Context) -> Result:
    return drive_or_service(ctx, "cloudstack", "virtual router", _from_drive, _from_router)
