"""Fetch a config ``Resource``: streamed, decompressed and hash-verified on the fly.

Sources: ``data:`` (RFC 2397, base64 or percent-encoded), ``http(s)://``
(with the resource's headers), ``tftp://``, and ``s3://``/``gs://`` (plus
``arn:aws:s3:::bucket/key``) fetched anonymously over HTTPS from endpoints
that can be redirected for tests. A resource without a source is empty.

Memory stays constant whatever the size: data flows in chunks of about
:data:`CHUNK_SIZE` through gunzip (output bounded per step, so a "zip bomb"
cannot balloon) and the hash. The hash is checked when the stream ends; the
consumer must read it to the end and only then commit what it wrote, which
:func:`fetch_to_file` and :func:`fetch_to_path` do for you.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from provision.config.model import Resource
from provision.errors import FetchError
from provision.fetch import cloudauth
from provision.fetch.http import CHUNK_SIZE, HttpClient, HttpStatusError, StreamedResponse
from provision.fetch.urls import redact_url

# A config, a CA bundle or an SSH key file held in memory is never bigger than this.
DEFAULT_BYTES_LIMIT = 64 << 20
HASH_LENGTHS = {"sha256": 64, "sha512": 128}


class Sink(Protocol):
    """Anything bytes can be written to: a binary file, a temporary file, a hashing counter."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class ObjectStoreEndpoints:
    """URL templates for anonymous object-store reads; ``{bucket}`` and ``{key}`` (URL-quoted).

    Tests point these at a loopback stand-in, e.g. ``http://127.0.0.1:PORT/s3/{bucket}/{key}``.
    """

    s3: str = "https://{bucket}.s3.amazonaws.com/{key}"
    gs: str = "https://storage.googleapis.com/{bucket}/{key}"


DEFAULT_ENDPOINTS = ObjectStoreEndpoints()


def describe_source(source: str | None) -> str:
    """The source for messages: never a data URL's contents, never credentials or query values."""
    if source is None:
        return "(no source)"
    if source.startswith("data:"):
        return "data: URL"
    return redact_url(source)


