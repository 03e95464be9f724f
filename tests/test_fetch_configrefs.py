"""Config references (merge/replace) fetched from a loopback server, verified, parsed and merged."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.config.pipeline import ParsedConfig, parse_config
from provision.errors import ConfigError, FetchError
from provision.fetch.configrefs import resolve_references
from provision.fetch.http import HttpClient
from tests.standins.http_server import LoopbackHTTPServer, Reply


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as s:
        yield s


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(sleep=lambda s: None, deadline=5)


def doc(**sections: Any) -> dict[str, Any]:
    provision = sections.pop("provision", {})
    return {"provision": {"version": "1.0.0", **provision}, **sections}


def encode(config: dict[str, Any]) -> bytes:
    return json.dumps(config).encode()


def ref(url: str, data: bytes | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"source": url}
    if data is not None:
        out["verification"] = {"hash": "sha512-" + hashlib.sha512(data).hexdigest()}
    return out


def parsed(config: dict[str, Any]) -> ParsedConfig:
    result = parse_config(encode(config), "user-data")
    assert result.ok, result.diagnostics
    return result


def file_(path: str, text: str) -> dict[str, Any]:
    return {"path": path, "contents": {"source": "data:," + text}}


def serve(server: LoopbackHTTPServer, path: str, config: dict[str, Any]) -> tuple[str, bytes]:
    data = encode(config)
    server.route(path, Reply(body=data))
    return server.url(path), data


def test_merge_references_are_fetched_verified_and_merged_in_order(
    server: LoopbackHTTPServer, client: HttpClient
) -> None:
    url_a, data_a = serve(server, "/a.json", doc(storage={"files": [file_("/etc/motd", "from-a"), file_("/etc/a", "a")]}))
    url_b, data_b = serve(server, "/b.json", doc(storage={"files": [file_("/etc/motd", "from-b")]}))
    root = doc(provision={"config": {"merge": [ref(url_a, data_a), ref(url_b, data_b)]}},
               storage={"files": [file_("/etc/motd", "root"), file_("/etc/root", "r")]})
    result = resolve_references(parsed(root), client)
    files = {f.path: f.contents.source if f.contents else None for f in result.config.storage.files}
    assert files == {"/etc/motd": "data:,from-b", "/etc/root": "data:,r", "/etc/a": "data:,a"}
    assert "config" not in result.spec["provision"]  # references are resolved, not fetched again
    assert result.fetched == (url_a, url_b)


def test_replace_discards_the_config_that_names_it(server: LoopbackHTTPServer, client: HttpClient) -> None:
    url, data = serve(server, "/real.json", doc(passwd={"users": [{"name": "real"}]}))
    root = doc(provision={"config": {"replace": ref(url, data)}}, passwd={"users": [{"name": "stub"}]})
    result = resolve_references(parsed(root), client)
    assert [u.name for u in result.config.passwd.users] == ["real"]


def test_references_nest_depth_first(server: LoopbackHTTPServer, client: HttpClient) -> None:
    leaf_url, _ = serve(server, "/leaf.json", doc(passwd={"users": [{"name": "leaf"}]}))
    mid_url, _ = serve(server, "/mid.json", doc(provision={"config": {"merge": [ref(leaf_url)]}},
                                                passwd={"users": [{"name": "mid"}]}))
    last_url, _ = serve(server, "/last.json", doc(passwd={"users": [{"name": "last"}]}))
    root = doc(provision={"config": {"merge": [ref(mid_url), ref(last_url)]}})
    result = resolve_references(parsed(root), client)
    assert [u.name for u in result.config.passwd.users] == ["mid", "leaf", "last"]
    assert result.fetched == (mid_url, leaf_url, last_url)


def test_a_hash_mismatch_fails_the_whole_resolution(server: LoopbackHTTPServer, client: HttpClient) -> None:
    url, _ = serve(server, "/a.json", doc(passwd={"users": [{"name": "tampered"}]}))
    root = doc(provision={"config": {"merge": [ref(url, b"what we expected")]}})
    with pytest.raises(FetchError, match="sha512 hash mismatch"):
        resolve_references(parsed(root), client)


def test_cycles_are_detected(server: LoopbackHTTPServer, client: HttpClient) -> None:
    url_a, url_b = server.url("/a.json"), server.url("/b.json")
    server.route("/a.json", Reply(body=encode(doc(provision={"config": {"merge": [ref(url_b)]}}))))
    server.route("/b.json", Reply(body=encode(doc(provision={"config": {"merge": [ref(url_a)]}}))))
    with pytest.raises(FetchError, match=r"config reference cycle: .*/a\.json -> .*/b\.json -> .*/a\.json"):
        resolve_references(parsed(doc(provision={"config": {"merge": [ref(url_a)]}})), client)


def test_the_same_config_twice_is_not_a_cycle(server: LoopbackHTTPServer, client: HttpClient) -> None:
    url, _ = serve(server, "/common.json", doc(passwd={"users": [{"name": "common"}]}))
    root = doc(provision={"config": {"merge": [ref(url), ref(url)]}})
    assert [u.name for u in resolve_references(parsed(root), client).config.passwd.users] == ["common"]


def test_depth_is_limited(server: LoopbackHTTPServer, client: HttpClient) -> None:
    for i in range(5):
        serve(server, f"/c{i}.json", doc(provision={"config": {"merge": [ref(server.url(f"/c{i + 1}.json"))]}}))
    serve(server, "/c5.json", doc())
    root = doc(provision={"config": {"merge": [ref(server.url("/c0.json"))]}})
    assert resolve_references(parsed(root), client, max_depth=6).fetched[-1].endswith("/c5.json")
    with pytest.raises(FetchError, match="nest deeper than 3 levels"):
        resolve_references(parsed(root), client, max_depth=3)


def test_an_invalid_referenced_config_is_a_config_error(server: LoopbackHTTPServer, client: HttpClient) -> None:
    url, _ = serve(server, "/bad.json", {"provision": {"version": "1.0.0"}, "storage": {"files": "nope"}})
    with pytest.raises(ConfigError) as info:
        resolve_references(parsed(doc(provision={"config": {"merge": [ref(url)]}})), client)
    assert any((d.file or "").endswith("/bad.json") for d in info.value.diagnostics)


def test_a_missing_reference_is_an_error(server: LoopbackHTTPServer, client: HttpClient) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        resolve_references(parsed(doc(provision={"config": {"merge": [ref(server.url("/gone"))]}})), client)


def test_referenced_ignition_configs_are_accepted(server: LoopbackHTTPServer, client: HttpClient) -> None:
    pytest.importorskip("provision.importers.ignition", reason="the Ignition importer is not built yet")
    ignition = {"ignition": {"version": "3.3.0"}, "passwd": {"users": [{"name": "from-ignition"}]}}
    url, _ = serve(server, "/ign.json", ignition)
    result = resolve_references(parsed(doc(provision={"config": {"merge": [ref(url)]}})), client)
    assert [u.name for u in result.config.passwd.users] == ["from-ignition"]


def test_timeouts_from_the_config_apply_to_later_fetches(server: LoopbackHTTPServer, client: HttpClient) -> None:
    body = encode(doc(passwd={"users": [{"name": "late"}]}))
    server.route("/slow.json", Reply(delay=1.5, body=body), Reply(body=body))
    root = doc(provision={"timeouts": {"httpResponseHeaders": 1}, "config": {"merge": [ref(server.url("/slow.json"))]}})
    result = resolve_references(parsed(root), client)
    assert [u.name for u in result.config.passwd.users] == ["late"]
    assert server.count("/slow.json") == 2  # the 1 s header timeout from the config cut the first try short
    assert result.client.settings.response_header_timeout == 1


def test_a_merged_config_without_timeouts_keeps_its_parents(server: LoopbackHTTPServer, client: HttpClient) -> None:
    """As Ignition (RenderConfig merges before updating the fetcher): the parent's 1 s still holds below."""
    late = encode(doc(passwd={"users": [{"name": "late"}]}))
    server.route("/slow.json", Reply(delay=1.5, body=late), Reply(body=late))
    child_url, child = serve(server, "/child.json", doc(provision={"config": {"merge": [ref(server.url("/slow.json"))]}}))
    root = doc(provision={"timeouts": {"httpResponseHeaders": 1}, "config": {"merge": [ref(child_url, child)]}})
    result = resolve_references(parsed(root), client)
    assert [u.name for u in result.config.passwd.users] == ["late"]
    assert server.count("/slow.json") == 2  # the parent's 1 s header timeout cut the grandchild's first try short


