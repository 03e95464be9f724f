"""Time limits that hold for a whole HTTP transfer, whatever the server does.

Socket timeouts bound each *wait* for data, not a transfer: a server that
sends one byte a second (headers or body) never trips them, and a read of a
large chunk waits for all of it. A :class:`Watchdog` watches the sockets one
request uses and, when its limit passes, shuts them down: any read blocked on
them returns at once, and the client reports the limit (``expired``).

The sockets are registered by the connection classes of the adapter made by
:func:`watched_adapter_class`, for whichever watchdog the calling thread has
made current (:meth:`Watchdog.current`). Each registration holds a duplicate
of the socket's file descriptor, so shutting it down can never hit an
unrelated socket that reused a closed descriptor number.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from requests.adapters import HTTPAdapter

_local = threading.local()


class Watchdog:
    """Shuts down a request's sockets when its current limit passes; see the module doc."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._generation = 0  # a timer from an earlier arm() that fires late is ignored
        self._due: str | None = None  # the limit passed (sockets opened since are shut at once)
        # Why sockets were shut down, once they were: a failure with no socket
        # to shut (connection refused) was not the watchdog's doing.
        self.expired: str | None = None
        self.final = True  # whether the limit that expired ends the request (else: retry)

    def arm(self, seconds: float | None, reason: str, *, final: bool = True) -> None:
        """From now on the limit is ``seconds`` from now (None: no limit); ``reason`` names it."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._generation += 1
            self.expired = self._due = None
            self.final = final
            if seconds is None:
                return
            timer = threading.Timer(max(seconds, 0.0), self._expire, args=(reason, self._generation))
            timer.daemon = True
            self._timer = timer
        timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down too when the limit passes (at once if it already has)."""
        try:
            watched = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return  # already closed: nothing left to wake
        with self._lock:
            self._sockets.append(watched)
            if self._due is not None:
                self.expired = self._due
                _shut(watched)

    def release(self) -> None:
        """No limit any more; forget (and close the duplicates of) every socket."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._generation += 1
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    @contextlib.contextmanager
    def current(self) -> Iterator[Watchdog]:
        """Connections opened or reused by this thread meanwhile register with this watchdog."""
        previous = getattr(_local, "watchdog", None)
        _local.watchdog = self
        try:
            yield self
        finally:
            _local.watchdog = previous

    def _expire(self, reason: str, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._due = reason
            if self._sockets:
                self.expired = reason
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _register(sock: Any) -> None:
    watchdog: Watchdog | None = getattr(_local, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.watch(sock)


def watched_adapter_class() -> type[HTTPAdapter]:
    """A requests adapter whose connections register their sockets with the current watchdog."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class WatchedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _register(sock)  # before a TLS handshake or the request: both can stall
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            _register(self.sock)  # a kept-alive connection serving a new request
            super().request(*args, **kwargs)

    class WatchedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _register(sock)
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            _register(self.sock)
            super().request(*args, **kwargs)

    class WatchedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    pools = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(*args, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return WatchedAdapter
