"""A tiny TFTP server (RFC 1350 read requests, blksize option) on 127.0.0.1 for tests.

Serves files from a dict; each transfer runs on its own socket (a new
transfer ID), as the RFC requires. Fault injection: ``drop_blocks`` drops the
first transmission of those DATA blocks (the server retransmits after its
timeout, as a real one does), ``ignore_options`` behaves like a plain RFC 1350
server, ``refuse_options`` answers option requests with error 8.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType


@dataclass
class TftpRequest:
    filename: str
    mode: str
    options: dict[str, str]


@dataclass
class LoopbackTFTPServer:
    files: dict[str, bytes] = field(default_factory=dict)
    drop_blocks: set[int] = field(default_factory=set)
    ignore_options: bool = False
    refuse_options: bool = False
    timeout: float = 0.2
    requests: list[TftpRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.retransmissions = 0

    def url(self, filename: str) -> str:
        return f"tftp://127.0.0.1:{self.port}/{filename}"

    def __enter__(self) -> LoopbackTFTPServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, client = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if struct.unpack("!H", packet[:2])[0] != 1:
                continue
            fields = packet[2:].split(b"\0")
            filename, mode = fields[0].decode(), fields[1].decode().lower()
            opts = {fields[i].decode().lower(): fields[i + 1].decode() for i in range(2, len(fields) - 1, 2)}
            self.requests.append(TftpRequest(filename, mode, opts))
            threading.Thread(target=self._transfer, args=(client, filename, opts), daemon=True).start()

    def _transfer(self, client: tuple[str, int], filename: str, opts: dict[str, str]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(self.timeout)
            if filename not in self.files:
                sock.sendto(struct.pack("!HH", 5, 1) + b"File not found\0", client)
                return
            data = self.files[filename]
            blksize = 512
            if opts and self.refuse_options:
                sock.sendto(struct.pack("!HH", 5, 8) + b"options refused\0", client)
                return
            if "blksize" in opts and not self.ignore_options:
                blksize = min(int(opts["blksize"]), 65464)
                if not self._send_until_acked(sock, client, struct.pack("!H", 6) + b"blksize\0%d\0" % blksize, 0):
                    return
            block = 1
            offset = 0
            while True:
                piece = data[offset:offset + blksize]
                packet = struct.pack("!HH", 3, block % 65536) + piece
                if not self._send_until_acked(sock, client, packet, block % 65536, drop=block in self.drop_blocks):
                    return
                offset += len(piece)
                block += 1
                if len(piece) < blksize:
                    return

    def _send_until_acked(
        self, sock: socket.socket, client: tuple[str, int], packet: bytes, block: int, drop: bool = False
    ) -> bool:
        for attempt in range(6):
            if not (drop and attempt == 0):
                sock.sendto(packet, client)
            if attempt:
                self.retransmissions += 1
            try:
                while True:
                    reply, _ = sock.recvfrom(2048)
                    if reply[:2] == b"\0\x04" and struct.unpack("!H", reply[2:4])[0] == block:
                        return True
            except TimeoutError:
                continue
        return False
