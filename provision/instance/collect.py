"""Collect the instance's attributes from its platform, next to its user data.

HTTP clouds: the ``metadata`` section of the platform's datasources/*.json
entry (:mod:`provision.instance.section`), read through the same session
rules as the user data (headers, token, retries). NoCloud: ``meta-data``
(YAML) from the cidata filesystem or the seed URL. OpenStack's config drive:
``openstack/latest/meta_data.json``. A value the platform does not have
(404) is absent; any other failure is a FetchError, since an instance whose
metadata cannot be read is not the instance the user launched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from provision.errors import FetchError
from provision.instance import parsers
from provision.instance.data import InstanceData, PublicKey
from provision.instance.section import STRING_FIELDS
from provision.platforms.base import Context

log = logging.getLogger(__name__)


class _Reader:
    """One platform's section read through one session; every path fetched once."""

    def __init__(self, name: str, section: Mapping[str, Any], get: Any) -> None:
        self.name = name
        self.section = section
        self._get = get  # path -> (status, body)
        self._paths: dict[str, bytes | None] = {}
        self._documents: dict[str, Any] = {}

    def path(self, path: str) -> bytes | None:
        if path not in self._paths:
            status, body = self._get(path)
            if status == 404:
                self._paths[path] = None
            elif status in (200, 204):
                self._paths[path] = body
            else:
                raise FetchError(f"{self.name}: metadata {path.split('?')[0]} answered HTTP {status}")
        return self._paths[path]

    def document(self, name: str) -> Any:
        if name not in self._documents:
            spec = self.section["documents"][name]
            data = self.path(spec["path"])
            try:
                self._documents[name] = (
                    None if data is None else parsers.DOCUMENT_FORMATS[spec.get("format", "json")](data)
                )
            except Exception as exc:  # json's ValueError, yaml's YAMLError: not that format
                raise FetchError(f"{self.name}: metadata document {spec['path'].split('?')[0]} "
                                 f"is not {spec.get('format', 'json')}: {exc}") from None
        return self._documents[name]

    def raw(self, source: Mapping[str, Any]) -> Any:
        if "path" in source:
            return self.path(source["path"])
        if "document" in source:
            return parsers.pick(self.document(source["document"]), source["key"])
        return self.string(source["field"])

    def string(self, field: str) -> str | None:
        source = self.section.get(field)
        if source is None:
            return None
        return parsers.STRING_PARSERS[source.get("parse", "text")](self.raw(source))

    def public_keys(self) -> list[PublicKey]:
        keys: list[PublicKey] = []
        for source in self.section.get("public_keys", ()):
            guard = source.get("unless_true")
            if guard is not None and parsers.is_true(self.raw(guard)):
                continue
            parse = source.get("parse", "lines")
            if parse == "aws-index":
                keys += self._aws_keys(source["path"])
            else:
                keys += parsers.KEY_PARSERS[parse](self.raw(source))
        return keys

    def _aws_keys(self, listing_path: str) -> list[PublicKey]:
        """EC2 lists ``0=my-key`` lines; each key is at ``<listing>0/openssh-key``."""
        keys: list[PublicKey] = []
        base = listing_path if listing_path.endswith("/") else listing_path + "/"
        for line in (parsers.text(self.path(base)) or "").splitlines():
            index = line.split("=", 1)[0].strip()
            if index.isdigit():
                keys += parsers.key_lines(self.path(f"{base}{index}/openssh-key"))
        return keys

    def instance(self, platform: str) -> InstanceData:
        reports = {kind: parsers.text(self.raw(source))
                   for kind, source in self.section.get("report_urls", {}).items()}
        values = {field: self.string(field) for field in STRING_FIELDS}
        return InstanceData(platform=platform, public_keys=tuple(_unique(self.public_keys())),
                            report_urls={k: v for k, v in reports.items() if v}, **values)


def _unique(keys: list[PublicKey]) -> list[PublicKey]:
    seen: set[tuple[str, str | None]] = set()
    return [k for k in keys if (k.key, k.user) not in seen and not seen.add((k.key, k.user))]  # type: ignore[func-returns-value]


def from_http_entry(ctx: Context, platform: str, entry_name: str | None = None) -> InstanceData | None:
    """The section of ``entry_name`` (default: the platform's) read over HTTP; None without one."""
    from provision.platforms.http_cloud import _Session, base_urls, load_entries

    entry = load_entries().get(entry_name or platform)
    if entry is None or not entry.metadata:
        return None
    session = _Session(entry, base_urls(entry, ctx)[0], ctx.transport)
    try:
        session.fetch_token()

        def get(path: str) -> tuple[int, bytes]:
            reply = session.get(path)
            return reply.status, reply.body

        return _Reader(platform, entry.metadata, get).instance(platform)
    except FetchError:
        raise
    except Exception as exc:  # Answered (wrong service) and transport failures
        raise FetchError(f"{platform}: cannot read the instance metadata: {exc}") from None


