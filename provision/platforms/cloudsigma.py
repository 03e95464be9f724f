"""CloudSigma: the server context over the serial port ``/dev/ttyS1`` (cloud-init's cepko).

We write ``<\\n\\n>`` (the request for the whole context) and read one line of
JSON (end marker ``\\x04`` stripped). ``meta.cloudinit-user-data`` is the
config, base64-decoded when ``meta.base64_fields`` lists it;
``vendor_data.cloudinit`` is kept as vendor-data and the whole context as
``server-context.json``. The port is local: the offline pass answers.
"""

from __future__ import annotations

import json

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.payload import decode_payload
from provision.platforms.serial import SerialPort

PORT = "/dev/ttyS1"
REQUEST = b"<\n\n>"
READ_TIMEOUT = 60.0


def fetch(ctx: Context) -> Result:
    path = str(ctx.settings.host_path(PORT))
    with SerialPort(path, "cloudsigma") as port:
        port.write(REQUEST)
        line = port.readline(READ_TIMEOUT)
    if line is None:
        raise FetchError(f"cloudsigma: no answer on {PORT} within {READ_TIMEOUT:g} s")
    raw = line.strip(b"\x04\n")
    try:
        context = json.loads(raw)
    except ValueError:
        raise FetchError(f"cloudsigma: the server context on {PORT} is not JSON") from None
    meta = context.get("meta") if isinstance(context, dict) else None
    if not isinstance(meta, dict):
        raise FetchError(f"cloudsigma: the server context on {PORT} has no meta object")
    extras = {"server-context.json": raw}
    vendor = context.get("vendor_data")
    if isinstance(vendor, dict) and isinstance(vendor.get("cloudinit"), str):
        extras["vendor-data"] = vendor["cloudinit"].encode()
    user_data = meta.get("cloudinit-user-data")
    if not isinstance(user_data, str) or not user_data.strip():
        return NoConfig("cloudsigma: no meta.cloudinit-user-data in the server context")
    encoded = "cloudinit-user-data" in str(meta.get("base64_fields", "")).split(",")
    origin = f"cloudsigma {PORT} meta.cloudinit-user-data"
    return Found(decode_payload(user_data.encode(), "base64" if encoded else None, origin),
                 origin, extras)
