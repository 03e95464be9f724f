"""Checks on resources (file contents, appends, config references, CA
certificates, key files, preloaded images): URL scheme and syntax, data: URLs,
compression, verification hashes, HTTP headers.

Messages never quote a source: a data: URL is file contents and an http URL
may carry a token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import shared_by_checks
from provision.config.checks.dataurl import DataURLError, parse_data_url
from provision.diagnostics import ConfigPath, Diagnostic, error, warning

SCHEMES = ("data", "http", "https", "tftp", "s3", "gs")
HASH_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
# Compiled once: they run per resource and per header.
# RFC 9110 token characters for header names.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


@shared_by_checks
def all_resources(config: model.Config) -> tuple[tuple[model.Resource, ConfigPath, bool], ...]:
    """Every resource in the config with its path and whether a source is required."""
    return tuple(_resources(config))


def _resources(config: model.Config) -> Iterator[tuple[model.Resource, ConfigPath, bool]]:
    meta = config.provision
    for i, res in enumerate(meta.config.merge):
        yield res, ("provision", "config", "merge", i), True
    if meta.config.replace is not None:
        yield meta.config.replace, ("provision", "config", "replace"), True
    for i, res in enumerate(meta.security.tls.certificate_authorities):
        yield res, ("provision", "security", "tls", "certificateAuthorities", i), True
    for i, f in enumerate(config.storage.files):
        if f.contents is not None:
            yield f.contents, ("storage", "files", i, "contents"), False
        for j, res in enumerate(f.append):
            yield res, ("storage", "files", i, "append", j), False
    for i, luks in enumerate(config.storage.luks):
        if luks.key_file is not None:
            yield luks.key_file, ("storage", "luks", i, "keyFile"), False
    for i, res in enumerate(config.containers.preload):
        yield res, ("containers", "preload", i), True


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable resource URL (never quoting it); None when it is."""
    if _scheme(url) == "data":  # the common inline case needs no URL splitting
        try:
            parse_data_url(url, decode=False)
        except DataURLError as exc:
            return f"invalid data URL: {exc}"
        return None
    if url != url.strip():
        return "URL has leading or trailing blanks"
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "unable to parse URL"
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return (
            f"invalid URL scheme {scheme + ':' if scheme else '(none)'}; use one of "
            + ", ".join(s + ":" for s in SCHEMES)
        )
    if scheme == "data":  # urlsplit found it behind control characters
        return "invalid data URL: unexpected characters before 'data:'"
    if not parts.hostname:
        return f"{scheme} URL has no {'bucket' if scheme in ('s3', 'gs') else 'host'}"
    if scheme in ("s3", "gs") and parts.path in ("", "/"):
        return f"{scheme} URL has no object key"
    if scheme == "s3" and re.search(r"(^|&)versionId=(&|$)", parts.query):
        return "invalid S3 object versionId (empty)"
    return None


def _scheme(source: str) -> str:
    return source.partition(":")[0].lower()


def check_sources(config: model.Config) -> Iterator[Diagnostic]:
    for res, where, required in all_resources(config):
        if not res.source:
            if required:
                yield error("source is required", where)
            if res.verification.hash is not None:
                yield error(
                    "source must be specified if verification is specified",
                    (*where, "verification", "hash"),
                )
            if res.http_headers:
                yield error("HTTP headers need an http or https source", (*where, "httpHeaders"))
            continue
        problem = url_problem(res.source)
        if problem:
            yield error(problem, (*where, "source"), _scheme_hint(res.source))


def _scheme_hint(source: str) -> str | None:
    if _scheme(source) == "arn":
        return "S3 ARNs are not supported; use s3://bucket/key"
    if source.startswith("/"):
        return "a local path is not a URL; embed the contents as a data: URL"
    return None


def check_compression(config: model.Config) -> Iterator[Diagnostic]:
    for res, where, _ in all_resources(config):
        if res.compression not in (None, "", "gzip"):
            yield error(
                "invalid compression method; only gzip is supported", (*where, "compression")
            )


def hash_problem(spec: str) -> str | None:
    function, dash, digest = spec.partition("-")
    if not dash:
        return "malformed hash specifier; expected sha256-<hex> or sha512-<hex>"
    if function not in HASH_HEX_LENGTHS:
        return "unrecognized hash function; use sha256 or sha512"
    if not _HEX.fullmatch(digest):
        return "malformed hash specifier; the digest must be hexadecimal"
    if len(digest) != HASH_HEX_LENGTHS[function]:
        return (
            f"incorrect size for hash sum: {function} needs {HASH_HEX_LENGTHS[function]} "
            f"hex digits, got {len(digest)}"
        )
    return None


def check_hashes(config: model.Config) -> Iterator[Diagnostic]:
    for res, where, _ in all_resources(config):
        spec = res.verification.hash
        if spec is None:
            continue
        hash_where = (*where, "verification", "hash")
        problem = hash_problem(spec)
        if problem:
            yield error(problem, hash_where)
            continue
        if spec != spec.lower():
            yield warning(
                "hash digest is not lower case", hash_where, "write hex digests in lower case"
            )


def check_headers(config: model.Config) -> Iterator[Diagnostic]:
    for res, where, _ in all_resources(config):
        if not res.http_headers or not res.source:
            continue
        if _scheme(res.source) not in ("http", "https"):
            yield error("cannot use HTTP headers with this source scheme", (*where, "httpHeaders"))
        seen: dict[str, int] = {}
        for j, header in enumerate(res.http_headers):
            hwhere = (*where, "httpHeaders", j)
            if not _HEADER_NAME.match(header.name):
                yield error("HTTP header name is not a valid token", (*hwhere, "name"))
            if any(c in header.value for c in "\r\n\0"):
                yield error("HTTP header value contains a line break or NUL", (*hwhere, "value"))
            key = header.name.lower()
            if key in seen:
                yield error(
                    f"duplicate HTTP header name; already given in httpHeaders[{seen[key]}]",
                    (*hwhere, "name"),
                )
            seen.setdefault(key, j)


CHECKS = (check_sources, check_compression, check_hashes, check_headers)
