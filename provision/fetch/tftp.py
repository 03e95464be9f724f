"""A small TFTP client (RFC 1350, octet mode) with the blksize option (RFC 2347/2348).

Used for ``tftp://host[:port]/file`` resources on bare metal. The transfer is
a generator of data blocks, so memory stays at one block whatever the size.
Lost packets are retransmitted after ``timeout`` seconds, ``retries`` times;
the first request is repeated until ``deadline`` passes (the server or the
network may not be up yet).
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from urllib.parse import unquote, urlsplit

from provision.errors import FetchError

log = logging.getLogger(__name__)

_RRQ, _DATA, _ACK, _ERROR, _OACK = 1, 3, 4, 5, 6
DEFAULT_PORT = 69
# 1468 = a 1500-byte Ethernet MTU minus IP, UDP and TFTP headers: no fragmentation.
DEFAULT_BLKSIZE = 1468
_ERROR_NAMES = {
    0: "error", 1: "file not found", 2: "access violation", 3: "disk full",
    4: "illegal operation", 5: "unknown transfer ID", 6: "file exists", 7: "no such user",
    8: "option negotiation refused",
}


class TftpNotFound(FetchError):
    """The server answered "file not found"."""


def parse_tftp_url(url: str) -> tuple[str, int, str]:
    """``tftp://host[:port]/file[;mode=octet]`` -> (host, port, file) per RFC 3617."""
    parts = urlsplit(url)
    if parts.scheme != "tftp" or not parts.hostname:
        raise FetchError(f"invalid TFTP URL {url!r}")
    path = parts.path
    if ";" in path:
        path, _, mode = path.partition(";")
        if mode.lower() not in ("mode=octet", "mode=binary"):
            raise FetchError(f"tftp://{parts.hostname}{path}: only octet mode is supported")
    filename = unquote(path[1:] if path.startswith("/") else path)
    if not filename:
        raise FetchError(f"TFTP URL tftp://{parts.hostname}/ names no file")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise FetchError(f"TFTP URL for {parts.hostname} has an invalid port") from None
    return parts.hostname, port, filename


def tftp_chunks(
    url: str, *, blksize: int = DEFAULT_BLKSIZE, timeout: float = 1.0, retries: int = 5,
    deadline: float | None = 120.0, clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The file's contents, block by block. Raises FetchError (TftpNotFound for a missing file)."""
    host, port, filename = parse_tftp_url(url)
    where = f"tftp://{host}:{port}/{filename}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror:
        raise FetchError(f"{where}: host name could not be resolved") from None
    family, _type, _proto, _canon, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        yield from _transfer(sock, address, filename, where, blksize, timeout, retries, deadline, clock)


def _request(filename: str, blksize: int | None) -> bytes:
    packet = struct.pack("!H", _RRQ) + filename.encode() + b"\0octet\0"
    if blksize is not None and blksize != 512:
        packet += b"blksize\0%d\0" % blksize
    return packet


def _transfer(
    sock: socket.socket, address: tuple[object, ...], filename: str, where: str, blksize: int,
    timeout: float, retries: int, deadline: float | None, clock: Callable[[], float],
) -> Iterator[bytes]:
    start = clock()
    option: int | None = blksize
    request = _request(filename, option)
    sock.sendto(request, address)
    server: tuple[object, ...] | None = None
    expected = 1
    size = 512
    last_sent = request
    misses = 0
    while True:
        try:
            packet, sender = sock.recvfrom(65536 + 4)
        except TimeoutError:
            misses += 1
            waiting_first = server is None
            out_of_time = deadline is not None and clock() - start >= deadline
            if (waiting_first and out_of_time) or (not waiting_first and misses > retries):
                got = "no answer" if waiting_first else f"no block {expected} after {retries} retransmissions"
                raise FetchError(f"{where}: timed out ({got})") from None
            (sock.sendto(last_sent, server) if server else sock.sendto(last_sent, address))
            continue
        if server is None:
            if sender[0] != address[0]:
                continue
            server = sender
        elif sender != server:
            sock.sendto(struct.pack("!HH", _ERROR, 5) + b"unknown transfer ID\0", sender)
            continue
        if len(packet) < 4:
            continue
        opcode = struct.unpack("!H", packet[:2])[0]
        if opcode == _ERROR:
            code = struct.unpack("!H", packet[2:4])[0]
            text = packet[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
            if code == 8 and option is not None and expected == 1:
                # The server refused our options: ask again plainly (512-byte blocks).
                option, server, last_sent = None, None, _request(filename, None)
                sock.sendto(last_sent, address)
                continue
            name = _ERROR_NAMES.get(code, f"error {code}")
            message = f"{where}: server error: {name}" + (f" ({text})" if text and text != name else "")
            raise (TftpNotFound if code == 1 else FetchError)(message)
        if opcode == _OACK and expected == 1:
            size = _accepted_blksize(packet[2:], option, where)
            last_sent = struct.pack("!HH", _ACK, 0)
            sock.sendto(last_sent, server)
            misses = 0
            continue
        if opcode != _DATA:
            continue
        block = struct.unpack("!H", packet[2:4])[0]
        if block == (expected - 1) % 65536 and expected > 1:
            sock.sendto(last_sent, server)  # our ACK was lost: repeat it
            continue
        if block != expected % 65536:
            continue
        data = packet[4:]
        last_sent = struct.pack("!HH", _ACK, block)
        sock.sendto(last_sent, server)
        misses = 0
        expected += 1
        if data:
            yield data
        if len(data) < size:
            return


def _accepted_blksize(payload: bytes, asked: int | None, where: str) -> int:
    fields = payload.split(b"\0")
    options = {fields[i].decode().lower(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2)}
    if "blksize" not in options:
        return 512
    value = int(options["blksize"])
    if asked is None or not 8 <= value <= asked:
        raise FetchError(f"{where}: server chose an invalid block size {value}")
    return value
