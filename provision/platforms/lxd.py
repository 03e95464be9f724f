"""LXD: the instance's data from the devlxd API on the socket ``/dev/lxd/sock``.

As cloud-init reads it: ``GET /1.0/meta-data`` (text), ``GET /1.0/config``
(a JSON list of routes), then each ``cloud-init.*`` and ``user.*`` route.
``cloud-init.user-data`` (or the older ``user.user-data``) is the config;
``cloud-init.vendor-data`` and ``cloud-init.network-config`` (or their
``user.*`` forms) and the meta-data are kept raw. ``cloud-init.*`` keys win
over ``user.*`` keys. A 500 is retried every 0.1 s for 3 s, as cloud-init
does; the socket is local, so the offline pass answers.
"""

from __future__ import annotations

import http.client
import json
import socket
import time

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.payload import decode_payload

SOCKET = "/dev/lxd/sock"
API = "/1.0"
ALIASES = {  # LXD config key -> cloud-init's name; cloud-init.* listed first: they win
    "cloud-init.user-data": "user-data",
    "cloud-init.vendor-data": "vendor-data",
    "cloud-init.network-config": "network-config",
    "user.user-data": "user-data",
    "user.vendor-data": "vendor-data",
    "user.network-config": "network-config",
}
MAX_BYTES = 16 << 20


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("lxd", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class DevLxd:
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def get(self, route: str) -> tuple[int, bytes]:
        for _ in range(30):
            connection = _UnixConnection(self.path, self.timeout)
            try:
                connection.request("GET", route)
                response = connection.getresponse()
                status, body = response.status, response.read(MAX_BYTES + 1)
            except OSError as exc:
                raise FetchError(f"lxd: {self.path}: {exc.strerror or exc}") from None
            finally:
                connection.close()
            if len(body) > MAX_BYTES:
                raise FetchError(f"lxd: {route} is larger than {MAX_BYTES} bytes")
            if status != 500:
                return status, body
            time.sleep(0.1)
        return status, body


def fetch(ctx: Context) -> Result:
    path = ctx.settings.host_path(SOCKET)
    if not path.is_socket():
        raise FetchError(f"lxd: {SOCKET} is not a socket (devlxd disabled for this instance?)")
    lxd = DevLxd(str(path))
    extras: dict[str, bytes] = {}
    status, meta = lxd.get(f"{API}/meta-data")
    if status != 200:
        raise FetchError(f"lxd: {API}/meta-data answered HTTP {status}")
    extras["meta-data"] = meta
    status, listing = lxd.get(f"{API}/config")
    routes: list[str] = []
    if status == 200:
        try:
            routes = [r for r in json.loads(listing) if isinstance(r, str)]
        except (ValueError, TypeError):
            raise FetchError(f"lxd: {API}/config is not a JSON list") from None
    keys = {route.rpartition("/")[2]: route for route in routes}
    found: dict[str, tuple[str, bytes]] = {}
    for key, name in ALIASES.items():
        if key in keys and name not in found:
            status, body = lxd.get(keys[key])
            if status == 200:
                found[name] = (key, body)
    for name in ("vendor-data", "network-config"):
        if name in found:
            extras[name] = found[name][1]
    if "user-data" not in found or not found["user-data"][1].strip():
        return NoConfig("lxd: no cloud-init.user-data or user.user-data in the instance config")
    key, data = found["user-data"]
    origin = f"lxd {key}"
    return Found(decode_payload(data, None, origin), origin, extras)
