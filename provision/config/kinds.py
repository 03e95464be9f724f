"""Config formats other than provision's own, and how to recognise them.

Each foreign format is an importer module exposing ``to_spec(document) ->
Imported``, listed in :data:`IMPORTERS`. Recognising a format is a cheap
look at a marker (:data:`MARKERS`), so no importer is imported unless its
format is the one at hand. provision's own spec needs no importer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from provision.diagnostics import ConfigPath, Diagnostic
from provision.source.document import Document

# name -> module. A module that does not exist yet is skipped.
IMPORTERS: dict[str, str] = {
    "butane": "provision.importers.butane",
    "ignition": "provision.importers.ignition",
    "cloud-config": "provision.importers.cloudconfig",
    "human": "provision.importers.human",
    "network-config": "provision.importers.network",
}


# Butane's variants (provision.importers.butane.variants.NAMES, repeated so
# recognising a document imports nothing; a test keeps the two equal).
_BUTANE_VARIANTS = frozenset({"fcos", "flatcar", "openshift", "r4e", "fiot"})


def _is_butane(document: Document) -> bool:
    """``variant: fcos`` (or another Butane variant) with a ``version``; may also have an ``ignition`` section."""
    value = document.value
    return isinstance(value, dict) and value.get("variant") in _BUTANE_VARIANTS and "version" in value


def _is_ignition(document: Document) -> bool:
    value = document.value
    return isinstance(value, dict) and isinstance(value.get("ignition"), dict)


def _is_cloud_config(document: Document) -> bool:
    return document.text.lstrip("\ufeff").startswith("#cloud-config")


def _is_human(document: Document) -> bool:
    value = document.value
    return isinstance(value, dict) and "variant" in value and "ignition" not in value


def _is_network_config(document: Document) -> bool:
    """cloud-init network config on its own: NoCloud network-config (v1/v2) or OpenStack network_data.json."""
    value = document.value
    if not isinstance(value, dict):
        return False
    inner = value.get("network") if set(value) == {"network"} else value
    if isinstance(inner, dict) and inner.get("version") in (1, 2):
        return "config" in inner or any(k in inner for k in ("ethernets", "bonds", "bridges", "vlans"))
    return isinstance(value.get("links"), list) and isinstance(value.get("networks"), list)


# Tried in order; Butane first, since a Butane config may have an `ignition`
# section (config merges, TLS). None of these markers appears in provision's own spec, but
# human YAML may have a `provision` section: so they come before it.
MARKERS: dict[str, Callable[[Document], bool]] = {
    "butane": _is_butane,
    "ignition": _is_ignition,
    "cloud-config": _is_cloud_config,
    "human": _is_human,
    "network-config": _is_network_config,
}


# First-line markers of cloud-init user data other than a plain #cloud-config
# (provision.importers.userdata handles them; cloud-init compares lower-cased).
_USER_DATA_PREFIXES = (
    b"#!", b"#include", b"#cloud-boothook", b"#part-handler", b"#upstart-job",
    b"#cloud-config-archive", b"#cloud-config-jsonp", b"## template: jinja",
)
_GZIP_MAGIC = b"\x1f\x8b"


def is_user_data(data: bytes) -> bool:
    """cloud-init user data that is not a single #cloud-config: a look at the bytes only.

    gzip data counts (it may hold any format). MIME is a leading header block
    naming ``MIME-Version:`` (cloud-init looks for it anywhere in the first
    4 KiB, which would also catch a config that merely quotes a mail header).
    """
    if data[:2] == _GZIP_MAGIC:
        return True
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(_USER_DATA_PREFIXES) or head.startswith((b"content-type:", b"mime-version:")):
        return True
    if head.startswith(b"#cloud-config"):
        return False
    headers = head.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n")
    return any(line.startswith(b"mime-version:") for line in headers) and all(
        line[:1] in (b" ", b"\t") or (b" " not in line.partition(b":")[0] and b":" in line) for line in headers)


def recognise(document: Document) -> str | None:
    """The document's format: an IMPORTERS name, "provision", or None."""
    for name, marker in MARKERS.items():
        if marker(document):
            return name
    if isinstance(document.value, dict) and "provision" in document.value:
        return "provision"
    return None


def _identity(path: ConfigPath) -> ConfigPath | None:
    return path


class Imported:
    """A foreign config translated to a provision spec dict of the newest version.

    ``diagnostics`` are about the source document and carry its paths;
    ``source_path`` maps a path in ``spec`` back to the source document so a
    diagnostic about the generated spec points at the line that produced it.
    """

    # A plain class, not a dataclass: see provision.diagnostics.
    def __init__(
        self,
        spec: dict[str, Any] | None,
        diagnostics: list[Diagnostic] | None = None,
        source_path: Callable[[ConfigPath], ConfigPath | None] = _identity,
    ) -> None:
        self.spec = spec
        self.diagnostics: list[Diagnostic] = [] if diagnostics is None else diagnostics
        self.source_path = source_path


def importer(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(IMPORTERS[name])
    except ModuleNotFoundError as exc:
        module = IMPORTERS[name]
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
