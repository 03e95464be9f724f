"""tftp:// resources against a loopback TFTP server: options, block sizes, loss, errors."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from provision.config.model import Resource, Verification
from provision.errors import FetchError
from provision.fetch.http import HttpClient
from provision.fetch.resource import fetch_bytes
from provision.fetch.tftp import TftpNotFound, parse_tftp_url, tftp_chunks
from tests.standins.tftp_server import LoopbackTFTPServer

CLIENT = HttpClient(deadline=2)


@pytest.mark.parametrize("size", [0, 100, 1468, 1468 * 3, 200_000])
def test_files_of_any_size_arrive_intact_with_blksize(size: int) -> None:
    data = os.urandom(size)
    with LoopbackTFTPServer(files={"boot/config.ign": data}) as server:
        resource = Resource(source=server.url("boot/config.ign"),
                            verification=Verification("sha512-" + hashlib.sha512(data).hexdigest()))
        assert fetch_bytes(resource, CLIENT) == data
    [request] = server.requests
    assert request.mode == "octet" and request.options == {"blksize": "1468"}


def test_a_plain_rfc1350_server_gets_512_byte_blocks() -> None:
    data = os.urandom(5000)
    with LoopbackTFTPServer(files={"f": data}, ignore_options=True) as server:
        chunks = list(tftp_chunks(server.url("f")))
    assert b"".join(chunks) == data and {len(c) for c in chunks[:-1]} == {512}


def test_refused_options_fall_back_to_a_plain_request() -> None:
    with LoopbackTFTPServer(files={"f": b"abc" * 1000}, refuse_options=True) as server:
        assert b"".join(tftp_chunks(server.url("f"))) == b"abc" * 1000
    assert [r.options for r in server.requests] == [{"blksize": "1468"}, {}]


def test_lost_packets_are_retransmitted() -> None:
    data = os.urandom(1468 * 6)
    with LoopbackTFTPServer(files={"f": data}, drop_blocks={2, 5}) as server:
        assert b"".join(tftp_chunks(server.url("f"), timeout=0.5)) == data
    assert server.retransmissions >= 2


def test_missing_file_is_not_found() -> None:
    with LoopbackTFTPServer() as server, pytest.raises(TftpNotFound, match="file not found"):
        fetch_bytes(Resource(source=server.url("missing")), CLIENT)


def test_silent_server_times_out_at_the_deadline() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        url = f"tftp://127.0.0.1:{sink.getsockname()[1]}/f"
        with pytest.raises(FetchError, match=r"timed out \(no answer\)"):
            list(tftp_chunks(url, timeout=0.1, deadline=0.5))


def test_tftp_urls() -> None:
    assert parse_tftp_url("tftp://host/pxe/config.ign") == ("host", 69, "pxe/config.ign")
    assert parse_tftp_url("tftp://host:6969/a%20b;mode=octet") == ("host", 6969, "a b")
    with pytest.raises(FetchError, match="only octet mode"):
        parse_tftp_url("tftp://host/f;mode=netascii")
    with pytest.raises(FetchError, match="names no file"):
        parse_tftp_url("tftp://host/")


def test_block_numbers_roll_over_past_65535() -> None:
    data = os.urandom(8 * 65540 + 3)  # 65541 blocks of 8 bytes
    with LoopbackTFTPServer(files={"f": data}) as server:
        assert b"".join(tftp_chunks(server.url("f"), blksize=8)) == data