@contextmanager
def open_resource(
    resource: Resource, client: HttpClient, *, endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[Iterator[bytes]]:
    """Yield an iterator over the resource's decompressed bytes, in chunks.

    The iterator raises FetchError if the source fails, the compressed data is
    corrupt, or — once the last chunk has been read — the hash does not match.
    """
    check = _expected_hash(resource)
    if resource.compression not in (None, "gzip"):
        raise FetchError(f"{describe_source(resource.source)}: unsupported compression {resource.compression!r}")
    raw, closer = _open_source(resource, client, endpoints, chunk_size)
    ahead = _ReadAhead(raw) if _is_remote(resource.source) else None
    try:
        chunks: Iterable[bytes] = ahead if ahead is not None else raw
        if resource.compression == "gzip":
            chunks = _gunzip(chunks, chunk_size, resource.source)
        yield _verified(chunks, check, resource.source) if check else iter(chunks)
    finally:
        if ahead is not None:
            ahead.stop()
        closer()


def fetch_to_file(
    resource: Resource, dest: Sink, client: HttpClient, *,
    endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS, chunk_size: int = CHUNK_SIZE,
) -> int:
    """Write the resource's (decompressed, verified) bytes to ``dest``; returns the count.

    On FetchError ``dest`` holds partial data: write to a temporary file and
    rename it only after this returns (or use :func:`fetch_to_path`).
    """
    written = 0
    with open_resource(resource, client, endpoints=endpoints, chunk_size=chunk_size) as chunks:
        for chunk in chunks:
            dest.write(chunk)
            written += len(chunk)
    return written


def fetch_to_path(
    resource: Resource, path: str | os.PathLike[str], client: HttpClient, *, mode: int = 0o600,
    endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS,
) -> int:
    """Fetch into ``path`` atomically: a temporary file beside it, fsync, rename.

    When the fetch or verification fails, ``path`` is untouched and no temporary file is left.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            written = fetch_to_file(resource, f, client, endpoints=endpoints)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def fetch_bytes(
    resource: Resource, client: HttpClient, *, limit: int = DEFAULT_BYTES_LIMIT,
    endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS,
) -> bytes:
    """The resource's (decompressed, verified) bytes, refusing more than ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    with open_resource(resource, client, endpoints=endpoints) as chunks:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise FetchError(f"{describe_source(resource.source)}: larger than the limit of {limit} bytes")
            parts.append(chunk)
    return b"".join(parts)


# -- sources -----------------------------------------------------------------


def _nothing() -> None:
    pass


def _open_source(
    resource: Resource, client: HttpClient, endpoints: ObjectStoreEndpoints, chunk_size: int
) -> tuple[Iterable[bytes], Callable[[], None]]:
    """(chunks, close function) for the raw (possibly compressed) bytes of the source."""
    source = resource.source
    if not source:  # None or "": no bytes (Ignition writes an empty file for source "")
        return [], _nothing
    scheme = source.split(":", 1)[0].lower() if ":" in source else ""
    if scheme == "data":
        data = decode_data_url(source)
        return (data[i:i + chunk_size] for i in range(0, len(data), chunk_size)), _nothing
    if scheme in ("http", "https"):
        headers = {h.name: h.value for h in resource.http_headers}
        credentials = cloudauth.active()
        if credentials is not None and credentials.is_azure_blob(source):
            with_identity = _azure_blob_with_identity(source, headers, credentials, client)
            if with_identity is not None:
                return with_identity.iter_chunks(chunk_size), with_identity.close
        response = client.get(source, headers, stream=True, not_found_ok=False, headers_first_hop_only=True)
        return response.iter_chunks(chunk_size), response.close
    if scheme == "tftp":
        from provision.fetch.tftp import tftp_chunks

        s = client.settings
        return tftp_chunks(source, deadline=s.deadline, clock=s.clock), _nothing
    if scheme in ("s3", "gs", "arn"):
        url = object_store_url(source, endpoints)
        store = "gs" if scheme == "gs" else "s3"
        credentials = cloudauth.active()
        signed = credentials.for_object(store, url, client) if credentials else None
        try:
            try:
                response = client.get(url, signed.headers if signed else None, stream=True,
                                      not_found_ok=False)
            except HttpStatusError as exc:
                # Signed for the wrong region: S3 names the bucket's own; sign again, once.
                region = exc.headers.get("x-amz-bucket-region")
                if not (signed and credentials and store == "s3" and region
                        and exc.status in (301, 400)):
                    raise
                signed = credentials.resign_s3(url, client, region)
                response = client.get(url, signed.headers if signed else None, stream=True,
                                      not_found_ok=False)
        except HttpStatusError as exc:
            if exc.status in (401, 403):
                how = ("with this instance's credentials" if signed else
                       "anonymously (this platform offers no instance credentials for it)")
                raise FetchError(
                    f"{describe_source(source)}: access denied (HTTP {exc.status}) reading it "
                    f"{how}: grant the instance access, make the object public, or serve it over "
                    "https (e.g. a signed URL)"
                ) from None
            raise FetchError(f"{describe_source(source)}: {exc}") from None
        return response.iter_chunks(chunk_size), response.close
    raise FetchError(f"{describe_source(source)}: unsupported source scheme {scheme + ':' if scheme else '(none)'}")


def _azure_blob_with_identity(
    source: str, headers: dict[str, str], credentials: cloudauth.PlatformCredentials,
    client: HttpClient,
) -> StreamedResponse | None:
    """The blob read with the managed identity, or None to read it as plain HTTPS
    (no identity, no token, or refused: Ignition falls back the same way)."""
    import logging

    log = logging.getLogger(__name__)
    try:
        signed = credentials.for_azure_blob(source, client)
        if signed is None:
            return None
        return client.get(source, {**headers, **signed.headers}, stream=True, not_found_ok=False)
    except FetchError as exc:
        log.info("%s: not readable with the managed identity (%s); trying plain HTTPS",
                 describe_source(source), exc)
        return None


def object_store_url(source: str, endpoints: ObjectStoreEndpoints = DEFAULT_ENDPOINTS) -> str:
    """The anonymous HTTPS URL for ``s3://bucket/key``, ``gs://bucket/key`` or an S3 object ARN."""
    if source.startswith("arn:"):
        # arn:aws:s3:::bucket/key names an object; access-point ARNs need signed requests.
        fields = source.split(":", 5)
        if len(fields) != 6 or fields[2] != "s3" or fields[3] or fields[4] or "/" not in fields[5]:
            raise FetchError(
                f"{describe_source(source)}: only S3 object ARNs (arn:aws:s3:::bucket/key) are supported; "
                "access points need AWS credentials and a regional access-point endpoint, not supported yet"
            )
        bucket, _, key = fields[5].partition("/")
        scheme, query = "s3", ""
    else:
        parts = urlsplit(source)
        scheme, bucket, key, query = parts.scheme.lower(), parts.netloc, parts.path.lstrip("/"), parts.query
    if not bucket or not key:
        raise FetchError(f"{describe_source(source)}: names no bucket and object")
    template = endpoints.s3 if scheme == "s3" else endpoints.gs
    url = template.format(bucket=quote(bucket, safe=""), key=quote(key, safe="/"))
    if scheme == "s3" and query:
        version = [v for k, _, v in (p.partition("=") for p in query.split("&")) if k == "versionId"]
        if version:
            url += "?versionId=" + quote(version[0], safe="")
    return url


def decode_data_url(url: str) -> bytes:
    """The bytes of an RFC 2397 ``data:[<mediatype>][;base64],<data>`` URL.

    Validation's parser, so what is written is exactly what was validated:
    a URL validate refuses is never decoded some other way here.
    """
    from provision.config.checks.dataurl import DataURLError, parse_data_url

    try:
        return parse_data_url(url).data
    except DataURLError as exc:
        raise FetchError(f"invalid data URL: {exc}") from None


def _is_remote(source: str | None) -> bool:
    return source is not None and not source.startswith("data:")


class _ReadAhead:
    """Iterate ``chunks`` in a helper thread, a few chunks ahead of the consumer.

    Network reads and hashing/decompression/writing then overlap (both release
    the GIL on large buffers), as in ``curl | sha512sum``. At most ``depth``
    chunks wait in the queue, so memory stays bounded. Errors from the source
    are re-raised in the consumer.
    """

    _END = object()

    def __init__(self, chunks: Iterable[bytes], depth: int = 2) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(chunks,), daemon=True,
                                        name="provision-read-ahead")
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, chunks: Iterable[bytes]) -> None:
        item: object = self._END
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            item = exc
        if not self._stopped.is_set():
            self._put(item)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def stop(self) -> None:
        """Let the helper thread finish (it ends once its current read returns)."""
        self._stopped.set()


