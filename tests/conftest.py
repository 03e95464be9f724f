"""Shared pytest fixtures."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# --- Hypothesis: deterministic unless asked otherwise ------------------------
# A fresh clone (and CI) must pass every time, so examples are derived from
# each test's name (derandomize) and no example database carries failures from
# one run to the next. PROVISION_HYPOTHESIS_EXPLORE=1 explores at random
# locally, with the database, to look for new counterexamples.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(
    "explore" if os.environ.get("PROVISION_HYPOTHESIS_EXPLORE") else "deterministic"
)
# --- end Hypothesis -----------------------------------------------------------

# --- network guard (datasources): tests may only talk to loopback ------------
# A test that sends anything to 169.254.169.254 (or any non-loopback address)
# fails, even if the code under test swallowed the connection error. A test
# that talks to a network namespace it created opts out with the fixture
# `allow_non_loopback`.
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _is_loopback(sock: socket.socket, address: Any) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True
    host = str(address[0]).split("%", 1)[0]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
        return ip.is_loopback or ip.is_unspecified  # 0.0.0.0 and :: reach this host
    except ValueError:
        return False  # a host name: it would be resolved to who knows what


@pytest.fixture(autouse=True)
def _network_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """Yields the list of blocked addresses (a test of the guard itself may clear it)."""
    blocked: list[str] = []
    if "allow_non_loopback" in request.fixturenames:
        yield blocked
        return

    def guard(sock: socket.socket, address: Any) -> None:
        if not _is_loopback(sock, address):
            blocked.append(repr(address))
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} blocked")

    def connect(self: socket.socket, address: Any) -> None:
        guard(self, address)
        _real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(self, address)
        return _real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        guard(self, args[-1])  # (data, address) or (data, flags, address): UDP, e.g. TFTP
        result: int = _real_sendto(self, data, *args)
        return result

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield blocked
    if blocked:
        pytest.fail("test tried to connect to non-loopback addresses: " + ", ".join(blocked))


@pytest.fixture
def allow_non_loopback() -> None:
    """Opt out of the loopback-only network guard (network namespaces the test made)."""
# --- end network guard --------------------------------------------------------

# --- disks: loop-device fixtures (see tests/disk_fixtures.py) -----------------
from disk_fixtures import disk_env, loop_factory  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _no_platform_credentials_between_tests() -> Iterator[None]:
    """acquire_config activates the platform's object-store credentials for the process;
    one test's (pointing at its own, stopped stand-in) must not leak into the next."""
    from provision.fetch import cloudauth

    cloudauth.activate(None)
    yield
    cloudauth.activate(None)
