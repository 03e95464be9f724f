"""URLs in messages (secrets redacted) and which proxy a URL goes through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``url`` safe for messages: password and query values replaced, fragment dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.scheme == "data":
        return "data: URL"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = "&".join(
        f"{quote(key, safe='')}=***" for key, _value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class ProxySettings:
    """Proxies from the config; ``no_proxy`` entries are hosts, ``.domain`` suffixes, IPs or CIDRs."""

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = ()

    def for_url(self, url: str) -> dict[str, str]:
        """The requests-style proxy mapping for one URL (empty: connect directly)."""
        parts = urlsplit(url)
        proxy = self.https if parts.scheme == "https" else self.http if parts.scheme == "http" else None
        if not proxy or _bypasses_proxy(parts.hostname or "", self.no_proxy):
            return {}
        return {parts.scheme: proxy}


def _bypasses_proxy(host: str, no_proxy: Sequence[str]) -> bool:
    import ipaddress

    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy):
        if not entry:
            continue
        if entry == "*" or host == entry.lstrip("."):
            return True
        if host.endswith("." + entry.lstrip(".")):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            pass
    return False