def test_ca_certificates_from_the_config_are_trusted(tmp_path: Path, client: HttpClient) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    ca = {"source": "data:;base64," + base64.b64encode(cert.read_bytes()).decode()}
    with LoopbackHTTPServer(tls=(str(cert), str(key))) as tls_server:
        url, _ = serve(tls_server, "/child.json", doc(passwd={"users": [{"name": "over-tls"}]}))
        without = doc(provision={"config": {"merge": [ref(url)]}})
        with pytest.raises(FetchError, match="certificate verification failed"):
            resolve_references(parsed(without), client)
        with_ca = doc(provision={"security": {"tls": {"certificateAuthorities": [ca]}},
                                 "config": {"merge": [ref(url)]}})
        result = resolve_references(parsed(with_ca), client)
    assert [u.name for u in result.config.passwd.users] == ["over-tls"]


def test_no_references_returns_the_config_unchanged(client: HttpClient) -> None:
    root = doc(storage={"files": [file_("/etc/x", "x")]})
    result = resolve_references(parsed(root), client)
    assert result.spec == parsed(root).spec and result.fetched == ()


def test_client_for_config_maps_timeouts_and_proxy() -> None:
    from provision.config.build import build_config
    from provision.fetch.settings import client_for_config

    config = build_config(doc(provision={
        "timeouts": {"httpResponseHeaders": 3, "httpTotal": 30},
        "proxy": {"httpProxy": "http://proxy:3128", "noProxy": ["internal"]},
    }))
    settings = client_for_config(config, HttpClient(deadline=60)).settings
    assert (settings.response_header_timeout, settings.total_timeout, settings.deadline) == (3, 30, 60)
    assert settings.proxies.for_url("http://example.com/") == {"http": "http://proxy:3128"}
    assert settings.proxies.for_url("http://internal/") == {}
    defaults = client_for_config(build_config(doc())).settings
    assert (defaults.response_header_timeout, defaults.total_timeout) == (10, None)
