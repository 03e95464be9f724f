"""The one HTTP client: retries with backoff, deadlines, Retry-After, proxies, extra CAs.

Every HTTP request provision makes goes through :class:`HttpClient`, so
behaviour on a flaky first-boot network is the same everywhere:

- connection errors, timeouts, every 5xx and the caller's extra statuses
  (e.g. 410/429 for Azure) are retried with exponential backoff (200 ms
  doubling to a 5 s cap, with a little jitter), honouring ``Retry-After``;
- no attempt is started or waited for past the *deadline* (default 120 s),
  and no transfer outlasts its time limits, however slowly the server sends
  (a watchdog shuts the connection: :mod:`provision.fetch.watchdog`);
- 200/204 succeed (204 or an empty body means "no data"), 404 gives a
  response whose ``found`` is false (the caller decides whether that means
  "no config"), any other status raises :class:`HttpStatusError`;
- a streamed body that breaks off is resumed (``Range``) or re-read and the
  bytes already delivered skipped, so consumers see one continuous stream.

URLs in messages and logs have credentials and query values redacted; bodies
and header values are never logged. ``requests`` is imported on first use.
The clock, sleep and random functions are injectable for fast tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

from provision import __version__
from provision.errors import FetchError
from provision.fetch.failures import describe_exception, parse_retry_after, retryable_exception
from provision.fetch.urls import ProxySettings as ProxySettings  # re-exported: part of the API
from provision.fetch.urls import redact_url as redact_url
from provision.fetch.watchdog import Watchdog, watched_adapter_class

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

DEFAULT_DEADLINE = 120.0
DEFAULT_RESPONSE_HEADER_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 30.0
# Large reads keep per-chunk overhead (Python calls, hash updates) negligible
# at loopback speeds while memory stays a few MiB.
CHUNK_SIZE = 1 << 20

_SUCCESS = frozenset({200, 204})


class HttpStatusError(FetchError):
    """The server answered with a status that is neither success nor retried to success."""

    def __init__(self, method: str, url: str, status: int, reason: str, headers: Mapping[str, str]) -> None:
        self.method = method
        self.url = redact_url(url)
        self.status = status
        self.headers = headers
        detail = f" {reason}" if reason else ""
        super().__init__(f"{method} {self.url}: HTTP {status}{detail}")


class NotFoundError(HttpStatusError):
    """404 where the caller asked for it to be an error."""


class Response:
    """A complete (non-streamed) response: status, headers and body bytes.

    ``found`` is false for 404; ``has_data`` is false for 404, 204 and an empty body.
    """

    def __init__(self, url: str, status: int, headers: Mapping[str, str], body: bytes = b"") -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def found(self) -> bool:
        return self.status != 404

    @property
    def has_data(self) -> bool:
        return self.found and self.status != 204 and bool(self.body)

    def __repr__(self) -> str:  # never the body: it may hold user data
        return f"<{type(self).__name__} {self.status} {redact_url(self.url)}>"


class StreamedResponse(Response):
    """A response whose body is read with :meth:`iter_chunks`; use it as a context manager.

    A body that breaks off (dropped connection, short read, stall) is resumed
    transparently with ``Range`` (or re-read from the start, skipping what was
    already delivered) within the client's deadline; the chunks seen by the
    consumer are one continuous stream. The server changing the content in
    between (ETag/Last-Modified) is an error, as is running out of time.
    """

    def __init__(
        self, client: HttpClient, method: str, headers_sent: Mapping[str, str],
        raw: requests.Response, total: _Budget, watchdog: Watchdog,
        retry_statuses: frozenset[int] = frozenset(), private: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(raw.url or "", raw.status_code, raw.headers)
        self._private = private
        self._watchdog = watchdog
        self._retry_statuses = retry_statuses
        self._client = client
        self._method = method
        self._headers_sent = dict(headers_sent)
        self._raw: requests.Response | None = raw
        self._total = total
        self._consumed = False
        self._closed = False

    def __enter__(self) -> StreamedResponse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self._watchdog.release()

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The body in chunks of up to ``chunk_size`` bytes; nothing for 404/204. Once only."""
        if self._consumed:
            raise RuntimeError("a streamed body can be read only once")
        self._consumed = True
        if self._raw is None or self.status in (204, 404):
            self.close()
            return
        import urllib3.exceptions

        expected = _content_length(self.headers)
        delivered = 0
        to_skip = 0
        stalled_at = -1  # offset of the last failure; no progress since => same retry budget
        budget: _Budget | None = None
        attempt = 0
        raw = self._raw
        while True:
            try:
                while True:
                    chunk = raw.raw.read(chunk_size, decode_content=True)
                    if not chunk:
                        break
                    if to_skip:
                        if len(chunk) <= to_skip:
                            to_skip -= len(chunk)
                            continue
                        chunk = chunk[to_skip:]
                        to_skip = 0
                    delivered += len(chunk)
                    self._total.check(self._method, self.url)
                    yield chunk
                # A body read until the connection closes ends the same way
                # when the watchdog shut it: that is not the end of the body.
                _raise_if_out_of_time(self._watchdog, self._method, self.url)
                if to_skip:
                    raise urllib3.exceptions.ProtocolError("body ended before the resumed offset")
                self.close()
                return
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raw.close()
                if self._closed:  # closed by the consumer (from another thread): not a failure to retry
                    raise FetchError(f"{self._method} {redact_url(self.url)}: download abandoned") from None
                _raise_if_out_of_time(self._watchdog, self._method, self.url)
                problem = describe_exception(exc, self._client.settings.response_header_timeout)
                of = f" of {expected}" if expected is not None else ""
                log.info("%s %s: body broke off after %d%s bytes (%s); resuming",
                         self._method, redact_url(self.url), delivered, of, problem)
                if delivered != stalled_at:
                    stalled_at = delivered
                    budget = _Budget(self._client.settings.clock, self._client.settings.deadline)
                    attempt = 0
                assert budget is not None
                attempt += 1
                self._client._wait_before_retry(
                    self._method, self.url, attempt, None, problem, budget, self._total,
                    what=f"the body broke off after {delivered}{of} bytes and could not be resumed",
                )
                raw, to_skip = self._reopen(delivered, budget, attempt)
                self._raw = raw
                if self._closed:
                    self.close()
                    raise FetchError(f"{self._method} {redact_url(self.url)}: download abandoned") from None

    def _reopen(self, offset: int, budget: _Budget, attempt: int) -> tuple[requests.Response, int]:
        """Ask again for the rest of the body; returns the response and bytes to skip."""
        headers = dict(self._headers_sent)
        validator = self.headers.get("ETag") or self.headers.get("Last-Modified")
        ranged = (
            offset > 0
            and self.headers.get("Accept-Ranges", "").lower() == "bytes"
            and not self.headers.get("Content-Encoding")
        )
        if ranged:
            headers["Range"] = f"bytes={offset}-"
            if validator and not validator.startswith("W/"):
                headers["If-Range"] = validator
        raw = self._client._send(
            self._method, self.url, headers, None, self._retry_statuses, budget, self._total,
            self._watchdog, first_attempt=attempt + 1, private=self._private,
        )
        _arm_for_body(self._watchdog, self._total)
        self.url = raw.url or self.url
        if raw.status_code == 206:
            start = raw.headers.get("Content-Range", "").removeprefix("bytes ").split("-", 1)[0]
            if ranged and start.strip() == str(offset):
                return raw, 0
            raw.close()
            raise FetchError(f"{self._method} {redact_url(self.url)}: resumed download returned the wrong range")
        if raw.status_code != 200:
            raw.close()
            raise FetchError(
                f"{self._method} {redact_url(self.url)}: HTTP {raw.status_code} when resuming the download"
            )
        for name in ("ETag", "Last-Modified"):
            before, after = self.headers.get(name), raw.headers.get(name)
            if before and after and before != after:
                raw.close()
                raise FetchError(f"{self._method} {redact_url(self.url)}: the content changed while downloading")
        return raw, offset


