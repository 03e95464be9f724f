"""Fetching waits like Ignition on bare metal: a config server that is not up yet,
or answers 503 for a while, is retried with backoff until the config arrives,
within provision.fetch.wait= (default 120 s; `infinity` for no limit)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from provision.errors import FetchError, UsageError
from provision.platforms.acquire import acquire_config
from provision.platforms.cmdline import parse_cmdline
from provision.platforms.settings import DEFAULT_FETCH_TIMEOUT, Settings
from tests.standins.http_server import LoopbackHTTPServer, Reply

CONFIG = b'{"provision": {"version": "1.0.0"}}'


def settings(tmp_path: Path, cmdline: str) -> Settings:
    return Settings.load(sys_root=str(tmp_path), cmdline=cmdline, run_dir=str(tmp_path / "run"),
                         environ={})


def test_fetch_wait_parameter() -> None:
    assert parse_cmdline("provision.fetch.wait=300").fetch_timeout == 300
    assert parse_cmdline("provision.fetch.wait=infinity").fetch_unlimited
    # the newer name wins over the older spelling whatever the order
    assert parse_cmdline("provision.fetch.wait=30 provision.fetch.timeout=5").fetch_timeout == 30


def test_fetch_wait_in_settings(tmp_path: Path) -> None:
    assert settings(tmp_path, "").fetch_timeout == DEFAULT_FETCH_TIMEOUT == 120
    assert settings(tmp_path, "provision.fetch.wait=infinity").fetch_timeout is None
    for bad in ("soon", "-1", "0", "nan"):
        with pytest.raises(UsageError, match=r"provision\.fetch\.wait"):
            settings(tmp_path, f"provision.fetch.wait={bad}")


def test_503s_first_then_the_config(tmp_path: Path) -> None:
    with LoopbackHTTPServer() as server:
        server.route("/node.ign", Reply(503), Reply(503), Reply(503), Reply(body=CONFIG))
        outcome = acquire_config(settings(
            tmp_path, f"ignition.config.url={server.url('/node.ign')} provision.fetch.wait=60"))
        assert outcome.data == CONFIG
        assert server.count("/node.ign") == 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _LateServer:
    """Nothing listens on the port (connection refused, as before DHCP) until ``after`` s."""

    def __init__(self, after: float) -> None:
        self.port = _free_port()
        self.after = after
        self.started_at: float | None = None
        self._httpd: ThreadingHTTPServer | None = None

    def _run(self) -> None:
        time.sleep(self.after)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(CONFIG)))
                self.end_headers()
                self.wfile.write(CONFIG)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.started_at = time.monotonic()
        self._httpd.serve_forever(0.05)

    def __enter__(self) -> _LateServer:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        while self._httpd is None and self.started_at is None:
            time.sleep(0.05)
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.mark.parametrize("wait", ["60", "infinity"])
def test_a_config_server_that_comes_up_late_is_waited_for(tmp_path: Path, wait: str) -> None:
    started = time.monotonic()
    with _LateServer(after=2.5) as late:
        outcome = acquire_config(settings(
            tmp_path, f"provision.config.url=http://127.0.0.1:{late.port}/cfg "
                      f"provision.fetch.wait={wait}"))
        assert outcome.data == CONFIG
        assert late.started_at is not None and late.started_at - started >= 2.5


def test_the_wait_is_bounded_and_the_message_says_how_to_change_it(tmp_path: Path) -> None:
    with LoopbackHTTPServer() as server:
        server.route("/node.ign", Reply(503))
        started = time.monotonic()
        with pytest.raises(FetchError) as failure:
            acquire_config(settings(
                tmp_path, f"ignition.config.url={server.url('/node.ign')} provision.fetch.wait=2"))
        elapsed = time.monotonic() - started
    message = str(failure.value)
    assert "HTTP 503" in message and "provision.fetch.wait=" in message and "2 s" in message
    assert 1.0 <= elapsed < 6
    assert server.count("/node.ign") >= 3  # it did retry, with backoff
