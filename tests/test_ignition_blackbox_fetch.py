"""coreos/ignition's TLS, proxy and timeouts blackbox tests, ported as data.

The cases are in tests/data/ignition-blackbox/fetch.yaml. Each config is
validated and applied with ``provision apply --root`` to a fresh directory;
what it fetches comes from loopback stand-ins started here: two HTTPS
servers whose self-signed certificates (the test CAs) are made with openssl
at test time, Ignition's tests/servers HTTP server, a forward proxy that
answers for any URL (and one that answers 503), and servers that are slow,
throttled, or serve configs that merge slow configs. A negative case must
fail in apply and leave the root as it was.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from test_ignition_blackbox import _check, _run, snapshot

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "fetch.yaml").read_text())
PASSWD = "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:CoreOS Admin:/home/core:/bin/bash\n"
GROUP = "root:x:0:root\nwheel:x:10:root,core\ncore:x:500:\n"


def _served_config(path: str, text: str, version: str = "3.0.0") -> bytes:
    """A config writing ``text`` to ``path`` (Ignition's customCAServerFile and friends)."""
    source = "data:," + quote(text)
    return json.dumps({"ignition": {"version": version},
                       "storage": {"files": [{"path": path, "contents": {"source": source}}]}}).encode()


SERVER1_BODY = _served_config("/foo/bar", "example file\n")
SERVER2_BODY = _served_config("/foo/bar2", "example file2\n")
SERVED_CONFIG = _served_config("/foo/bar", "example file\n")  # tests/servers' /config
PROXY_CONFIG = _served_config("/bar/foo", "example file proxy\n", "3.1.0")

Route = Callable[[http.server.BaseHTTPRequestHandler], tuple[int, bytes, dict[str, str]]]


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) is not the stand-in's error to print