_CUT_AT_TIME_LIMIT = "no response before the time limit"


def _arm_for_headers(watchdog: Watchdog, header_timeout: float, deadline: _Budget, total: _Budget) -> None:
    """Until the headers arrive: the nearest of the header timeout, the deadline and the total limit.

    Never final here: the failed attempt goes to the retry logic, which
    gives up naming the time limit when no time is left.
    """
    seconds, reason = header_timeout, f"no response within {header_timeout:g} s"
    left = _min_remaining(deadline, total)
    if left is not None and left < seconds:
        seconds, reason = left, _CUT_AT_TIME_LIMIT
    watchdog.arm(seconds, reason, final=False)


def _arm_for_body(watchdog: Watchdog, total: _Budget, deadline: _Budget | None = None) -> None:
    """While the body flows: the total limit, and the deadline for a body read whole."""
    limits = [(left, budget.exceeded()) for budget in (total, deadline)
              if budget is not None and (left := budget.remaining()) is not None]
    if limits:
        seconds, reason = min(limits)
        watchdog.arm(seconds, reason)
    else:
        watchdog.arm(None, "")


def _raise_if_out_of_time(watchdog: Watchdog, method: str, url: str) -> None:
    """A read failed because the watchdog shut the connection at a final limit: say which."""
    if watchdog.expired is not None and watchdog.final:
        raise FetchError(f"{method} {redact_url(url)}: {watchdog.expired}") from None


