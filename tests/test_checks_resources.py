"""Semantic checks on resources: URL schemes, data: URLs, hashes, compression,
HTTP headers, required sources; and that messages never quote a source."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from typing import Any
from urllib.parse import quote

import pytest
from checks_fixtures import only
from hypothesis import given
from hypothesis import strategies as st

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.config.checks.dataurl import DataURLError, parse_data_url
from provision.diagnostics import Diagnostic, Severity

CONTENTS = ("storage", "files", 0, "contents")


def check(**sections: Any) -> list[Diagnostic]:
    return run_checks(build_config({"provision": {"version": "1.0.0"}, **sections}))


def check_contents(contents: dict[str, Any]) -> list[Diagnostic]:
    return check(storage={"files": [{"path": "/f", "contents": contents}]})


@pytest.mark.parametrize(
    "source",
    [
        "https://example.com/motd",
        "http://10.0.0.1:8080/a?b=c",
        "tftp://boot.example/cfg",
        "s3://bucket/key/path",
        "s3://bucket/key?versionId=abc",
        "gs://bucket/object",
        "HTTPS://example.com/upper-case-scheme",
        "data:,hello%20world",
        "data:text/plain;charset=utf-8;base64,aGVsbG8=",
        "data:;base64,",
        "data:application/json,%7B%7D",
        "data:,a;b/c?d:e@f&g=h+i$j,k-_.!~*'()",  # every URL character Ignition accepts unencoded
    ],
)
def test_valid_sources(source: str) -> None:
    assert check_contents({"source": source}) == []


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("ftp://example.com/x", "invalid URL scheme ftp:"),
        ("file:///etc/motd", "invalid URL scheme file:"),
        ("/etc/motd", "invalid URL scheme (none)"),
        ("arn:aws:s3:::bucket/key", "invalid URL scheme arn:"),
        ("http:///no-host", "http URL has no host"),
        ("https://[::1/x", "unable to parse URL"),
        ("s3://bucket", "s3 URL has no object key"),
        ("gs://bucket/", "gs URL has no object key"),
        ("s3://bucket/key?versionId=", "versionId"),
        ("data:text/plain", "no ','"),
        ("data:text;base64,aGVsbG8=", "media type"),
        ("data:text/plain;charset,x", "attribute=value"),
        ("data:;base64,aGVsbG8", "not valid base64"),
        ("data:;base64,a GVsbG8=", "not valid base64"),
        ("data:,100%", "percent-encoding"),
        ("data:,%zz", "percent-encoding"),
        (" https://example.com/x", "leading or trailing blanks"),
        ("https://example.com/x\n", "leading or trailing blanks"),
        ("\x01data:,x", "before 'data:'"),
    ],
)
def test_invalid_sources(source: str, text: str) -> None:
    only(check_contents({"source": source}), Severity.ERROR, (*CONTENTS, "source"), text)


def test_a_local_path_gets_a_hint_to_embed_it() -> None:
    diag = only(
        check_contents({"source": "/etc/motd"}), Severity.ERROR, (*CONTENTS, "source"), "scheme"
    )
    assert diag.hint is not None and "data:" in diag.hint


def test_messages_never_quote_the_source() -> None:
    secret = "SECRET-CONTENTS-7f3a"
    sources = [f"data:,{secret}%", f"ftp://user:{secret}@host/x", f"data:;base64,{secret}"]
    for source in sources:
        found = check_contents({"source": source})
        assert found, source
        for diag in found:
            assert secret not in diag.message and secret not in (diag.hint or "")


@pytest.mark.parametrize(
    "source",
    [
        "data:,hello world",
        "data:,a#b",
        "data:,[x]",
        "data:,\u00e4",
        "data:;base64,aGVs\nbG8=",
        "data:;base64,aGVsbG8%3D",
        "DATA:,x",
        "data:;BASE64,aGk=",
        "data:;a=,x",
        "data:text/plain;,x",
    ],
)
def test_data_urls_are_as_strict_as_ignitions(source: str) -> None:
    """ignition-validate rejects each of these too (see test_checks_vs_ignition)."""
    only(
        check_contents({"source": source}),
        Severity.ERROR,
        (*CONTENTS, "source"),
        "invalid data URL",
    )


@given(st.binary(max_size=300), st.booleans())
def test_data_urls_round_trip(data: bytes, as_base64: bool) -> None:
    url = "data:;base64," + base64.b64encode(data).decode() if as_base64 else "data:," + quote(data)
    assert parse_data_url(url).data == data


@given(st.text(max_size=200))
def test_parsing_any_text_either_decodes_or_says_why(text: str) -> None:
    try:
        parse_data_url("data:" + text)
    except DataURLError as exc:
        assert str(exc)


def sha256(data: bytes) -> str:
    return "sha256-" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("sha256", "malformed hash specifier"),
        ("md5-d41d8cd98f00b204e9800998ecf8427e", "unrecognized hash function"),
        ("sha256-abc", "sha256 needs 64 hex digits, got 3"),
        ("sha512-" + "0" * 64, "sha512 needs 128 hex digits, got 64"),
        ("sha256-" + "g" * 64, "must be hexadecimal"),
    ],
)
def test_malformed_hashes(spec: str, text: str) -> None:
    found = check_contents({"source": "https://example.com/x", "verification": {"hash": spec}})
    only(found, Severity.ERROR, (*CONTENTS, "verification", "hash"), text)


def test_well_formed_hashes() -> None:
    for spec in ("sha256-" + "a" * 64, "sha512-" + "0" * 128):
        assert (
            check_contents({"source": "https://example.com/x", "verification": {"hash": spec}})
            == []
        )


def test_an_upper_case_digest_warns() -> None:
    found = check_contents(
        {"source": "https://example.com/x", "verification": {"hash": "sha256-" + "A" * 64}}
    )
    only(found, Severity.WARNING, (*CONTENTS, "verification", "hash"), "lower case")


def test_a_data_url_is_verified_against_its_hash_now() -> None:
    source = "data:,hello"
    assert check_contents({"source": source, "verification": {"hash": sha256(b"hello")}}) == []
    only(
        check_contents({"source": source, "verification": {"hash": sha256(b"hullo")}}),
        Severity.ERROR,
        (*CONTENTS, "verification", "hash"),
        "does not match",
    )


def test_a_gzip_data_url_is_verified_after_decompression() -> None:
    packed = base64.b64encode(gzip.compress(b"payload" * 100)).decode()
    contents = {"source": "data:;base64," + packed, "compression": "gzip"}
    assert check_contents({**contents, "verification": {"hash": sha256(b"payload" * 100)}}) == []
    only(
        check_contents(
            {**contents, "verification": {"hash": sha256(gzip.compress(b"payload" * 100))}}
        ),
        Severity.ERROR,
        (*CONTENTS, "verification", "hash"),
        "does not match",
    )
    only(
        check_contents(
            {
                "source": "data:,plain",
                "compression": "gzip",
                "verification": {"hash": sha256(b"plain")},
            }
        ),
        Severity.ERROR,
        (*CONTENTS, "compression"),
        "not valid gzip",
    )


def test_inline_data_marked_gzip_must_be_gzip() -> None:
    only(
        check_contents({"source": "data:,plain", "compression": "gzip"}),
        Severity.ERROR,
        (*CONTENTS, "compression"),
        "not valid gzip",
    )
    truncated = base64.b64encode(gzip.compress(b"x" * 1000)[:-6]).decode()
    only(
        check_contents({"source": "data:;base64," + truncated, "compression": "gzip"}),
        Severity.ERROR,
        (*CONTENTS, "compression"),
        "not valid gzip",
    )
    two_members = base64.b64encode(gzip.compress(b"a") + gzip.compress(b"b")).decode()
    contents = {"source": "data:;base64," + two_members, "compression": "gzip"}
    assert check_contents({**contents, "verification": {"hash": sha256(b"ab")}}) == []


def test_a_gzip_bomb_is_not_expanded_past_the_limit() -> None:
    from provision.config.checks.inline import MAX_INFLATED

    bomb = gzip.compress(bytes(MAX_INFLATED + 1), compresslevel=9)
    source = "data:;base64," + base64.b64encode(bomb).decode()
    # The hash cannot be settled now: no diagnostic, the fetch at boot verifies it.
    assert (
        check_contents(
            {"source": source, "compression": "gzip", "verification": {"hash": sha256(b"")}}
        )
        == []
    )
    only(
        check_contents({"source": "data:,", "compression": "gzip"}),
        Severity.ERROR,
        (*CONTENTS, "compression"),
        "not valid gzip",
    )


def test_verification_without_a_source_is_an_error() -> None:
    only(
        check_contents({"verification": {"hash": sha256(b"")}}),
        Severity.ERROR,
        (*CONTENTS, "verification", "hash"),
        "source must be specified",
    )


def test_only_gzip_compression() -> None:
    only(
        check_contents({"source": "https://e.example/x", "compression": "xz"}),
        Severity.ERROR,
        (*CONTENTS, "compression"),
        "only gzip",
    )
    assert check_contents({"source": "https://e.example/x", "compression": "gzip"}) == []


@pytest.mark.parametrize("version", ["3.0.0", "3.2.0", "3.6.0"])
def test_ignition_empty_compression_means_none(version: str) -> None:
    """Ignition accepts ``compression: ""`` (no compression), as its LUKS blackbox test writes it."""
    from provision.config.pipeline import parse_config

    storage: dict[str, Any] = {"files": [{"path": "/f", "contents": {"source": "data:,x", "compression": ""}}]}
    if version >= "3.2.0":
        storage["luks"] = [{"name": "v", "device": "/dev/vdb1", "wipeVolume": True,
                            "keyFile": {"source": "data:,k", "compression": ""}}]
    parsed = parse_config(json.dumps({"ignition": {"version": version}, "storage": storage}).encode(), "c.ign")
    assert parsed.config is not None and not [d for d in parsed.diagnostics if d.is_error], parsed.diagnostics
    assert parsed.config.storage.files[0].contents.compression is None
    xz = json.dumps({"ignition": {"version": version},
                     "storage": {"files": [{"path": "/f", "contents": {"source": "data:,x", "compression": "xz"}}]}})
    assert [d for d in parse_config(xz.encode(), "c.ign").diagnostics if d.is_error]


def test_http_headers_only_on_http_sources() -> None:
    headers = [{"name": "Authorization", "value": "Bearer t0ken"}]
    only(
        check_contents({"source": "s3://b/k", "httpHeaders": headers}),
        Severity.ERROR,
        (*CONTENTS, "httpHeaders"),
        "cannot use HTTP headers",
    )
    only(
        check_contents({"httpHeaders": headers}),
        Severity.ERROR,
        (*CONTENTS, "httpHeaders"),
        "need an http or https source",
    )
    assert check_contents({"source": "https://e.example/x", "httpHeaders": headers}) == []


def test_duplicate_header_names_ignore_case() -> None:
    headers = [{"name": "X-Token", "value": "a"}, {"name": "x-token", "value": "b"}]
    only(
        check_contents({"source": "https://e.example/x", "httpHeaders": headers}),
        Severity.ERROR,
        (*CONTENTS, "httpHeaders", 1, "name"),
        "duplicate HTTP header name",
    )


def test_header_injection_is_refused_without_quoting_the_value() -> None:
    headers = [{"name": "X-A", "value": "v\r\nHost: evil"}, {"name": "Bad Name", "value": "v"}]
    found = check_contents({"source": "https://e.example/x", "httpHeaders": headers})
    assert [d.path for d in found] == [
        (*CONTENTS, "httpHeaders", 0, "value"),
        (*CONTENTS, "httpHeaders", 1, "name"),
    ]
    assert all("evil" not in d.message for d in found)


@pytest.mark.parametrize(
    ("sections", "path"),
    [
        (
            {"provision": {"version": "1.0.0", "config": {"merge": [{}]}}},
            ("provision", "config", "merge", 0),
        ),
        (
            {"provision": {"version": "1.0.0", "config": {"replace": {}}}},
            ("provision", "config", "replace"),
        ),
        (
            {
                "provision": {
                    "version": "1.0.0",
                    "security": {"tls": {"certificateAuthorities": [{}]}},
                }
            },
            ("provision", "security", "tls", "certificateAuthorities", 0),
        ),
        ({"containers": {"runtime": "docker", "preload": [{}]}}, ("containers", "preload", 0)),
    ],
)
def test_references_cas_and_preloads_need_a_source(
    sections: dict[str, Any], path: tuple[object, ...]
) -> None:
    found = run_checks(build_config({"provision": {"version": "1.0.0"}, **sections}))
    only(found, Severity.ERROR, path, "source is required")


def test_resources_everywhere_are_checked() -> None:
    found = run_checks(
        build_config(
            {
                "provision": {"version": "1.0.0", "config": {"merge": [{"source": "ftp://x/y"}]}},
                "storage": {
                    "files": [{"path": "/f", "append": [{"source": "ftp://x/y"}]}],
                    "luks": [
                        {"name": "data", "device": "/dev/vdb", "keyFile": {"source": "ftp://x/y"}}
                    ],
                },
            }
        )
    )
    assert [d.path for d in found] == [
        ("provision", "config", "merge", 0, "source"),
        ("storage", "files", 0, "append", 0, "source"),
        ("storage", "luks", 0, "keyFile", "source"),
    ]


def test_proxies_must_be_http_urls() -> None:
    found = check(provision={"version": "1.0.0", "proxy": {"httpsProxy": "socks5://p:1080"}})
    only(found, Severity.ERROR, ("provision", "proxy", "httpsProxy"), "http(s)")
    found = check(provision={"version": "1.0.0", "proxy": {"httpProxy": "http://p:99999"}})
    only(found, Severity.ERROR, ("provision", "proxy", "httpProxy"), "unable to parse")
    assert (
        check(
            provision={
                "version": "1.0.0",
                "proxy": {"httpProxy": "http://p:3128", "httpsProxy": "http://p:3128"},
            }
        )
        == []
    )


# --- checking a data: URL without decoding it gives the same verdict ---------
from hypothesis import example as _example  # noqa: E402
from hypothesis import given as _given  # noqa: E402
from hypothesis import strategies as _st  # noqa: E402


@_given(_st.one_of(
    _st.text(alphabet="ABCDEFabcdef0123456789+/=%,;:aZ -", max_size=24).map(lambda t: "data:;base64," + t),
    _st.text(max_size=24).map(lambda t: "data:," + t),
    _st.text(max_size=30).map(lambda t: "data:" + t),
))
@_example("data:;base64,0000=")  # a stray "=" after a whole quantum: binascii once let it through
def test_checking_without_decoding_agrees_with_decoding(url: str) -> None:
    from provision.config.checks.dataurl import DataURLError, parse_data_url

    def verdict(decode: bool) -> str | None:
        try:
            parse_data_url(url, decode=decode)
        except DataURLError as exc:
            return str(exc)
        return None

    assert verdict(False) == verdict(True)


@_given(_st.binary(max_size=64), _st.sampled_from(["", "-_.!~*'();/?:@&=+$,"]))
def test_percent_encoded_data_decodes_to_the_bytes_it_encodes(data: bytes, safe: str) -> None:
    from urllib.parse import quote_from_bytes

    from provision.config.checks.dataurl import parse_data_url

    assert parse_data_url("data:," + quote_from_bytes(data, safe=safe)).data == data
