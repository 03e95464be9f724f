"""The one HTTP client against a real loopback server: retries, deadlines, faults, TLS, proxies."""

from __future__ import annotations

import email.utils
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provision import __version__
from provision.errors import FetchError
from provision.fetch.http import (
    HttpClient,
    HttpStatusError,
    NotFoundError,
    ProxySettings,
    redact_url,
)
from tests.standins.http_server import LoopbackHTTPServer, Reply


class FakeTime:
    """A clock that only moves when the client sleeps: backoff is checked exactly, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as s:
        yield s


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def client(fake: FakeTime, **kw: object) -> HttpClient:
    return HttpClient(clock=fake.clock, sleep=fake.sleep, jitter=0.0, **kw)


# -- retries and backoff -------------------------------------------------------


def test_5xx_is_retried_with_doubling_backoff_then_succeeds(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(500), Reply(503), Reply(502), Reply(body=b"config"))
    response = client(fake).get(server.url("/ud"))
    assert response.status == 200 and response.body == b"config" and response.has_data
    assert server.count("/ud") == 4
    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.8])


def test_backoff_is_capped_at_five_seconds(fake: FakeTime) -> None:
    c = client(fake)
    assert [c.backoff_delay(n) for n in range(1, 9)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    )


def test_jitter_stays_within_ten_percent() -> None:
    c = HttpClient(rand=lambda: 1.0)
    assert c.backoff_delay(1) == pytest.approx(0.22)
    c = HttpClient(rand=lambda: 0.0)
    assert c.backoff_delay(6) == pytest.approx(4.5)


def test_retry_after_seconds_is_honoured(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(503, retry_after="7"), Reply(body=b"ok"))
    assert client(fake).get(server.url("/ud")).body == b"ok"
    assert fake.sleeps == [7.0]


def test_retry_after_http_date_is_honoured(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    now = 1_800_000_000.0
    server.route("/ud", Reply(503, retry_after=email.utils.formatdate(now + 12, usegmt=True)), Reply(body=b"ok"))
    assert client(fake, wall_clock=lambda: now).get(server.url("/ud")).body == b"ok"
    assert fake.sleeps == [12.0]


def test_retry_after_beyond_the_deadline_fails_at_once(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(503, retry_after="600"))
    with pytest.raises(FetchError, match=r"asked to retry after 600 s.*HTTP 503"):
        client(fake, deadline=30).get(server.url("/ud"))
    assert server.count("/ud") == 1 and fake.sleeps == []


def test_deadline_stops_retrying_with_a_clear_error(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(503))
    with pytest.raises(FetchError) as info:
        client(fake, deadline=10).get(server.url("/ud"))
    message = str(info.value)
    assert "gave up after 6 attempts" in message and "time limit 10 s" in message
    assert "last error: HTTP 503 Service Unavailable" in message
    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2])  # the next 5 s wait would pass 10 s
    assert sum(fake.sleeps) <= 10


def test_deadline_holds_in_real_time(server: LoopbackHTTPServer) -> None:
    server.route("/ud", Reply(503))
    started = time.monotonic()
    with pytest.raises(FetchError, match="time limit 1 s"):
        HttpClient(deadline=1.0, backoff_start=0.05).get(server.url("/ud"))
    assert time.monotonic() - started < 1.5
    assert server.count("/ud") >= 3


def test_extra_retry_statuses_are_per_call_or_per_client(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/a", Reply(429), Reply(body=b"a"))
    server.route("/b", Reply(410), Reply(body=b"b"))
    server.route("/c", Reply(429))
    assert client(fake).get(server.url("/a"), retry_statuses=frozenset({429})).body == b"a"
    assert client(fake, retry_statuses={410}).get(server.url("/b")).body == b"b"
    with pytest.raises(HttpStatusError) as info:
        client(fake).get(server.url("/c"))
    assert info.value.status == 429 and server.count("/c") == 1


def test_connection_refused_is_retried_until_the_deadline(fake: FakeTime) -> None:
    with LoopbackHTTPServer() as dead:
        url = dead.url("/ud")
    with pytest.raises(FetchError, match="connection refused"):
        client(fake, deadline=3).get(url)
    assert len(fake.sleeps) >= 3


# -- status handling -----------------------------------------------------------


def test_404_is_a_distinct_not_found_result(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    response = client(fake).get(server.url("/missing"))
    assert response.status == 404 and not response.found and not response.has_data
    assert server.count("/missing") == 1 and fake.sleeps == []
    with pytest.raises(NotFoundError, match=r"/missing: HTTP 404"):
        client(fake).get(server.url("/missing"), not_found_ok=False)


@pytest.mark.parametrize("reply", [Reply(204), Reply(200, body=b"")])
def test_204_or_an_empty_body_means_no_data(server: LoopbackHTTPServer, fake: FakeTime, reply: Reply) -> None:
    server.route("/ud", reply)
    response = client(fake).get(server.url("/ud"))
    assert response.found and not response.has_data


def test_other_4xx_fails_at_once_naming_a_redacted_url(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(403))
    url = f"http://admin:hunter2@127.0.0.1:{server.port}/ud?token=s3cr3t&x=1"
    with pytest.raises(HttpStatusError) as info:
        client(fake).get(url)
    message = str(info.value)
    assert info.value.status == 403 and "HTTP 403 Forbidden" in message
    assert "/ud?token=***&x=***" in message and "admin:***@" in message
    assert "hunter2" not in message and "s3cr3t" not in message
    assert server.count("/ud") == 1


def test_put_sends_body_and_headers_for_token_endpoints(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/latest/api/token", Reply(body=b"TOKEN"))
    response = client(fake).put(
        server.url("/latest/api/token"), {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
    )
    assert response.body == b"TOKEN"
    [request] = server.requests_for("/latest/api/token")
    assert request.method == "PUT" and request.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "21600"


def test_default_and_caller_headers_are_sent(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(body=b"x"))
    client(fake).get(server.url("/ud"), {"Metadata-Flavor": "Google"})
    [request] = server.requests_for("/ud")
    assert request.headers["User-Agent"] == f"provision/{__version__}"
    assert request.headers["Accept-Encoding"] == "identity"
    assert request.headers["Metadata-Flavor"] == "Google"


def test_response_headers_are_available_to_callers(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(body=b"x", headers={"Metadata-Flavor": "Google"}))
    assert client(fake).get(server.url("/ud")).headers["metadata-flavor"] == "Google"


def test_limit_refuses_an_oversized_body(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(body=b"x" * 5000))
    with pytest.raises(FetchError, match="larger than 4096 bytes"):
        client(fake).get(server.url("/ud"), limit=4096)


# -- slow and broken servers ----------------------------------------------------


def test_slow_response_headers_time_out_and_are_retried(server: LoopbackHTTPServer) -> None:
    server.route("/ud", Reply(delay=1.0, body=b"late"), Reply(body=b"on time"))
    response = HttpClient(response_header_timeout=0.3, deadline=5).get(server.url("/ud"))
    assert response.body == b"on time" and server.count("/ud") == 2


def test_always_slow_server_fails_naming_the_header_timeout(server: LoopbackHTTPServer) -> None:
    server.route("/ud", Reply(delay=2.0, body=b"late"))
    with pytest.raises(FetchError, match=r"no response within 0\.3 s"):
        HttpClient(response_header_timeout=0.3, deadline=1.0, backoff_start=0.05).get(server.url("/ud"))


def test_dropped_connection_is_retried(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(drop=True), Reply(body=b"after drop"))
    assert client(fake).get(server.url("/ud")).body == b"after drop"
    assert server.count("/ud") == 2


def test_always_dropped_connection_fails_clearly(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(drop=True))
    with pytest.raises(FetchError, match=r"gave up after \d+ attempts.*connection"):
        client(fake, deadline=2).get(server.url("/ud"))


def test_truncated_body_is_fetched_again(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    body = bytes(range(256)) * 40
    server.route("/ud", Reply(body=body, truncate_at=1000), Reply(body=body))
    assert client(fake).get(server.url("/ud")).body == body
    assert server.count("/ud") == 2


def test_always_truncated_body_fails_clearly(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/ud", Reply(body=b"x" * 10_000, truncate_at=100))
    with pytest.raises(FetchError, match="closed before the whole body arrived"):
        client(fake, deadline=2).get(server.url("/ud"))


# -- streamed bodies -------------------------------------------------------------


def test_streamed_body_broken_off_is_resumed_with_range(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    body = bytes(range(256)) * 4000
    reply = Reply(body=body, ranges=True, etag='"v1"')
    server.route("/f", Reply(body=body, ranges=True, etag='"v1"', truncate_at=300_000), reply)
    with client(fake).get(server.url("/f"), stream=True) as response:
        got = b"".join(response.iter_chunks(65536))
    assert got == body
    first, second = server.requests_for("/f")
    assert "Range" not in first.headers
    assert second.headers["Range"].startswith("bytes=") and second.headers["If-Range"] == '"v1"'
    assert int(second.headers["Range"][6:-1]) > 0


def test_streamed_body_without_range_support_is_reread_and_skipped(
    server: LoopbackHTTPServer, fake: FakeTime
) -> None:
    body = bytes(range(256)) * 4000
    server.route("/f", Reply(body=body, truncate_at=500_000), Reply(body=body))
    with client(fake).get(server.url("/f"), stream=True) as response:
        got = b"".join(response.iter_chunks(65536))
    assert got == body
    assert [("Range" in r.headers) for r in server.requests_for("/f")] == [False, False]


def test_streamed_body_that_changes_between_attempts_fails(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/f", Reply(body=b"a" * 100_000, etag='"v1"', truncate_at=50_000), Reply(body=b"b" * 100_000, etag='"v2"'))
    with client(fake).get(server.url("/f"), stream=True) as response, pytest.raises(FetchError, match="changed"):
        b"".join(response.iter_chunks(10_000))


def test_streamed_body_always_broken_off_fails_naming_the_progress(
    server: LoopbackHTTPServer, fake: FakeTime
) -> None:
    server.route("/f", Reply(body=b"x" * 1000, truncate_at=100))
    with client(fake, deadline=2).get(server.url("/f"), stream=True) as response, pytest.raises(FetchError) as info:
        b"".join(response.iter_chunks(50))
    assert "broke off after 100 of 1000 bytes" in str(info.value)


def test_total_timeout_bounds_a_streamed_body(server: LoopbackHTTPServer) -> None:
    def slow() -> Iterator[bytes]:
        for _ in range(20):
            time.sleep(0.1)
            yield b"x" * 100

    server.route("/f", Reply(body=slow, length=2000))
    with HttpClient(total_timeout=0.5).get(server.url("/f"), stream=True) as response, pytest.raises(
        FetchError, match=r"0\.5 s time limit"
    ):
        for _ in response.iter_chunks(100):
            pass


# -- proxies, TLS, secrets in logs -----------------------------------------------------


def test_proxy_settings_choose_per_url() -> None:
    proxies = ProxySettings(http="http://proxy:3128", https="http://proxy:3129",
                            no_proxy=(".internal", "10.0.0.0/8", "metadata"))
    assert proxies.for_url("http://example.com/x") == {"http": "http://proxy:3128"}
    assert proxies.for_url("https://example.com/x") == {"https": "http://proxy:3129"}
    assert proxies.for_url("http://a.b.internal/x") == {}
    assert proxies.for_url("http://10.1.2.3/x") == {}
    assert proxies.for_url("http://metadata/x") == {}
    assert ProxySettings().for_url("http://example.com/") == {}


def test_http_requests_go_through_the_configured_proxy(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    # The stand-in plays the proxy: it receives the absolute URL and answers for it,
    # so nothing is sent to config.example.invalid.
    server.route("http://config.example.invalid/ud", Reply(body=b"via proxy"))
    c = client(fake, proxies={"http": server.base_url})
    assert c.get("http://config.example.invalid/ud").body == b"via proxy"
    assert server.count("http://config.example.invalid/ud") == 1


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def test_https_needs_the_extra_ca_and_works_with_it(tmp_path: Path, fake: FakeTime) -> None:
    cert, key = _self_signed(tmp_path)
    with LoopbackHTTPServer(tls=(cert, key)) as tls_server:
        tls_server.route("/ud", Reply(body=b"secure"))
        with pytest.raises(FetchError, match="TLS certificate verification failed"):
            client(fake).get(tls_server.url("/ud"))
        assert fake.sleeps == []  # certificate errors are not retried
        assert client(fake, ca_bundle_paths=[cert]).get(tls_server.url("/ud")).body == b"secure"
        pem = Path(cert).read_bytes()
        with client(fake, ca_certificates=[pem]) as c:
            assert c.get(tls_server.url("/ud")).body == b"secure"


def test_logs_hold_no_bodies_query_values_or_header_values(
    server: LoopbackHTTPServer, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/ud", Reply(503), Reply(body=b"BODY-SECRET"))
    caplog.set_level(logging.DEBUG)
    c = client(fake)
    c.get(server.url("/ud?sig=QUERY-SECRET"), {"Authorization": "Bearer HEADER-SECRET"})
    text = caplog.text
    assert "retrying" in text
    for secret in ("BODY-SECRET", "QUERY-SECRET", "HEADER-SECRET"):
        assert secret not in text


@given(
    user=st.text("abcdefgh", min_size=1, max_size=6),
    password=st.text("PQRSTUVWXYZ0123456789", min_size=4, max_size=12),
    value=st.text("PQRSTUVWXYZ0123456789", min_size=4, max_size=12),
)
def test_redact_url_hides_passwords_and_query_values(user: str, password: str, value: str) -> None:
    redacted = redact_url(f"https://{user}:{password}@host.example/p/a?k={value}&k2={value}#frag")
    assert password not in redacted and value not in redacted
    assert redacted == f"https://{user}:***@host.example/p/a?k=***&k2=***"


def test_redact_url_never_shows_data_urls() -> None:
    assert redact_url("data:,secret") == "data: URL"


@pytest.mark.skipif(os.geteuid() != 0, reason="binding a source port below 1024 needs root")
def test_privileged_source_port_for_services_that_demand_it(server: LoopbackHTTPServer, fake: FakeTime) -> None:
    server.route("/user_data/cloud-init", Reply(503), Reply(body=b"scaleway"))
    c = client(fake, privileged_source_port=True)
    assert c.get(server.url("/user_data/cloud-init")).body == b"scaleway"
    ports = [r.client_port for r in server.requests_for("/user_data/cloud-init")]
    assert len(ports) == 2 and all(p < 1024 for p in ports)
    c.close()
    client(fake).get(server.url("/user_data/cloud-init"))
    assert server.requests[-1].client_port >= 1024


@pytest.mark.parametrize(("url", "message"), [
    ("http://", "invalid URL"),
    ("127.0.0.1:80/x", "invalid URL|unsupported URL scheme"),
    ("gopher://127.0.0.1/x", "unsupported URL scheme"),
])
def test_malformed_urls_fail_at_once(url: str, message: str, fake: FakeTime) -> None:
    with pytest.raises(FetchError, match=message):
        client(fake).get(url)
    assert fake.sleeps == []


# -- redirects: the caller's headers stay with their origin ---------------------------

_SECRET_HEADERS = {
    "Authorization": "Bearer b34r3r",
    "X-aws-ec2-metadata-token": "1mdsv2-t0k3n",  # AWS IMDSv2
    "X-Custom-Token": "c0nf1g-h34d3r",  # a config's httpHeaders
    "Cookie": "session=c00k13",
}


@pytest.mark.parametrize("status", [302, 307])
def test_headers_are_not_forwarded_to_another_origin(status: int) -> None:
    """Redirects to another host (127.0.0.2) or another port drop every header the caller gave."""
    with LoopbackHTTPServer() as origin, LoopbackHTTPServer(host="127.0.0.2") as other_host, \
            LoopbackHTTPServer() as other_port:
        for server in (origin, other_host, other_port):
            server.route("/final", Reply(body=b"ok"))
        origin.route("/same", Reply(status, headers={"Location": origin.url("/final")}))
        origin.route("/host", Reply(status, headers={"Location": other_host.url("/final")}))
        origin.route("/port", Reply(status, headers={"Location": other_port.url("/final")}))
        http = HttpClient(deadline=5)
        for path in ("/same", "/host", "/port"):
            assert http.get(origin.url(path), _SECRET_HEADERS).body == b"ok"
    [kept] = origin.requests_for("/final")
    for name, value in _SECRET_HEADERS.items():
        if name != "Cookie":  # requests re-sends only its cookie jar's cookies, whatever the origin
            assert kept.headers.get(name) == value  # same origin: kept
    for server in (other_host, other_port):
        [moved] = server.requests_for("/final")
        assert moved.headers.get("User-Agent", "").startswith("provision/")
        sent = " ".join(f"{k}: {v}" for k, v in moved.headers.items())
        for name, value in _SECRET_HEADERS.items():
            assert value not in sent, f"{name} was forwarded to {server.base_url}"


def test_a_configs_http_headers_stay_with_their_origin() -> None:
    from provision.config.model import HTTPHeader, Resource
    from provision.fetch.resource import fetch_bytes

    with LoopbackHTTPServer() as origin, LoopbackHTTPServer(host="127.0.0.2") as elsewhere:
        elsewhere.route("/f", Reply(body=b"contents"))
        origin.route("/f", Reply(302, headers={"Location": elsewhere.url("/f")}))
        resource = Resource(source=origin.url("/f"),
                            http_headers=(HTTPHeader(name="X-Api-Key", value="k3y-for-0r1g1n"),))
        assert fetch_bytes(resource, HttpClient(deadline=5)) == b"contents"
    assert origin.requests_for("/f")[0].headers.get("X-Api-Key") == "k3y-for-0r1g1n"
    assert "X-Api-Key" not in elsewhere.requests_for("/f")[0].headers


# -- every stated time limit bounds the whole transfer ---------------------------------
# Socket timeouts bound each wait for data; a server that sends a byte now and
# then never trips them. These servers trickle or stall; each test uses small
# limits and checks the time the client really took.


def _fails_within(seconds: float, fetch: object, match: str) -> str:
    started = time.monotonic()
    with pytest.raises(FetchError, match=match) as info:
        fetch()  # type: ignore[operator]
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f} s: {info.value}"
    return str(info.value)


def test_the_deadline_bounds_a_trickled_body(server: LoopbackHTTPServer) -> None:
    """provision.fetch.timeout (the deadline) bounds a whole small body read (user data)."""
    server.route("/ud", Reply(body=b"x" * 60, trickle=0.1))  # 6 s of body
    http = HttpClient(deadline=1.0, response_header_timeout=0.5)
    _fails_within(2.0, lambda: http.get(server.url("/ud")), r"not finished within the 1 s time limit")


def test_the_header_timeout_bounds_trickled_headers(server: LoopbackHTTPServer) -> None:
    """httpResponseHeaders bounds the whole wait for the headers, not each byte of them."""
    server.route("/ud", Reply(body=b"late", header_trickle=0.05))  # about 2 s of headers
    http = HttpClient(deadline=1.5, response_header_timeout=0.4, backoff_start=0.05)
    message = _fails_within(2.5, lambda: http.get(server.url("/ud")), r"no response within 0\.4 s")
    assert "time limit 1.5 s" in message


def test_http_total_bounds_a_trickled_streamed_body(server: LoopbackHTTPServer) -> None:
    server.route("/f", Reply(body=b"y" * 100, trickle=0.05))  # 5 s of body

    def fetch() -> None:
        with HttpClient(total_timeout=1.0).get(server.url("/f"), stream=True) as response:
            for _ in response.iter_chunks():
                pass

    _fails_within(2.0, fetch, r"not finished within the 1 s time limit \(timeouts\.httpTotal\)")


def test_http_total_from_a_config_bounds_a_server_that_stalls_after_headers(
    server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    """The config's timeouts.httpTotal, through the resource fetcher, against a stalled body."""
    from provision.config.build import build_config
    from provision.config.model import Resource
    from provision.fetch.resource import fetch_to_path
    from provision.fetch.settings import client_for_config

    server.route("/f", Reply(body=b"never", body_delay=30))
    config = build_config({"provision": {"version": "1.0.0", "timeouts": {"httpTotal": 1}}})
    http = client_for_config(config)
    assert http.settings.response_header_timeout == 10  # the per-wait timeout alone would wait 10 s
    _fails_within(2.0, lambda: fetch_to_path(Resource(source=server.url("/f")), tmp_path / "f", http),
                  r"1 s time limit \(timeouts\.httpTotal\)")


