"""SmartOS / Triton: the Joyent metadata protocol, version 2.

KVM guests talk to the host on the serial port ``/dev/ttyS1``; LX-brand zones
on the socket ``/native/.zonecontrol/metadata.sock``. As cloud-init does:
drain stale input, send newlines until the host answers ``invalid command``,
``NEGOTIATE V2`` (answer ``V2_OK``), then one framed request per key:
``V2 <length> <crc32 of body> <body>`` with body ``<request id> GET
<base64 key>``; the answer ``V2 <length> <crc32> <id> SUCCESS <base64
value>`` (or ``NOTFOUND``) is checked for length, checksum and request id.

``cloud-init:user-data`` (or the older ``user-data``) is the config;
``sdc:vendor-data`` is kept as vendor-data, ``sdc:uuid`` / ``sdc:hostname``
as YAML meta-data and ``sdc:nics`` raw as ``sdc-nics.json``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import socket

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.payload import decode_payload
from provision.platforms.serial import SerialPort

SERIAL = "/dev/ttyS1"
ZONE_SOCKET = "/native/.zonecontrol/metadata.sock"
TIMEOUT = 10.0
HANDSHAKE_ATTEMPTS = 12
_FRAME = re.compile(r"V2 (\d+) ([0-9a-f]{8}) (([0-9a-f]+) (SUCCESS|NOTFOUND)(?: (\S+))?)$")


def checksum(body: str) -> str:
    return f"{binascii.crc32(body.encode()) & 0xFFFFFFFF:08x}"


def frame(request_id: str, kind: str, key: str | None = None) -> bytes:
    body = f"{request_id} {kind}" + (f" {base64.b64encode(key.encode()).decode()}" if key else "")
    return f"V2 {len(body)} {checksum(body)} {body}\n".encode()


class _SocketLines:
    """The zone socket with the same write/readline/drain interface as a serial port."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as exc:
            raise FetchError(f"smartos: cannot connect to {ZONE_SOCKET}: {exc.strerror}") from None
        self._buffer = b""

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def drain(self, quiet: float = 0.1) -> None:
        self._buffer = b""

    def readline(self, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def close(self) -> None:
        self.sock.close()


class MetadataClient:
    def __init__(self, port: SerialPort | _SocketLines, serial: bool) -> None:
        self.port = port
        if serial:
            self._handshake()
        self._negotiate()

    def _handshake(self) -> None:
        self.port.drain()
        for _ in range(HANDSHAKE_ATTEMPTS):
            self.port.write(b"\n")
            # Stale lines from an earlier client may still arrive: skip them
            # until this newline's answer, rather than sending another newline.
            answer = self.port.readline(5.0)
            while answer is not None and answer != b"invalid command":
                answer = self.port.readline(5.0)
            if answer == b"invalid command":
                return
        raise FetchError(f"smartos: the host metadata service does not answer on {SERIAL}")

    def _negotiate(self) -> None:
        self.port.write(b"NEGOTIATE V2\n")
        answer = self.port.readline(TIMEOUT)
        while answer == b"invalid command":  # a late answer to an earlier handshake newline
            answer = self.port.readline(TIMEOUT)
        if answer != b"V2_OK":
            raise FetchError(f"smartos: NEGOTIATE V2 answered {answer!r}")

    def get(self, key: str) -> bytes | None:
        request_id = secrets.token_hex(4)
        self.port.write(frame(request_id, "GET", key))
        line = self.port.readline(TIMEOUT)
        if line is None:
            raise FetchError(f"smartos: no answer for {key} within {TIMEOUT:g} s")
        match = _FRAME.match(line.decode("ascii", "replace"))
        if not match:
            raise FetchError(f"smartos: malformed answer for {key}")
        length, crc, body, answer_id, status, payload = match.groups()
        if int(length) != len(body) or crc != checksum(body):
            raise FetchError(f"smartos: corrupt answer for {key} (length or checksum)")
        if answer_id != request_id:
            raise FetchError(f"smartos: answer for another request while asking {key}")
        if status == "NOTFOUND" or not payload:
            return None
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise FetchError(f"smartos: the value of {key} is not base64") from None


def _values(client: MetadataClient) -> tuple[bytes | None, dict[str, bytes]]:
    user_data = client.get("cloud-init:user-data") or client.get("user-data")
    extras: dict[str, bytes] = {}
    vendor = client.get("sdc:vendor-data")
    if vendor:
        extras["vendor-data"] = vendor
    meta = {name: value.decode("utf-8", "replace").strip()
            for name, key in (("instance-id", "sdc:uuid"), ("local-hostname", "sdc:hostname"))
            if (value := client.get(key))}
    if meta:
        import yaml

        extras["meta-data"] = yaml.safe_dump(meta, sort_keys=True).encode()
    nics = client.get("sdc:nics")
    if nics:
        extras["sdc-nics.json"] = nics
    return user_data, extras


def fetch(ctx: Context) -> Result:
    zone = ctx.settings.host_path(ZONE_SOCKET)
    if zone.is_socket():
        lines = _SocketLines(str(zone))
        try:
            user_data, extras = _values(MetadataClient(lines, serial=False))
        finally:
            lines.close()
        where = ZONE_SOCKET
    else:
        with SerialPort(str(ctx.settings.host_path(SERIAL)), "smartos") as port:
            user_data, extras = _values(MetadataClient(port, serial=True))
        where = SERIAL
    if not user_data or not user_data.strip():
        return NoConfig(f"smartos: no cloud-init:user-data or user-data on {where}")
    origin = f"smartos metadata {where} user-data"
    return Found(decode_payload(user_data, None, origin), origin, extras)
