"""Why a request failed, in words free of URLs, and whether trying again can help."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator


def parse_retry_after(value: str | None, wall_clock: Callable[[], float]) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent/invalid."""
    import email.utils

    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - wall_clock())


def retryable_exception(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return False  # certificate problems do not fix themselves
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts and exceptions nested in args (urllib3 wraps deeply)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(a for a in e.args if isinstance(a, BaseException))
        for nested in (getattr(e, "reason", None), e.__cause__, e.__context__):
            if isinstance(nested, BaseException):
                todo.append(nested)


def describe_exception(exc: BaseException, read_timeout: float) -> str:
    """A short human reason, free of URLs (requests' own messages embed the full URL)."""
    import requests
    import urllib3.exceptions

    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {e.verify_message!s}"
    for e in chain:
        if isinstance(e, ssl.SSLError):
            return f"TLS error: {e.reason or type(e).__name__}"
    for e in chain:
        if isinstance(e, socket.gaierror):
            return "host name could not be resolved"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(e, urllib3.exceptions.IncompleteRead):
            return "connection closed before the whole body arrived"
    for e in chain:
        if isinstance(e, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
            return "timed out connecting"
        if isinstance(e, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return f"no response within {read_timeout:g} s"
    for e in chain:
        if isinstance(e, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError):
            return "connection closed unexpectedly"
        if isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return "invalid URL"
        if isinstance(e, requests.exceptions.InvalidSchema):
            return "unsupported URL scheme"
        if isinstance(e, requests.exceptions.InvalidHeader | ValueError):
            return "invalid request header"
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    return type(exc).__name__