def test_a_body_cut_by_the_time_limit_is_never_taken_for_the_whole_body(server: LoopbackHTTPServer) -> None:
    """A body that ends when the connection closes (no length, not chunked) must not look complete."""
    import socket as socket_module
    import threading

    listener = socket_module.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        try:
            for _ in range(40):
                conn.sendall(b"z")
                time.sleep(0.05)
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        http = HttpClient(deadline=0.8)
        _fails_within(1.6, lambda: http.get(f"http://127.0.0.1:{port}/ud"), r"0\.8 s time limit")
    finally:
        thread.join(5)
        listener.close()


def test_first_hop_only_headers_follow_no_redirect() -> None:
    """A config's httpHeaders are erased on every redirect, same origin too (Ignition's rule)."""
    with LoopbackHTTPServer() as origin:
        origin.route("/final", Reply(body=b"ok"))
        origin.route("/same", Reply(302, headers={"Location": origin.url("/final")}))
        http = HttpClient(deadline=5)
        got = http.get(origin.url("/same"), {"X-Custom-Token": "c0nf1g-h34d3r"}, headers_first_hop_only=True)
        assert got.body == b"ok"
        streamed = http.get(origin.url("/same"), {"X-Custom-Token": "c0nf1g-h34d3r"}, stream=True,
                            headers_first_hop_only=True)
        with streamed:
            assert b"".join(streamed.iter_chunks(1024)) == b"ok"
    [first, _] = origin.requests_for("/same")
    assert first.headers.get("X-Custom-Token") == "c0nf1g-h34d3r"
    for moved in origin.requests_for("/final"):
        assert moved.headers.get("X-Custom-Token") is None
        assert moved.headers.get("User-Agent", "").startswith("provision/")