def _read_all(
    raw: requests.Response, limit: int | None, budgets: Sequence[_Budget], method: str, url: str
) -> bytes:
    if raw.status_code in (204, 404):
        return b""
    parts: list[bytes] = []
    size = 0
    while chunk := raw.raw.read(CHUNK_SIZE, decode_content=True):
        size += len(chunk)
        if limit is not None and size > limit:
            raise FetchError(f"{method} {redact_url(url)}: response is larger than {limit} bytes")
        parts.append(chunk)
        for budget in budgets:
            budget.check(method, url)
    return b"".join(parts)


def _content_length(headers: Mapping[str, str]) -> int | None:
    if headers.get("Content-Encoding"):
        return None
    try:
        return int(headers.get("Content-Length", ""))
    except ValueError:
        return None


class _Budget:
    """A time limit measured on the injected clock; ``seconds=None`` means none."""

    def __init__(self, clock: Callable[[], float], seconds: float | None, name: str = "") -> None:
        self._clock = clock
        self.seconds = seconds
        self.name = name  # the setting, for messages
        self.start = clock()

    def elapsed(self) -> float:
        return self._clock() - self.start

    def remaining(self) -> float | None:
        return None if self.seconds is None else self.seconds - self.elapsed()

    def check(self, method: str, url: str) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise FetchError(f"{method} {redact_url(url)}: {self.exceeded()}")

    def exceeded(self) -> str:
        named = f" ({self.name})" if self.name else ""
        return f"not finished within the {self.seconds:g} s time limit{named}"


def _min_remaining(*budgets: _Budget) -> float | None:
    left = [r for r in (b.remaining() for b in budgets) if r is not None]
    return min(left) if left else None


