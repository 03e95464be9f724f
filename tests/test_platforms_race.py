"""A fetch that lost a race stops at its next retry without logging, so no
daemon thread is left writing to a log when the process exits (Python then
aborts with status 134 after the work is done)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from provision.errors import FetchError
from provision.fetch.http import HttpClient
from provision.platforms.race import first_answer
from tests.standins.http_server import LoopbackHTTPServer, Reply


def test_the_loser_stops_retrying_once_the_race_is_decided(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    loser_done = threading.Event()
    outcome: list[BaseException] = []

    with LoopbackHTTPServer() as server:
        server.route("/busy", Reply(503, body=b"busy"))  # retried until the deadline
        client = HttpClient(deadline=30, backoff_start=0.2, backoff_cap=0.2, jitter=0.0)

        def loser() -> bytes:
            try:
                return client.get(server.url("/busy")).body
            except BaseException as exc:
                outcome.append(exc)
                raise
            finally:
                loser_done.set()

        def winner() -> bytes:
            time.sleep(0.3)  # the loser has started retrying by now
            return b"config"

        assert first_answer([loser, winner]) == b"config"
        assert loser_done.wait(5), "the losing fetch went on retrying after the race"
        logged_before = len(caplog.records)
        time.sleep(0.5)
    assert isinstance(outcome[0], FetchError) and "lost its race" in str(outcome[0])
    assert len(caplog.records) == logged_before  # nothing more from the abandoned thread
