"""Base for the cloud metadata stand-ins: a threaded HTTP server on 127.0.0.1.

A service subclass implements ``answer(request) -> Answer``. Faults are
scripted per path and consumed before the service answers: a slow answer,
a dropped connection, a truncated body, any status. Every request is
recorded so tests can check what the client sent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # case-insensitive (http.client.HTTPMessage)
    body: bytes
    client_port: int


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    drop: bool = False  # close without answering
    truncate_at: int | None = None  # announce the full length, send this many bytes


class MetadataStandIn:
    """Subclass and implement :meth:`answer`; use as a context manager."""

    server_header = "StandIn"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(_Handler):
            service = outer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        # A short poll interval keeps shutdown (and so each test) fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MetadataStandIn:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def inject(self, path: str, *faults: Answer) -> None:
        """Serve ``faults`` (in order, once each) for ``path`` before the real answers."""
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def count(self, path: str, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests
                       if r.path == path and (method is None or r.method == method))

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def _dispatch(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            queue = self._faults.get(request.path)
            fault = queue.pop(0) if queue else None
        return fault if fault is not None else self.answer(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service: MetadataStandIn

    def log_message(self, format: str, *args: object) -> None:
        pass

    def version_string(self) -> str:
        return self.service.server_header

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body,
                          self.client_address[1])
        answer = self.service._dispatch(request)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        try:
            if answer.truncate_at is not None:
                self.wfile.write(answer.body[: answer.truncate_at])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
