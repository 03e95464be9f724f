"""A reusable threaded HTTP server on 127.0.0.1 for tests: scripted routes and fault injection.

Each path gets a list of :class:`Reply` objects served in order (the last one
repeats), so "503, 503, then 200" is ``server.route("/x", Reply(503), Reply(503), Reply(body=b"ok"))``.
A reply can delay its headers or body, drop the connection without answering,
send a truncated body (``Content-Length`` larger than what is sent), answer
``Range`` requests, stream a generated body, or send a file with sendfile().
Every request is recorded (method, path with query, headers, body).

    with LoopbackHTTPServer() as server:
        server.route("/user-data", Reply(body=b"hello"))
        fetch(server.url("/user-data"))
        assert server.count("/user-data") == 1
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit


@dataclass
class Reply:
    """One scripted answer. ``body`` may be bytes, or a callable returning chunks (then give
    ``length`` for a Content-Length, else the body is sent chunked); ``file`` sends a file."""

    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0            # seconds before the status line
    body_delay: float = 0.0       # seconds between headers and body
    drop: bool = False            # close the connection without answering
    truncate_at: int | None = None  # send only this many body bytes, then close
    retry_after: str | None = None
    length: int | None = None     # Content-Length for a generated body
    file: str | None = None       # path of a file to send (sendfile)
    ranges: bool = False          # honour "Range: bytes=N-" (206), advertise Accept-Ranges
    etag: str | None = None
    check: Callable[[dict[str, str]], int | None] | None = None  # headers -> status override
    trickle: float = 0.0          # seconds between single body bytes (a slow-loris server)
    header_trickle: float = 0.0   # seconds between single bytes of the status line and headers


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0


class LoopbackHTTPServer:
    """A threaded HTTP/1.1 server bound to 127.0.0.1 on a free port. Unknown paths answer 404.

    ``tls=(certfile, keyfile)`` serves HTTPS instead; ``host`` is another
    loopback address (127.0.0.2) for a second origin.
    """

    def __init__(self, tls: tuple[str, str] | None = None, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._served: dict[str, int] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(_Handler):
            server_state = outer

        self.host = host
        self._httpd = _QuietServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    # -- lifecycle
    def start(self) -> LoopbackHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackHTTPServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- scripting
    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, *replies: Reply) -> None:
        """Serve ``replies`` in order for ``path`` (matched with its query first, then without)."""
        with self._lock:
            self._routes[path] = list(replies) or [Reply()]
            self._served[path] = 0

    def count(self, path: str) -> int:
        """Requests received for ``path`` (query ignored unless given)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path or r.path.split("?")[0] == path)

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path or r.path.split("?")[0] == path]

    def _next_reply(self, path: str) -> Reply | None:
        with self._lock:
            key = path if path in self._routes else urlsplit(path).path
            replies = self._routes.get(key)
            if replies is None:
                return None
            index = min(self._served[key], len(replies) - 1)
            self._served[key] += 1
            return replies[index]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that reset idle keep-alive connections (or drop mid-body on purpose) are normal here.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | ssl.SSLError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: LoopbackHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        self.server_state._record(Request(self.command, self.path, headers, body, self.client_address[1]))
        reply = self.server_state._next_reply(self.path)
        if reply is None:
            self._send_simple(404, b"not found\n")
            return
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status = reply.check(headers) if reply.check else None
        if status is not None:
            self._send_simple(status, b"")
            return
        self._send_reply(reply, headers)

    def _send_simple(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_reply(self, reply: Reply, request_headers: dict[str, str]) -> None:
        if reply.header_trickle:
            self._send_trickled_headers(reply)
            return
        total = _reply_length(reply)
        start = _range_start(reply, request_headers, total)
        status = 206 if start is not None else reply.status
        self.send_response(status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.retry_after is not None:
            self.send_header("Retry-After", reply.retry_after)
        if reply.etag:
            self.send_header("ETag", reply.etag)
        if reply.ranges:
            self.send_header("Accept-Ranges", "bytes")
        offset = start or 0
        if start is not None and total is not None:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        if total is not None:
            self.send_header("Content-Length", str(total - offset))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.body_delay:
            time.sleep(reply.body_delay)
        budget = None if reply.truncate_at is None else reply.truncate_at
        try:
            self._write_body(reply, offset, total is None, budget)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if reply.truncate_at is not None:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_trickled_headers(self, reply: Reply) -> None:
        """Status line and headers a byte at a time, then the body at once."""
        body = b"".join(_chunks(reply))
        head = f"HTTP/1.1 {reply.status} OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        self.close_connection = True
        try:
            for byte in head:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(reply.header_trickle)
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _write_body(self, reply: Reply, offset: int, chunked: bool, budget: int | None) -> None:
        if reply.file is not None:
            count = os.path.getsize(reply.file) - offset
            if budget is not None:
                count = min(count, budget)
            self.wfile.flush()
            with open(reply.file, "rb") as f:
                sent = 0
                while sent < count:
                    n = os.sendfile(self.connection.fileno(), f.fileno(), offset + sent, count - sent)
                    if n == 0:
                        break
                    sent += n
            return
        for chunk in _skip(_chunks(reply), offset):
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if reply.trickle:
                for byte in chunk:
                    self.wfile.write(b"%x\r\n%c\r\n" % (1, byte) if chunked else bytes([byte]))
                    self.wfile.flush()
                    time.sleep(reply.trickle)
            elif chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            if budget == 0:
                return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _chunks(reply: Reply) -> Iterable[bytes]:
    if callable(reply.body):
        return reply.body()
    return [reply.body] if reply.body else []


def _skip(chunks: Iterable[bytes], offset: int) -> Iterable[bytes]:
    for chunk in chunks:
        if offset >= len(chunk):
            offset -= len(chunk)
            continue
        yield chunk[offset:]
        offset = 0


def _reply_length(reply: Reply) -> int | None:
    if reply.file is not None:
        return os.path.getsize(reply.file)
    if callable(reply.body):
        return reply.length
    return len(reply.body)


def _range_start(reply: Reply, headers: dict[str, str], total: int | None) -> int | None:
    spec = headers.get("Range", "")
    if not reply.ranges or total is None or not spec.startswith("bytes=") or not spec.endswith("-"):
        return None
    if_range = headers.get("If-Range")
    if if_range is not None and if_range != reply.etag:
        return None
    try:
        start = int(spec[len("bytes="):-1])
    except ValueError:
        return None
    return start if 0 <= start < total else None


def generated_body(size: int, block: int = 1 << 20, seed: int = 7) -> Callable[[], Iterable[bytes]]:
    """A deterministic, incompressible-looking body of ``size`` bytes produced on the fly."""
    import hashlib

    base = b"".join(hashlib.sha512(b"%d:%d" % (seed, i)).digest() for i in range(block // 64 + 1))[:block]

    def chunks() -> Iterable[bytes]:
        remaining, counter = size, 0
        while remaining > 0:
            # Vary each block cheaply so the stream is not one block repeated.
            piece = counter.to_bytes(8, "big") + base[8:]
            piece = piece[:remaining]
            remaining -= len(piece)
            counter += 1
            yield piece

    return chunks
