"""Checks on inline (data:) resources that can be settled now instead of at
boot: gzip data that does not decompress, a hash that does not match."""

from __future__ import annotations

from collections.abc import Iterator

from provision.config import model
from provision.config.checks.dataurl import DataURLError, parse_data_url
from provision.config.checks.resources import all_resources, hash_problem
from provision.diagnostics import Diagnostic, error

# Work per resource is bounded: past this much decompressed data the hash is
# left to the fetch at boot (a small gzip bomb must not stall validation).
MAX_INFLATED = 64 << 20
_CHUNK = 1 << 20


class _Corrupt(Exception):
    pass


class _TooLarge(Exception):
    pass


def _gunzip_chunks(data: bytes) -> Iterator[bytes]:
    """Decompressed chunks of (possibly multi-member) gzip, in constant memory."""
    import zlib

    if not data:
        raise _Corrupt  # gzip has at least a header
    total = 0
    while data:
        inflater = zlib.decompressobj(wbits=31)
        pending = data
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, _CHUNK)
            except zlib.error:
                raise _Corrupt from None
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                raise _Corrupt  # truncated
            total += len(chunk)
            if total > MAX_INFLATED:
                raise _TooLarge
            yield chunk
        data = inflater.unused_data


def _digest(chunks: Iterator[bytes], function: str | None) -> str | None:
    import hashlib

    hasher = hashlib.new(function) if function else None
    for chunk in chunks:
        if hasher is not None:
            hasher.update(chunk)
    return hasher.hexdigest() if hasher is not None else None


def check_inline_data(config: model.Config) -> Iterator[Diagnostic]:
    for res, where, _ in all_resources(config):
        if not res.source or res.source[:5] != "data:":
            continue
        spec = res.verification.hash
        function = spec.partition("-")[0] if spec and not hash_problem(spec) else None
        gzipped = res.compression == "gzip"
        if not gzipped and function is None:
            continue  # nothing to verify: check_sources already parsed it
        try:
            data = parse_data_url(res.source).data
        except DataURLError:
            continue  # reported by check_sources
        try:
            digest = _digest(_gunzip_chunks(data) if gzipped else iter((data,)), function)
        except _Corrupt:
            yield error("data is not valid gzip", (*where, "compression"))
            continue
        except _TooLarge:
            continue
        if spec and digest and digest != spec.partition("-")[2].lower():
            yield error(
                "verification hash does not match the data: URL's (decompressed) contents",
                (*where, "verification", "hash"),
            )


CHECKS = (check_inline_data,)