@dataclass(frozen=True)
class HttpSettings:
    """Everything that shapes an :class:`HttpClient`; derive variants with ``HttpClient.with_settings``.

    ``deadline``: seconds from the start of a request after which no retry is
    started or waited for (None: retry indefinitely); it covers reading a
    non-streamed body, and each resume of a broken streamed body gets a fresh
    deadline once data has flowed. ``total_timeout``: the whole fetch
    including a streamed body (None: no limit) — the config's
    ``timeouts.httpTotal``, or ``provision.fetch.timeout`` for the platform's
    config fetches (``total_timeout_name`` says which, in messages).
    ``response_header_timeout`` bounds the whole wait for the headers of each
    attempt, and each wait for body data. All of these hold against a server
    that trickles or stalls: see :mod:`provision.fetch.watchdog`.
    """

    user_agent: str = f"provision/{__version__}"
    response_header_timeout: float = DEFAULT_RESPONSE_HEADER_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    deadline: float | None = DEFAULT_DEADLINE
    total_timeout: float | None = None
    # The setting total_timeout came from, named in messages.
    total_timeout_name: str = "timeouts.httpTotal"
    proxies: ProxySettings = field(default_factory=ProxySettings)
    ca_bundle_paths: tuple[str, ...] = ()
    ca_certificates: tuple[bytes, ...] = ()
    retry_statuses: frozenset[int] = frozenset()
    backoff_start: float = 0.2
    backoff_cap: float = 5.0
    jitter: float = 0.1
    # Some metadata services (Scaleway) answer only clients bound to a source
    # port below 1024; needs root. Each attempt binds a fresh free port.
    privileged_source_port: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random


