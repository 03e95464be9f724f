"""The one engine behind every plain HTTP metadata cloud.

Each cloud is a declarative entry in ``datasources/<name>.json``; adding a
cloud means adding a file, not code. Fields (all but ``name``, ``base_urls``
and ``user_data`` optional):

``base_urls``          tried together; the first to answer over HTTP is used
``user_data``          path of the user data below the base URL
``headers``            sent with every request
``response_headers``   must be present in every answer (GCE's Metadata-Flavor)
``token``              ``{method, path, headers, send_as, absent_statuses}``: fetch a
                       session token first and send it as header ``send_as``;
                       ``absent_statuses`` on the token request mean "no tokens
                       here, go on without" (IMDSv1)
``refresh_statuses``   statuses that mean "token expired": fetch a new one, once
``encoding``           fixed encoding of the user data (``base64``, ...)
``encoding_path``      path whose body names the encoding (404: none)
``no_data_statuses``   statuses meaning "this machine has no user data"
``retry_statuses``     statuses retried with backoff besides 5xx
``privileged_source_port``  the service only answers source ports below 1024
``user_data_field``    the user data path answers a JSON object and this key holds
                       the user data (absent or null: none); the whole object is
                       kept as ``meta-data``
``extras``             ``{name: path}`` fetched after the user data and kept raw
                       (``meta-data``, ``vendor-data``, ``network-config``); 404: absent
``detect``             DMI rules, see provision.platforms.detect
``metadata``           the instance's attributes (id, hostname, region, zone, IPs,
                       SSH keys, report URLs): see provision.instance.section
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from provision.platforms.base import Context, Found, NeedNetwork, NoConfig, Platform, Result
from provision.platforms.payload import decode_payload
from provision.platforms.race import Answered, first_answer
from provision.platforms.transport import Reply, Transport
from provision.resources import list_names, load_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenStep:
    method: str
    path: str
    send_as: str
    headers: Mapping[str, str] = field(default_factory=dict)
    absent_statuses: frozenset[int] = frozenset()


@dataclass(frozen=True)
class CloudEntry:
    name: str
    title: str
    base_urls: tuple[str, ...]
    user_data: str
    headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: Mapping[str, str] = field(default_factory=dict)
    token: TokenStep | None = None
    refresh_statuses: frozenset[int] = frozenset()
    encoding: str | None = None
    encoding_path: str | None = None
    no_data_statuses: frozenset[int] = frozenset()
    retry_statuses: frozenset[int] = frozenset()
    privileged_source_port: bool = False
    user_data_field: str | None = None
    extras: Mapping[str, str] = field(default_factory=dict)
    detect: tuple[Mapping[str, str], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


_KNOWN_KEYS = {
    "name", "title", "base_urls", "user_data", "headers", "response_headers", "token",
    "refresh_statuses", "encoding", "encoding_path", "no_data_statuses", "retry_statuses",
    "privileged_source_port", "user_data_field", "extras", "detect", "metadata",
}


def parse_entry(raw: Mapping[str, Any]) -> CloudEntry:
    """A datasource entry from its JSON; a malformed entry is a packaging bug."""
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"datasource {raw.get('name')!r}: unknown keys {sorted(unknown)}")
    token = raw.get("token")
    return CloudEntry(
        name=raw["name"],
        title=raw.get("title", raw["name"]),
        base_urls=tuple(raw["base_urls"]),
        user_data=raw["user_data"],
        headers=dict(raw.get("headers", {})),
        response_headers=dict(raw.get("response_headers", {})),
        token=TokenStep(
            method=token.get("method", "PUT"),
            path=token["path"],
            send_as=token["send_as"],
            headers=dict(token.get("headers", {})),
            absent_statuses=frozenset(token.get("absent_statuses", ())),
        ) if token else None,
        refresh_statuses=frozenset(raw.get("refresh_statuses", ())),
        encoding=raw.get("encoding"),
        encoding_path=raw.get("encoding_path"),
        no_data_statuses=frozenset(raw.get("no_data_statuses", ())),
        retry_statuses=frozenset(raw.get("retry_statuses", ())),
        privileged_source_port=bool(raw.get("privileged_source_port", False)),
        user_data_field=raw.get("user_data_field"),
        extras=dict(raw.get("extras", {})),
        detect=tuple(raw.get("detect", ())),
        metadata=dict(raw.get("metadata", {})),
    )


@cache
def load_entries() -> dict[str, CloudEntry]:
    entries = {}
    for filename in list_names("datasources"):
        entry = parse_entry(load_json("datasources", filename))
        entries[entry.name] = entry
    return entries


class _Session:
    """One conversation with one base URL: token, user data, encoding."""

    def __init__(self, entry: CloudEntry, base: str, transport: Transport) -> None:
        self.entry = entry
        self.base = base.rstrip("/")
        self.transport = transport
        self.token: str | None = None

    def _request(self, method: str, path: str, headers: Mapping[str, str]) -> Reply:
        reply = self.transport.request(
            method, self.base + path, headers={**self.entry.headers, **headers},
            retry_statuses=self.entry.retry_statuses,
            privileged_source_port=self.entry.privileged_source_port,
        )
        for name, value in self.entry.response_headers.items():
            if reply.headers.get(name) != value and reply.status < 500:
                raise Answered(
                    f"{self.entry.name}: {_shown(self.base + path)} answered without "
                    f"'{name}: {value}'; not the {self.entry.title} metadata service"
                )
        return reply

    def fetch_token(self) -> None:
        step = self.entry.token
        if step is None:
            return
        reply = self._request(step.method, step.path, step.headers)
        if reply.status == 200 and reply.body:
            self.token = reply.body.decode("ascii", errors="replace").strip()
        elif reply.status in step.absent_statuses:
            log.info("%s: token endpoint answered %d; continuing without a token",
                     self.entry.name, reply.status)
            self.token = None
        else:
            raise Answered(f"{self.entry.name}: token request {step.path} "
                           f"answered HTTP {reply.status}{_disabled_hint(reply.status)}")

    def get(self, path: str) -> Reply:
        def attempt() -> Reply:
            step = self.entry.token
            headers = {step.send_as: self.token} if step and self.token else {}
            return self._request("GET", path, headers)

        reply = attempt()
        if reply.status in self.entry.refresh_statuses and self.entry.token:
            log.info("%s: HTTP %d for %s; fetching a new token", self.entry.name,
                     reply.status, path)
            self.fetch_token()
            reply = attempt()
        return reply

    def user_data(self) -> Result:
        self.fetch_token()
        url = _shown(self.base + self.entry.user_data)
        reply = self.get(self.entry.user_data)
        if reply.status in self.entry.no_data_statuses:
            return NoConfig(f"{self.entry.name}: no user data (HTTP {reply.status} from {url})")
        if reply.status not in (200, 204):
            raise Answered(f"{self.entry.name}: {url} answered HTTP {reply.status}"
                           f"{_disabled_hint(reply.status)}")
        body, extras = reply.body, self._extras()
        if self.entry.user_data_field:
            body, extras["meta-data"] = self._field(reply.body, url), reply.body
        if not body.strip():
            return NoConfig(f"{self.entry.name}: user data is empty ({url})")
        encoding = self.entry.encoding
        if self.entry.encoding_path:
            answer = self.get(self.entry.encoding_path)
            if answer.status == 200:
                encoding = answer.body.decode("utf-8", errors="replace").strip()
            elif answer.status != 404:
                shown = _shown(self.base + self.entry.encoding_path)
                raise Answered(f"{self.entry.name}: {shown} answered HTTP {answer.status}")
        return Found(decode_payload(body, encoding, f"{self.entry.name} user data"), url, extras)

    def _field(self, body: bytes, url: str) -> bytes:
        import json

        try:
            document = json.loads(body)
        except ValueError:
            raise Answered(f"{self.entry.name}: {url} did not answer JSON") from None
        value = document.get(self.entry.user_data_field) if isinstance(document, dict) else None
        if value is None:
            return b""
        return value.encode() if isinstance(value, str) else json.dumps(value).encode()

    def _extras(self) -> dict[str, bytes]:
        kept = {}
        for name, path in self.entry.extras.items():
            answer = self.get(path)
            if answer.status == 200:
                kept[name] = answer.body
            elif answer.status not in (204, 404):
                raise Answered(f"{self.entry.name}: {_shown(self.base + path)} answered "
                               f"HTTP {answer.status}")
        return kept


def _shown(url: str) -> str:
    """``url`` fit for messages: no credentials, no query values."""
    from provision.fetch.http import redact_url

    return redact_url(url)


def _disabled_hint(status: int) -> str:
    return " (the metadata service is disabled for this instance)" if status == 403 else ""


def base_urls(entry: CloudEntry, ctx: Context) -> tuple[str, ...]:
    return (ctx.settings.metadata_url,) if ctx.settings.metadata_url else entry.base_urls


def fetch_from_entry(entry: CloudEntry, ctx: Context) -> Result:
    """The user data of a declarative cloud; every base URL is tried at once."""
    if ctx.offline:
        return NeedNetwork(f"{entry.name}: the metadata service needs the network")
    sessions = [_Session(entry, base, ctx.transport) for base in base_urls(entry, ctx)]
    return first_answer([session.user_data for session in sessions])


def http_platform(name: str) -> Platform:
    entry = load_entries()[name]

    def fetch(ctx: Context) -> Result:
        return fetch_from_entry(entry, ctx)

    fetch.__doc__ = f"{entry.title}: user data from {entry.user_data}"
    return fetch
