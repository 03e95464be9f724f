"""Undoing the platforms' encodings of user data."""

from __future__ import annotations

import base64
import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provision.errors import FetchError
from provision.platforms.payload import MAX_DECODED_BYTES, decode_payload


@given(st.binary(max_size=2048).filter(lambda d: not d.startswith(b"\x1f\x8b")))
def test_every_encoding_round_trips(data: bytes) -> None:
    gz = gzip.compress(data)
    assert decode_payload(base64.b64encode(data), "base64", "t") == data
    assert decode_payload(base64.b64encode(data), "b64", "t") == data
    assert decode_payload(gz, "gzip", "t") == data
    assert decode_payload(gz, "GZ", "t") == data
    assert decode_payload(base64.b64encode(gz), "gzip+base64", "t") == data
    assert decode_payload(base64.b64encode(gz), "gz+b64", "t") == data
    assert decode_payload(gz, None, "t") == data  # gzip recognised by its magic bytes
    assert decode_payload(base64.b64encode(gz), "base64", "t") == data


def test_base64_is_never_guessed() -> None:
    looks_like_base64 = b"aGVsbG8="
    assert decode_payload(looks_like_base64, None, "t") == looks_like_base64


def test_base64_with_line_breaks_is_accepted() -> None:
    encoded = base64.encodebytes(b"x" * 200)
    assert b"\n" in encoded
    assert decode_payload(encoded, "base64", "t") == b"x" * 200


@pytest.mark.parametrize("data, encoding, message", [
    (b"not base64!", "base64", "not valid base64"),
    (b"\x1f\x8bgarbage", None, "gzip data is corrupt"),
    (gzip.compress(b"x" * 1000)[:-12], None, "truncated"),
    (b"x", "zstd", "unknown encoding"),
])
def test_bad_payloads_are_clear_errors(data: bytes, encoding: str | None, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        decode_payload(data, encoding, "aws user data")


def test_decompression_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (MAX_DECODED_BYTES + 1))
    with pytest.raises(FetchError, match="exceeds"):
        decode_payload(bomb, None, "t")
