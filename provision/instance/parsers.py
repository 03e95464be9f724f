"""The value formats a datasource's ``metadata`` section can name (``"parse"``).

Each parser turns one answer (bytes, or a value picked out of a JSON/YAML
document) into a field's value: a string, or a list of public keys. They are
pure functions of their input; fetching is :mod:`provision.instance.collect`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from provision.instance.data import PublicKey


def text(value: Any) -> str | None:
    """A plain value: bytes decoded and stripped; empty means absent."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    shown = str(value).strip()
    return shown or None


def last_segment(value: Any) -> str | None:
    """GCE's zone ``projects/123/zones/europe-west1-b`` -> ``europe-west1-b``."""
    shown = text(value)
    return shown.rsplit("/", 1)[-1] if shown else None


def zone_region(value: Any) -> str | None:
    """A region from a zone name: ``europe-west1-b`` -> ``europe-west1`` (GCE)."""
    zone = last_segment(value)
    if not zone or "-" not in zone:
        return None
    return zone.rsplit("-", 1)[0]


def key_lines(value: Any) -> list[PublicKey]:
    """One key a line (blank lines and # comments skipped), or a list of keys."""
    if isinstance(value, list):
        return [PublicKey(k.strip()) for k in value if isinstance(k, str) and k.strip()]
    shown = text(value) or ""
    return [PublicKey(line.strip()) for line in shown.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def key_values(value: Any) -> list[PublicKey]:
    """OpenStack's ``public_keys``: ``{name: key}``; a list or a string is read as lines."""
    if isinstance(value, dict):
        return [PublicKey(str(v).strip()) for v in value.values() if str(v).strip()]
    return key_lines(value)


def azure_keys(value: Any) -> list[PublicKey]:
    """Azure IMDS ``compute.publicKeys``: ``[{"keyData": ..., "path": ...}]``."""
    if not isinstance(value, list):
        return []
    return [PublicKey(str(k["keyData"]).strip()) for k in value
            if isinstance(k, dict) and str(k.get("keyData") or "").strip()]


def gce_keys(value: Any) -> list[PublicKey]:
    """GCE ``ssh-keys``: lines ``user:ssh-ed25519 AAAA... comment``; the user is kept,
    since only the default user's (and ``cloudinit``'s) keys are meant for it."""
    keys = []
    for line in (text(value) or "").splitlines():
        user, sep, key = line.strip().partition(":")
        if sep and key.strip() and " " not in user:
            keys.append(PublicKey(key.strip(), user))
    return keys


def is_true(value: Any) -> bool:
    return (text(value) or "").lower() in ("true", "1", "yes")


def json_document(data: bytes) -> Any:
    return json.loads(data)


def yaml_document(data: bytes) -> Any:
    import yaml

    return yaml.safe_load(data)


STRING_PARSERS: dict[str, Callable[[Any], str | None]] = {
    "text": text,
    "last-segment": last_segment,
    "zone-region": zone_region,
}
KEY_PARSERS: dict[str, Callable[[Any], list[PublicKey]]] = {
    "lines": key_lines,
    "values": key_values,
    "azure": azure_keys,
    "gce": gce_keys,
}
DOCUMENT_FORMATS: dict[str, Callable[[bytes], Any]] = {
    "json": json_document,
    "yaml": yaml_document,
}


def pick(document: Any, key: str) -> Any:
    """``a.b.0.c`` out of nested mappings and lists; None when any step is missing."""
    node = document
    for part in key.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node