# meta-data keys of NoCloud (and of cloud-init's other YAML meta-data files).
_NOCLOUD_SECTION: dict[str, Any] = {
    "documents": {"meta": {"path": "meta-data", "format": "yaml"}},
    "instance_id": {"document": "meta", "key": "instance-id"},
    "local_hostname": {"document": "meta", "key": "local-hostname"},
    "region": {"document": "meta", "key": "region"},
    "zone": {"document": "meta", "key": "availability-zone"},
    "public_keys": [{"document": "meta", "key": "public-keys", "parse": "values"}],
}

_CONFIG_DRIVE_SECTION: dict[str, Any] = {
    "documents": {"meta": {"path": "openstack/latest/meta_data.json", "format": "json"}},
    "instance_id": {"document": "meta", "key": "uuid"},
    "local_hostname": {"document": "meta", "key": "hostname"},
    "zone": {"document": "meta", "key": "availability_zone"},
    "public_keys": [{"document": "meta", "key": "public_keys", "parse": "values"}],
}


def from_files(platform: str, section: Mapping[str, Any], files: Mapping[str, bytes | None]) -> InstanceData:
    """A section read from files already in hand (a seed, a config drive)."""
    def get(path: str) -> tuple[int, bytes]:
        data = files.get(path)
        return (404, b"") if data is None else (200, data)

    return _Reader(platform, section, get).instance(platform)


def _nocloud(ctx: Context) -> InstanceData:
    from provision.platforms.configdrive import read_labelled
    from provision.platforms.detect import CIDATA_LABELS

    meta = _kept_extra(ctx, "meta-data")
    if meta is None:
        found = read_labelled(ctx.settings, CIDATA_LABELS, "meta-data", "cidata")
        meta = getattr(found, "data", None)
    if meta is None and ctx.settings.kernel.nocloud_seed and not ctx.offline:
        meta = _seed_meta_data(ctx, ctx.settings.kernel.nocloud_seed)
    return from_files("nocloud", _NOCLOUD_SECTION, {"meta-data": meta})


def _seed_meta_data(ctx: Context, seed: str) -> bytes | None:
    from provision.config.model import Resource
    from provision.fetch.http import HttpStatusError
    from provision.fetch.resource import fetch_bytes

    url = (seed.replace("%s", "meta-data") if "%s" in seed
           else seed.removesuffix("user-data").rstrip("/") + "/meta-data")
    try:
        return fetch_bytes(Resource(source=url), ctx.client)
    except HttpStatusError as exc:
        if exc.status == 404:
            return None
        raise


def _kept_extra(ctx: Context, name: str) -> bytes | None:
    """A file the fetch kept in the run directory's ``platform/`` (when the platform keeps one)."""
    try:
        return (ctx.settings.run_dir / "platform" / name).read_bytes()
    except OSError:
        return None


def _openstack(ctx: Context) -> InstanceData | None:
    from provision.platforms.configdrive import read_labelled
    from provision.platforms.detect import CONFIG_DRIVE_LABELS

    drive = read_labelled(ctx.settings, CONFIG_DRIVE_LABELS, "openstack/latest/meta_data.json",
                          "config drive")
    data = getattr(drive, "data", None)
    if data is not None:
        return from_files("openstack", _CONFIG_DRIVE_SECTION,
                          {"openstack/latest/meta_data.json": data})
    return None if ctx.offline else from_http_entry(ctx, "openstack")


def collect_instance(ctx: Context, platform: str) -> InstanceData | None:
    """What the platform says about this instance; None where it says nothing we read.

    In the offline pass (``ctx.offline``) only local sources are read.
    """
    if platform == "nocloud":
        return _nocloud(ctx)
    if platform == "openstack":
        return _openstack(ctx)
    from provision.platforms.http_cloud import load_entries

    entry = load_entries().get(platform)
    if entry is not None and entry.metadata:
        return None if ctx.offline else from_http_entry(ctx, platform)
    # Platforms that hand over cloud-init style meta-data (MAAS, CloudStack, ...):
    # the fetch kept it in the run directory; its keys are NoCloud's.
    kept = _kept_extra(ctx, "meta-data")
    if kept is None:
        return None
    try:
        return from_files(platform, _NOCLOUD_SECTION, {"meta-data": kept})
    except FetchError as exc:
        log.warning("%s: meta-data not read: %s", platform, exc)
        return None