class _Server:
    """A threaded loopback HTTP(S) server answering every request with ``route``."""

    def __init__(self, route: Route, tls: tuple[str, str] | None = None) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body, headers = route(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _test_ca(folder: Path, name: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: the server's certificate and its own CA."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def _reply(body: bytes, status: int = 200) -> tuple[int, bytes, dict[str, str]]:
    return status, body, {}


def _has(request: http.server.BaseHTTPRequestHandler, expected: dict[str, str]) -> bool:
    return all(request.headers.get(name) == value for name, value in expected.items())


def _ignition_server(ca1: bytes, bundle: bytes, own_url: Callable[[], str]) -> Route:
    """Ignition's tests/servers HTTP server (port 8080 there): the routes these tests use."""
    def route(request: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        path = request.path
        if path == "/certificates":
            return _reply(ca1)
        if path == "/caBundle":
            return _reply(bundle)
        if path == "/certificates_compressed":
            return _reply(gzip.compress(ca1))
        if path == "/certificates_headers":
            ok = _has(request, {"X-Auth": "r8ewap98gfh4d8", "Keep-Alive": "300"})
            return _reply(ca1, 200 if ok else 400)
        if path == "/certificates_headers_redirect":
            return 302, b"", {"Location": own_url() + "/certificates_headers_redirected"}
        if path == "/certificates_headers_redirected":
            leaked = "X-Auth" in request.headers or "Keep-Alive" in request.headers
            return _reply(ca1, 400 if leaked else 200)
        if path == "/certificates_headers_overwrite":
            ok = _has(request, {"Keep-Alive": "1000", "Accept": "application/json",
                                "Accept-Encoding": "identity, compress", "User-Agent": "MyUA"})
            return _reply(ca1, 200 if ok else 400)
        if path == "/config":
            return _reply(SERVED_CONFIG)
        return _reply(b"not found", 404)
    return route


def _slow(seconds: float, body: Callable[[], bytes] = lambda: b"") -> Route:
    def route(request: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        time.sleep(seconds)
        return _reply(body())
    return route


def _throttled() -> Route:
    """500 until a path is asked again more than 4 s after its last 500 (Ignition's backoff test)."""
    last: dict[str, float] = {}
    lock = threading.Lock()

    def route(request: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        with lock:
            seen = last.get(request.path)
            if seen is not None and time.monotonic() - seen > 4:
                return _reply(b"")
            last[request.path] = time.monotonic()
            return _reply(b"", 500)
    return route


def _merging(source: Callable[[], str], timeouts: dict[str, int] | None) -> Callable[[], bytes]:
    ignition: dict[str, Any] = {"version": "3.0.0", "config": {"merge": [{"source": source()}]}}
    if timeouts:
        ignition["timeouts"] = timeouts
    return lambda: json.dumps({"ignition": ignition}).encode()


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("ca")
    tls1, tls2 = _test_ca(folder, "ca1"), _test_ca(folder, "ca2")
    ca1, ca2 = Path(tls1[0]).read_bytes(), Path(tls2[0]).read_bytes()
    servers: dict[str, _Server] = {}

    def url(name: str) -> Callable[[], str]:
        return lambda: servers[name].url

    servers["https://SERVER1"] = _Server(lambda r: _reply(SERVER1_BODY), tls1)
    servers["https://SERVER2"] = _Server(lambda r: _reply(SERVER2_BODY), tls2)
    servers["http://127.0.0.1:8080"] = _Server(_ignition_server(ca1, ca1 + ca2, url("http://127.0.0.1:8080")))
    servers["http://PROXY"] = _Server(lambda r: _reply(PROXY_CONFIG))
    servers["http://BADPROXY"] = _Server(lambda r: _reply(b"Proxy is unavailable", 503))
    servers["http://SLOW2"] = _Server(_slow(2))
    servers["http://SLOW11"] = _Server(_slow(11))
    servers["http://THROTTLED"] = _Server(_throttled())
    servers["http://SLOWEMPTY"] = _Server(_slow(2, lambda: b'{"ignition": {"version": "3.0.0"}}'))
    servers["http://CHAINCONFIG"] = _Server(lambda r: _reply(_merging(url("http://SLOWEMPTY"), None)()))
    # the slow config merges itself, with timeouts lowered to 1 s
    slow_config: list[bytes] = []
    servers["http://SLOWCONFIG"] = _Server(_slow(2, lambda: slow_config[0]))
    # (at another path: provision refuses a config that merges itself as a cycle, Ignition
    # would fetch it again; the point here is the timeouts)
    slow_config.append(_merging(lambda: servers["http://SLOWCONFIG"].url + "/again",
                                {"httpResponseHeaders": 1, "httpTotal": 1})())
    words = {name: server.url for name, server in servers.items()}
    words["CA1_DATA"] = "data:;base64," + base64.b64encode(ca1).decode()
    words["BUNDLE_DATA"] = "data:;base64," + base64.b64encode(ca1 + ca2).decode()
    words["CA1_SHA512"] = hashlib.sha512(ca1).hexdigest()
    yield words
    for server in servers.values():
        server.stop()


def _config(case: dict[str, Any], words: dict[str, str]) -> str:
    text = json.dumps({**case["config"], "ignition": {"version": case.get("version", "3.0.0"),
                                                      **case["config"].get("ignition", {})}})
    # longest first: http://SLOW2 must not eat the start of another word
    for word in sorted(words, key=len, reverse=True):
        text = text.replace(word, words[word])
    return text


def _expected(node: dict[str, Any]) -> dict[str, Any]:
    bodies = {"SERVER1_BODY": SERVER1_BODY.decode(), "SERVER2_BODY": SERVER2_BODY.decode()}
    return {**node, "contents": bodies.get(node["contents"], node["contents"])} if "contents" in node else node


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_blackbox_fetch_case(case: dict[str, Any], tmp_path: Path, standins: dict[str, str],
                                      capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    if "skip" in case:
        pytest.skip(case["skip"])
    if "known_bug" in case:
        request.applymarker(pytest.mark.xfail(reason=case["known_bug"], strict=True))
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    config = tmp_path / "config.ign"
    config.write_text(_config(case, standins))
    before = snapshot(root)
    validated, output = _run("validate", str(config), capsys=capsys)
    assert validated == 0, output
    applied, output = _run("apply", "--root", str(root), str(config), capsys=capsys)
    if case.get("expect", "ok") != "ok":
        assert applied != 0, output
        assert "Traceback" not in output
        for words in case["error"]:  # it failed for the reason the test is about
            assert words in output, output
        assert snapshot(root) == before, "a failed apply changed the root"
        return
    assert applied == 0, output
    for node in case.get("out", []):
        _check(root, _expected(node))
    for path in case.get("absent", []):
        assert not os.path.lexists(root / path.lstrip("/")), f"{path} exists"