class HttpClient:
    """The one HTTP client. Cheap to create; the connection pool is made on first use.

    Keyword arguments are the fields of :class:`HttpSettings`; ``proxies`` may
    also be a requests-style mapping ``{"http": URL, "https": URL, "no_proxy": "a,b"}``.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = HttpSettings(**_normalise(settings))
        self._session: requests.Session | None = None
        self._bound_sessions: list[requests.Session] = []
        self._ca_file: str | None = None

    @classmethod
    def from_settings(cls, settings: HttpSettings) -> HttpClient:
        client = cls()
        client.settings = settings
        return client

    def with_settings(self, **changes: Any) -> HttpClient:
        """A new client with some settings changed (e.g. from a config's timeouts/proxy/CAs)."""
        return HttpClient.from_settings(replace(self.settings, **_normalise(changes)))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        for session in self._bound_sessions:
            session.close()
        self._bound_sessions.clear()
        if self._ca_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._ca_file)
            self._ca_file = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ca_file", None):
            self.close()

    # -- public requests -------------------------------------------------

    @overload
    def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, stream: Literal[False] = False,
        retry_statuses: Collection[int] = frozenset(), not_found_ok: bool = True, limit: int | None = None,
        headers_first_hop_only: bool = False,
    ) -> Response: ...

    @overload
    def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, stream: Literal[True],
        retry_statuses: Collection[int] = frozenset(), not_found_ok: bool = True, limit: int | None = None,
        headers_first_hop_only: bool = False,
    ) -> StreamedResponse: ...

    def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, stream: bool = False,
        retry_statuses: Collection[int] = frozenset(), not_found_ok: bool = True, limit: int | None = None,
        headers_first_hop_only: bool = False,
    ) -> Response:
        """GET ``url``. 404 returns a response with ``found`` false unless ``not_found_ok`` is false
        (then :class:`NotFoundError`). ``limit`` caps a non-streamed body's size.

        ``headers`` follow a redirect to the same origin only; with
        ``headers_first_hop_only`` (a config's httpHeaders, as Ignition does)
        they follow no redirect at all."""
        private = frozenset(h.lower() for h in headers or {}) if headers_first_hop_only else frozenset()
        return self._request("GET", url, headers, None, frozenset(retry_statuses), not_found_ok, stream,
                             limit, private)

    def put(
        self, url: str, headers: Mapping[str, str] | None = None, *, data: bytes = b"",
        retry_statuses: Collection[int] = frozenset(), not_found_ok: bool = True, limit: int | None = None,
    ) -> Response:
        """PUT ``data`` (e.g. a metadata token request); same status handling as :meth:`get`."""
        return self._request("PUT", url, headers, data, frozenset(retry_statuses), not_found_ok, False, limit)

    def post(
        self, url: str, headers: Mapping[str, str] | None = None, *, data: bytes = b"",
        retry_statuses: Collection[int] = frozenset(), not_found_ok: bool = True, limit: int | None = None,
    ) -> Response:
        """POST ``data`` (a provisioning report); same status handling as :meth:`get`."""
        return self._request("POST", url, headers, data, frozenset(retry_statuses), not_found_ok, False, limit)

    # -- machinery ---------------------------------------------------------

    def _request(
        self, method: str, url: str, headers: Mapping[str, str] | None, data: bytes | None,
        retry_statuses: frozenset[int], not_found_ok: bool, stream: bool, limit: int | None,
        private: frozenset[str] = frozenset(),
    ) -> Response:
        sent = {
            "User-Agent": self.settings.user_agent,
            "Accept-Encoding": "identity",
            "Accept": "*/*",
            **(headers or {}),
        }
        s = self.settings
        deadline = _Budget(s.clock, s.deadline)
        total = _Budget(s.clock, s.total_timeout, s.total_timeout_name)
        watchdog = Watchdog()
        try:
            raw = self._send(method, url, sent, data, retry_statuses, deadline, total, watchdog,
                             private=private)
            if raw.status_code == 404 and not not_found_ok:
                raw.close()
                raise NotFoundError(method, url, 404, raw.reason or "Not Found", raw.headers)
            if stream:
                _arm_for_body(watchdog, total)
                return StreamedResponse(self, method, sent, raw, total, watchdog, retry_statuses, private)
            _arm_for_body(watchdog, total, deadline)
            raw, body = self._read_body(
                method, url, sent, data, retry_statuses, raw, deadline, total, limit, watchdog, private)
        except BaseException:
            watchdog.release()
            raise
        watchdog.release()
        return Response(raw.url or url, raw.status_code, raw.headers, body)

    def _read_body(
        self, method: str, url: str, sent: Mapping[str, str], data: bytes | None,
        retry_statuses: frozenset[int], raw: requests.Response, deadline: _Budget, total: _Budget,
        limit: int | None, watchdog: Watchdog, private: frozenset[str],
    ) -> tuple[requests.Response, bytes]:
        """Read a small body whole; a broken body means the whole request is retried."""
        import urllib3.exceptions

        attempt = 1
        while True:
            try:
                body = _read_all(raw, limit, (total, deadline), method, url)
                _raise_if_out_of_time(watchdog, method, url)  # a body cut short is not the body
                return raw, body
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                _raise_if_out_of_time(watchdog, method, url)
                problem = describe_exception(exc, self.settings.response_header_timeout)
            finally:
                raw.close()
            self._wait_before_retry(method, url, attempt, None, problem, deadline, total)
            attempt += 1
            raw = self._send(method, url, sent, data, retry_statuses, deadline, total, watchdog,
                             first_attempt=attempt, private=private)
            _arm_for_body(watchdog, total, deadline)

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
        retry_statuses: frozenset[int], deadline: _Budget, total: _Budget, watchdog: Watchdog, *,
        first_attempt: int = 1, private: frozenset[str] = frozenset(),
    ) -> requests.Response:
        """One request, retried until a final status; returns 200/204/206/404 responses.

        Each attempt's wait for the response headers is bounded as a whole by
        the watchdog (a server trickling its headers outlasts any socket
        timeout): the header timeout (then retried), the deadline and the
        total limit (then the request fails).
        """
        import requests

        retry = self.settings.retry_statuses | retry_statuses
        attempt = first_attempt
        problem = ""
        while True:
            session = self._bound_session() if self.settings.privileged_source_port else self._get_session()
            left = _min_remaining(deadline, total)
            connect_t = self.settings.connect_timeout
            read_t = self.settings.response_header_timeout
            if left is not None:
                connect_t, read_t = max(min(connect_t, left), 0.001), max(min(read_t, left), 0.001)
            retry_after: float | None = None
            _arm_for_headers(watchdog, self.settings.response_header_timeout, deadline, total)
            session.dropped_on_redirect.names = private  # type: ignore[attr-defined]
            try:
                with watchdog.current():
                    raw = session.request(
                        method, url, headers=dict(headers), data=data, stream=True,
                        timeout=(connect_t, read_t), proxies=self.settings.proxies.for_url(url),
                        verify=self._verify(), allow_redirects=True,
                    )
            except requests.RequestException as exc:
                if watchdog.expired == _CUT_AT_TIME_LIMIT and attempt > first_attempt:
                    pass  # cut short by the time limit: the previous attempt's problem says more
                else:
                    problem = watchdog.expired or describe_exception(exc, self.settings.response_header_timeout)
                if not retryable_exception(exc):
                    raise FetchError(f"{method} {redact_url(url)}: {problem}") from None
            else:
                status = raw.status_code
                log.debug("%s %s -> %d", method, redact_url(url), status)
                if status in _SUCCESS or status in (206, 404):
                    return raw
                if not (500 <= status <= 599 or status in retry):
                    raw.close()
                    raise HttpStatusError(method, url, status, raw.reason or "", raw.headers)
                problem = f"HTTP {status}" + (f" {raw.reason}" if raw.reason else "")
                retry_after = parse_retry_after(raw.headers.get("Retry-After"), self.settings.wall_clock)
                raw.close()
            self._wait_before_retry(method, url, attempt, retry_after, problem, deadline, total)
            attempt += 1

    def _wait_before_retry(
        self, method: str, url: str, attempt: int, retry_after: float | None, problem: str,
        deadline: _Budget, total: _Budget, *, what: str = "gave up",
    ) -> None:
        """Sleep before attempt ``attempt + 1``, or raise if that would pass a time limit."""
        s = self.settings
        delay = retry_after if retry_after is not None else self.backoff_delay(attempt)
        limits = sorted(((b.remaining(), i, b) for i, b in enumerate((deadline, total)) if b.seconds is not None))
        if limits and delay >= limits[0][0]:  # type: ignore[operator]
            limit = limits[0][2]
            asked = f"; the server asked to retry after {retry_after:g} s" if retry_after is not None else ""
            raise FetchError(
                f"{method} {redact_url(url)}: {what} after {attempt} attempt{'s' if attempt > 1 else ''} "
                f"in {limit.elapsed():.1f} s (time limit {limit.seconds:g} s{', ' + limit.name if limit.name else ''})"
                f"{asked}; last error: {problem}"
            )
        from provision.fetch import abandon

        if abandon.is_abandoned():
            raise abandon.Abandoned(f"{method} {redact_url(url)}: lost its race; not retried")
        log.info("%s %s: %s; retrying in %.1f s", method, redact_url(url), problem, delay)
        s.sleep(delay)
        if abandon.is_abandoned():
            raise abandon.Abandoned(f"{method} {redact_url(url)}: lost its race; not retried")

    def backoff_delay(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based): start * 2^(n-1), capped, jittered."""
        s = self.settings
        base: float = min(s.backoff_cap, s.backoff_start * 2.0 ** min(attempt - 1, 32))
        return max(0.0, base * (1 + s.jitter * (2 * s.rand() - 1)))

    def _get_session(self) -> requests.Session:
        if self._session is None:
            session = _new_session()
            session.trust_env = False  # proxies come from the config only, never the environment
            # urllib3 logs request lines with their query strings (secrets); keep it quiet.
            logging.getLogger("urllib3").setLevel(logging.WARNING)
            self._session = session
        return self._session

    def _bound_session(self) -> requests.Session:
        """A session whose connections come from a free source port below 1024."""
        port = _free_privileged_port()

        class BoundAdapter(watched_adapter_class()):  # type: ignore[misc]
            def init_poolmanager(
                self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
            ) -> None:
                pool_kwargs["source_address"] = ("", port)
                super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

        session = _new_session()
        session.trust_env = False
        session.mount("http://", BoundAdapter())
        session.mount("https://", BoundAdapter())
        self._bound_sessions.append(session)
        return session

    def _verify(self) -> bool | str:
        s = self.settings
        if not s.ca_bundle_paths and not s.ca_certificates:
            return True
        if self._ca_file is None:
            self._ca_file = _combined_ca_bundle(s.ca_bundle_paths, s.ca_certificates)
        return self._ca_file


# Headers the client itself sets or that describe the body: harmless anywhere.
# Every other header (a config's httpHeaders, a metadata service's token) is
# meant for the origin it was given for, and is dropped when a redirect leaves
# that origin (another scheme, host or port).
_HEADERS_FOR_ANY_ORIGIN = frozenset({
    "user-agent", "accept-encoding", "accept", "content-length", "content-type", "transfer-encoding",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _new_session() -> requests.Session:
    """A session that forwards the caller's headers on a redirect only to the same origin.

    requests drops only Authorization (and keeps it on an http->https upgrade);
    a token in any other header would reach whatever host a redirect names.
    """
    import requests

    class SameOriginHeadersSession(requests.Session):
        # Headers the current request must not carry past any redirect (a
        # config's httpHeaders, as Ignition erases them); per thread because a
        # session may serve several threads.
        dropped_on_redirect = threading.local()

        def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
            always: frozenset[str] = getattr(self.dropped_on_redirect, "names", frozenset())
            other_origin = _origin(prepared_request.url or "") != _origin(response.request.url or "")
            for name in list(prepared_request.headers):
                lower = name.lower()
                if lower in always or (other_origin and lower not in _HEADERS_FOR_ANY_ORIGIN):
                    del prepared_request.headers[name]
            super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]

    session = SameOriginHeadersSession()
    adapter = watched_adapter_class()
    session.mount("http://", adapter())
    session.mount("https://", adapter())
    return session


def _normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Accept friendly argument types (lists, a requests-style proxies mapping, None)."""
    out = dict(settings)
    proxies = out.get("proxies")
    if proxies is None:
        out.pop("proxies", None)
    elif isinstance(proxies, Mapping):
        out["proxies"] = ProxySettings(
            http=proxies.get("http"), https=proxies.get("https"),
            no_proxy=tuple(p.strip() for p in str(proxies.get("no_proxy", "")).split(",") if p.strip()),
        )
    for name in ("ca_bundle_paths", "ca_certificates"):
        if name in out:
            out[name] = tuple(str(p) if name == "ca_bundle_paths" else p for p in out[name])
    if "retry_statuses" in out:
        out["retry_statuses"] = frozenset(out["retry_statuses"])
    return out


def _free_privileged_port() -> int:
    ports = list(range(600, 1024))
    random.shuffle(ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("", port))
            except PermissionError:
                raise FetchError(
                    "this metadata service only answers source ports below 1024; binding one needs "
                    "root (CAP_NET_BIND_SERVICE)"
                ) from None
            except OSError:
                continue
            return port
    raise FetchError("no free source port below 1024")


def _combined_ca_bundle(paths: Sequence[str], pems: Sequence[bytes]) -> str:
    """The default trust store plus the extra CAs, in one private temporary PEM file."""
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    parts: list[bytes] = []
    for path in (DEFAULT_CA_BUNDLE_PATH, *paths):
        try:
            with open(path, "rb") as f:
                parts.append(f.read())
        except OSError as exc:
            if path == DEFAULT_CA_BUNDLE_PATH:
                continue
            raise FetchError(f"cannot read CA bundle {path}: {exc.strerror}") from None
    parts.extend(pems)
    fd, name = tempfile.mkstemp(prefix="provision-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n")
    return name


