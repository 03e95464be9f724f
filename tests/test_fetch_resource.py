"""Resources: data URLs, http(s) with headers, s3/gs stand-ins, gzip and hashes on the fly."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import time
import tracemalloc
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provision.config.model import HTTPHeader, Resource, Verification
from provision.errors import FetchError
from provision.fetch.http import HttpClient, NotFoundError
from provision.fetch.resource import (
    ObjectStoreEndpoints,
    decode_data_url,
    fetch_bytes,
    fetch_to_file,
    fetch_to_path,
    object_store_url,
    open_resource,
)
from tests.standins.http_server import LoopbackHTTPServer, Reply, generated_body


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as s:
        yield s


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(sleep=lambda s: None, deadline=5)


def sha(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{hashlib.new(algorithm, data).hexdigest()}"


# -- data URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("data:,hello%20world%0A", b"hello world\n"),
        ("data:text/plain;charset=utf-8,caf%C3%A9", "café".encode()),
        ("data:;base64,aGVsbG8=", b"hello"),
        ("data:application/octet-stream;base64,AAEC/w==", b"\x00\x01\x02\xff"),
        ("data:,", b""),
    ],
)
def test_data_urls_decode(url: str, expected: bytes, client: HttpClient) -> None:
    assert decode_data_url(url) == expected
    assert fetch_bytes(Resource(source=url), client) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [("data:text/plain;base64", "no ','"), ("data:;base64,@@@", "base64"), ("data:;base64,aGVsbG8", "base64"),
     # What validation refuses is not decoded some other way: no escapes or
     # blanks inside base64, no raw non-URL characters, '%' only as an escape.
     ("data:;base64,aGVs%0AbG8=", "base64"), ("data:;base64,aGVs bG8=", "base64"),
     ("data:,aGVsbG8 world", "percent-encoded"), ("data:,aGVsbG8%zz", "percent-encoding")],
)
def test_invalid_data_urls_fail_without_echoing_the_data(url: str, message: str, client: HttpClient) -> None:
    with pytest.raises(FetchError, match=message) as info:
        fetch_bytes(Resource(source=url), client)
    assert "@@@" not in str(info.value) and "aGVsbG8" not in str(info.value)


@given(st.binary(max_size=2000))
def test_data_urls_round_trip_in_both_encodings(data: bytes) -> None:
    assert decode_data_url("data:;base64," + base64.b64encode(data).decode()) == data
    assert decode_data_url("data:," + urllib.parse.quote(data, safe="")) == data


# -- gzip and verification -----------------------------------------------------------


def test_gzip_and_sha512_over_the_decompressed_data(server: LoopbackHTTPServer, client: HttpClient) -> None:
    data = os.urandom(3 << 20)
    server.route("/f.gz", Reply(body=gzip.compress(data)))
    resource = Resource(source=server.url("/f.gz"), compression="gzip",
                        verification=Verification(sha("sha512", data)))
    assert fetch_bytes(resource, client) == data


def test_gzip_with_several_members(client: HttpClient) -> None:
    payload = gzip.compress(b"first ") + gzip.compress(b"second")
    url = "data:;base64," + base64.b64encode(payload).decode()
    resource = Resource(source=url, compression="gzip", verification=Verification(sha("sha256", b"first second")))
    assert fetch_bytes(resource, client) == b"first second"


@given(data=st.binary(max_size=20_000), members=st.integers(1, 3), chunk=st.integers(1, 4096))
def test_gzip_streaming_is_exact_for_any_chunk_size(data: bytes, members: int, chunk: int) -> None:
    parts = [data[i * len(data) // members:(i + 1) * len(data) // members] for i in range(members)]
    payload = b"".join(gzip.compress(p) for p in parts)
    url = "data:;base64," + base64.b64encode(payload).decode()
    with open_resource(Resource(source=url, compression="gzip"), HttpClient(), chunk_size=chunk) as chunks:
        out = list(chunks)
    assert b"".join(out) == data and all(0 < len(c) <= chunk for c in out)


@pytest.mark.parametrize(("payload", "message"), [
    (b"not gzip at all", "not valid gzip"),
    (gzip.compress(b"x" * 10_000)[:-12], "truncated"),
])
def test_bad_gzip_fails(payload: bytes, message: str, client: HttpClient) -> None:
    url = "data:;base64," + base64.b64encode(payload).decode()
    with pytest.raises(FetchError, match=message):
        fetch_bytes(Resource(source=url, compression="gzip"), client)


def test_hash_mismatch_leaves_no_file_and_names_both_hashes(
    server: LoopbackHTTPServer, client: HttpClient, tmp_path: Path
) -> None:
    server.route("/secret", Reply(body=b"TOP-SECRET-CONTENTS"))
    wanted = sha("sha256", b"something else")
    resource = Resource(source=server.url("/secret?sig=abc"), verification=Verification(wanted))
    with pytest.raises(FetchError) as info:
        fetch_to_path(resource, tmp_path / "out", client)
    message = str(info.value)
    assert "sha256 hash mismatch" in message
    assert f"expected {wanted}" in message and f"got {sha('sha256', b'TOP-SECRET-CONTENTS')}" in message
    assert "TOP-SECRET" not in message and "abc" not in message
    assert list(tmp_path.iterdir()) == []


def test_fetch_to_path_writes_atomically_with_the_mode(
    server: LoopbackHTTPServer, client: HttpClient, tmp_path: Path
) -> None:
    server.route("/f", Reply(body=b"contents"))
    target = tmp_path / "out"
    target.write_bytes(b"old")
    assert fetch_to_path(Resource(source=server.url("/f")), target, client, mode=0o640) == 8
    assert target.read_bytes() == b"contents" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize(("value", "message"), [
    ("md5-d41d8cd98f00b204e9800998ecf8427e", "unsupported hash type 'md5'"),
    ("sha256-abc", "64 hex digits"),
    ("sha512-" + "z" * 128, "128 hex digits"),
])
def test_malformed_hashes_are_refused_before_fetching(
    value: str, message: str, server: LoopbackHTTPServer, client: HttpClient
) -> None:
    server.route("/f", Reply(body=b"x"))
    with pytest.raises(FetchError, match=message):
        fetch_bytes(Resource(source=server.url("/f"), verification=Verification(value)), client)
    assert server.count("/f") == 0


def test_no_source_is_empty(client: HttpClient) -> None:
    assert fetch_bytes(Resource(), client) == b""


def test_unsupported_scheme(client: HttpClient) -> None:
    with pytest.raises(FetchError, match="unsupported source scheme ftp:"):
        fetch_bytes(Resource(source="ftp://127.0.0.1/x"), client)


def test_fetch_bytes_limit(server: LoopbackHTTPServer, client: HttpClient) -> None:
    server.route("/big", Reply(body=b"x" * 10_000))
    with pytest.raises(FetchError, match="larger than the limit of 1000 bytes"):
        fetch_bytes(Resource(source=server.url("/big")), client, limit=1000)


# -- http(s) ------------------------------------------------------------------------


def test_resource_headers_are_sent(server: LoopbackHTTPServer, client: HttpClient) -> None:
    server.route("/f", Reply(body=b"x"))
    headers = (HTTPHeader("Authorization", "Bearer abc"), HTTPHeader("X-Empty", ""))
    fetch_bytes(Resource(source=server.url("/f"), http_headers=headers), client)
    [request] = server.requests_for("/f")
    assert request.headers["Authorization"] == "Bearer abc" and request.headers["X-Empty"] == ""


def test_missing_resource_is_an_error(server: LoopbackHTTPServer, client: HttpClient) -> None:
    with pytest.raises(NotFoundError, match="HTTP 404"):
        fetch_bytes(Resource(source=server.url("/nope")), client)


def test_resource_resumes_after_a_broken_body(server: LoopbackHTTPServer, client: HttpClient) -> None:
    data = os.urandom(2 << 20)
    server.route("/f", Reply(body=data, truncate_at=700_000, ranges=True), Reply(body=data, ranges=True))
    resource = Resource(source=server.url("/f"), verification=Verification(sha("sha512", data)))
    assert fetch_bytes(resource, client) == data


# -- object stores ---------------------------------------------------------------------


def endpoints(server: LoopbackHTTPServer) -> ObjectStoreEndpoints:
    return ObjectStoreEndpoints(s3=server.url("/s3/{bucket}/{key}"), gs=server.url("/gs/{bucket}/{key}"))


def test_object_store_urls() -> None:
    assert object_store_url("s3://my-bucket/dir/a b.ign") == "https://my-bucket.s3.amazonaws.com/dir/a%20b.ign"
    assert object_store_url("gs://b/k") == "https://storage.googleapis.com/b/k"
    assert object_store_url("arn:aws:s3:::b/k/x") == "https://b.s3.amazonaws.com/k/x"
    assert object_store_url("s3://b/k?versionId=v1") == "https://b.s3.amazonaws.com/k?versionId=v1"
    with pytest.raises(FetchError, match="access points need AWS credentials"):
        object_store_url("arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/k")
    with pytest.raises(FetchError, match="names no bucket and object"):
        object_store_url("s3://bucket-only")


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_public_objects_are_fetched_from_the_endpoint(
    scheme: str, server: LoopbackHTTPServer, client: HttpClient
) -> None:
    server.route(f"/{scheme}/bucket/configs/base.ign", Reply(body=b"object data"))
    resource = Resource(source=f"{scheme}://bucket/configs/base.ign",
                        verification=Verification(sha("sha256", b"object data")))
    assert fetch_bytes(resource, client, endpoints=endpoints(server)) == b"object data"


def test_private_objects_say_credentials_are_not_used(server: LoopbackHTTPServer, client: HttpClient) -> None:
    server.route("/s3/bucket/private", Reply(403))
    with pytest.raises(FetchError, match=r"access denied \(HTTP 403\).*anonymously.*credentials"):
        fetch_bytes(Resource(source="s3://bucket/private"), client, endpoints=endpoints(server))


# -- constant memory ----------------------------------------------------------------------


class CountingSink:
    def __init__(self) -> None:
        self.size = 0
        self.hash = hashlib.sha512()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.hash.update(data)
        return len(data)


def test_a_200_mib_stream_is_fetched_and_verified_in_constant_memory(
    server: LoopbackHTTPServer, client: HttpClient
) -> None:
    size = 200 << 20
    expected = hashlib.sha512()
    for chunk in generated_body(size)():
        expected.update(chunk)
    server.route("/big", Reply(body=generated_body(size), length=size))
    resource = Resource(source=server.url("/big"), verification=Verification("sha512-" + expected.hexdigest()))
    sink = CountingSink()
    tracemalloc.start()
    try:
        written = fetch_to_file(resource, sink, client)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == size and sink.hash.hexdigest() == expected.hexdigest()
    assert peak < 16 << 20, f"peak traced memory {peak / 2**20:.1f} MiB"


def test_a_gzip_bomb_is_decompressed_in_bounded_steps(client: HttpClient) -> None:
    size = 256 << 20
    compressed = gzip.compress(b"\0" * (1 << 20), compresslevel=9) * 256  # 256 members of 1 MiB
    url = "data:;base64," + base64.b64encode(compressed).decode()
    tracemalloc.start()
    try:
        with open_resource(Resource(source=url, compression="gzip"), client) as chunks:
            total = 0
            biggest = 0
            for chunk in chunks:
                total += len(chunk)
                biggest = max(biggest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size and biggest <= 1 << 20
    assert peak < 8 << 20


def test_abandoning_a_download_stops_it_without_retrying(server: LoopbackHTTPServer, client: HttpClient) -> None:
    size = 64 << 20
    server.route("/big", Reply(body=generated_body(size), length=size))
    with pytest.raises(FetchError, match="larger than the limit"):
        fetch_bytes(Resource(source=server.url("/big")), client, limit=2 << 20)
    time.sleep(0.3)  # give a wrongly retrying read-ahead thread the time to ask again
    assert server.count("/big") == 1


def test_a_failed_fetch_leaves_an_existing_file_untouched(
    server: LoopbackHTTPServer, client: HttpClient, tmp_path: Path
) -> None:
    server.route("/f", Reply(body=b"new contents"))
    target = tmp_path / "motd"
    target.write_bytes(b"old contents")
    bad = Resource(source=server.url("/f"), verification=Verification(sha("sha512", b"other")))
    with pytest.raises(FetchError, match="hash mismatch"):
        fetch_to_path(bad, target, client)
    assert target.read_bytes() == b"old contents" and [p.name for p in tmp_path.iterdir()] == ["motd"]


# -- the decoder that writes files accepts exactly what validation accepts ----------

_DATA_URL_ALPHABET = "ABCDEFabcdef0123456789+/=%,;:aZ -_.!~*'()?@&$\"\n\t\u00e9"


def _data_urls() -> st.SearchStrategy[str]:
    encoded = st.binary(max_size=64).flatmap(lambda data: st.sampled_from([
        "data:;base64," + base64.b64encode(data).decode(),
        "data:," + urllib.parse.quote(data, safe=""),
        "data:text/plain;charset=utf-8," + urllib.parse.quote(data, safe="/:=@,;+!*'()~-._"),
        "data:application/octet-stream;base64," + base64.b64encode(data).decode().rstrip("="),
    ]))
    texts = st.text(alphabet=_DATA_URL_ALPHABET, max_size=24)
    return st.one_of(
        encoded,
        texts.map(lambda t: "data:;base64," + t),
        texts.map(lambda t: "data:," + t),
        texts.map(lambda t: "data:" + t),
        st.tuples(encoded, st.integers(0, 80), texts).map(  # a valid URL with text spliced in
            lambda x: x[0][:x[1]] + x[2] + x[0][x[1]:]),
    )


@given(_data_urls())
def test_validation_accepts_exactly_what_the_file_writer_decodes(url: str) -> None:
    import json

    from provision.config.pipeline import parse_config

    config = {"provision": {"version": "1.0.0"}, "storage": {"files": [{"path": "/f", "contents": {"source": url}}]}}
    parsed = parse_config(json.dumps(config).encode(), "c.json")
    try:
        written: bytes | None = fetch_bytes(Resource(source=url), HttpClient(deadline=1))
    except FetchError:
        written = None
    assert parsed.ok == (written is not None), (url, parsed.diagnostics)
    if written is not None:
        assert parsed.config is not None
        source = parsed.config.storage.files[0].contents.source
        assert source is not None
        from provision.config.checks.dataurl import parse_data_url

        assert parse_data_url(source).data == written