# -- decompression and verification -----------------------------------------


def _gunzip(chunks: Iterable[bytes], chunk_size: int, source: str | None) -> Iterator[bytes]:
    """Decompress gzip (several members allowed), never producing more than chunk_size at once."""
    what = describe_source(source)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    started = False
    try:
        for chunk in chunks:
            data = chunk
            started = started or bool(data)
            while True:
                out = inflater.decompress(data, chunk_size)
                if out:
                    yield out
                if inflater.eof:  # a member ended; another may follow
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                    started = bool(data)
                    if not data:
                        break
                    continue
                data = inflater.unconsumed_tail
                if not data and len(out) < chunk_size:  # input used up and output not capped
                    break
    except zlib.error:
        raise FetchError(f"{what}: the data is not valid gzip") from None
    if started and not inflater.eof:
        raise FetchError(f"{what}: the gzip data is truncated")


@dataclass(frozen=True)
class _ExpectedHash:
    algorithm: str
    digest: str


def _expected_hash(resource: Resource) -> _ExpectedHash | None:
    value = resource.verification.hash
    if value is None:
        return None
    algorithm, _, digest = value.partition("-")
    algorithm = algorithm.lower()
    if algorithm not in HASH_LENGTHS:
        raise FetchError(f"{describe_source(resource.source)}: unsupported hash type {algorithm!r} (use sha256 or sha512)")
    if len(digest) != HASH_LENGTHS[algorithm] or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise FetchError(
            f"{describe_source(resource.source)}: {algorithm} hash must be {HASH_LENGTHS[algorithm]} hex digits"
        )
    return _ExpectedHash(algorithm, digest.lower())


def _verified(chunks: Iterable[bytes], expected: _ExpectedHash, source: str | None) -> Iterator[bytes]:
    hasher = hashlib.new(expected.algorithm)
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    actual = hasher.hexdigest()
    if actual != expected.digest:
        raise FetchError(
            f"{describe_source(source)}: {expected.algorithm} hash mismatch: expected "
            f"{expected.algorithm}-{expected.digest}, got {expected.algorithm}-{actual}"
        )
