"""Apple Virtualization framework (``applehv``): the config over HTTP on vsock, as Ignition.

The host (vfkit, podman machine) serves the config over HTTP on vsock port
1024 of the host (CID 2); we ``GET /`` with ``Accept: application/json``.
The vsock module is loaded when ``/sys/devices/virtual/misc/vsock`` is
missing. 200 with a body is the config; 204, 404 or an empty body means none.

Test seam: ``--metadata-url`` (``PROVISION_METADATA_URL``) sends the same
request over TCP to that address instead; vsock itself is not reachable in
the test container.
"""

from __future__ import annotations

import http.client
import socket

from provision.errors import CommandError, FetchError, ProvisionError
from provision.platforms.base import Context, Found, NeedNetwork, NoConfig, Result
from provision.platforms.payload import decode_payload
from provision.run import run

HOST_CID = 2
PORT = 1024
VSOCK_SYSFS = "/sys/devices/virtual/misc/vsock"
MAX_BYTES = 16 << 20


class _VsockConnection(http.client.HTTPConnection):
    def __init__(self, timeout: float | None) -> None:
        super().__init__("d", timeout=timeout)  # the host name is not used over vsock

    def connect(self) -> None:
        family = getattr(socket, "AF_VSOCK", None)
        if family is None:
            raise FetchError("applehv: this Python has no AF_VSOCK support")
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect((HOST_CID, PORT))


def _over_vsock(ctx: Context) -> tuple[int, bytes]:
    if not ctx.settings.host_path(VSOCK_SYSFS).exists():
        try:
            run("modprobe", ["vsock"], timeout=60)
        except (CommandError, ProvisionError) as exc:
            raise FetchError(f"applehv: cannot load the vsock module: {exc}") from None
    connection = _VsockConnection(ctx.settings.fetch_timeout)
    try:
        connection.request("GET", "/", headers={"Accept": "application/json",
                                                "User-Agent": ctx.settings.user_agent})
        response = connection.getresponse()
        return response.status, response.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FetchError(f"applehv: vsock {HOST_CID}:{PORT}: {exc.strerror or exc}") from None
    finally:
        connection.close()


def fetch(ctx: Context) -> Result:
    if ctx.settings.metadata_url:
        if ctx.offline:
            return NeedNetwork("applehv: the test seam's TCP address needs the network")
        reply = ctx.transport.request("GET", ctx.settings.metadata_url.rstrip("/") + "/",
                                      headers={"Accept": "application/json"})
        status, body = reply.status, reply.body
    else:
        status, body = _over_vsock(ctx)  # vsock needs no network: the offline pass answers
    if status in (204, 404) or (status == 200 and not body.strip()):
        return NoConfig(f"applehv: the host has no config (HTTP {status})")
    if status != 200:
        raise FetchError(f"applehv: the host answered HTTP {status}")
    if len(body) > MAX_BYTES:
        raise FetchError(f"applehv: the config is larger than {MAX_BYTES} bytes")
    origin = f"applehv vsock {HOST_CID}:{PORT}"
    return Found(decode_payload(body, None, origin), origin)
