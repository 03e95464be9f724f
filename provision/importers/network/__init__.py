"""cloud-init network configuration, imported into provision's ``network`` section.

One module per input format: :mod:`.v1` (cloud-init's network config
version 1), :mod:`.v2` (version 2, netplan's format) and :mod:`.openstack`
(``network_data.json`` of OpenStack config drives and metadata). They are
reached three ways:

- a NoCloud ``network-config`` file, or any of the formats on its own, given
  to ``provision validate``/``transpile`` or fetched by a datasource:
  :func:`to_spec` (a format recognised by :func:`is_network_config`);
- the ``network:`` key of a #cloud-config: :func:`translate`;
- raw bytes from a datasource's fetch result: :func:`parse_bytes`.

Every key is either translated or reported with its position; nothing is
dropped silently.
"""

from __future__ import annotations

from typing import Any, Protocol

from provision.diagnostics import ConfigPath, Diagnostic, error, warning
from provision.importers.origins import Origins


class Sink(Protocol):
    """Where translated entries go: a cloud-config importer's context, or :class:`NetContext`."""

    spec: dict[str, Any]
    origins: Origins

    def add(self, section: tuple[str, ...], entry: dict[str, Any], source: ConfigPath) -> int: ...

    def warn(self, message: str, source: ConfigPath, hint: str | None = None, at_key: bool = False) -> None: ...

    def bad(self, message: str, source: ConfigPath, hint: str | None = None) -> None: ...


INTERFACES = ("network", "interfaces")


class NetContext:
    """A minimal :class:`Sink` for documents that are only network config."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] = {}
        self.diagnostics: list[Diagnostic] = []
        self.origins = Origins()

    def add(self, section: tuple[str, ...], entry: dict[str, Any], source: ConfigPath) -> int:
        node = self.spec
        for key in section[:-1]:
            node = node.setdefault(key, {})
        entries = node.setdefault(section[-1], [])
        entries.append(entry)
        self.origins.record((*section, len(entries) - 1), source)
        return len(entries) - 1

    def warn(self, message: str, source: ConfigPath, hint: str | None = None, at_key: bool = False) -> None:
        self.diagnostics.append(warning(message, source, hint))

    def bad(self, message: str, source: ConfigPath, hint: str | None = None) -> None:
        self.diagnostics.append(error(message, source, hint))


def network_section(sink: Sink) -> dict[str, Any]:
    section: dict[str, Any] = sink.spec.setdefault("network", {})
    return section


def add_nameservers(sink: Sink, addresses: list[str], search: list[str]) -> None:
    """System-wide DNS, merged without duplicates."""
    servers = network_section(sink).setdefault("nameservers", {})
    for key, values in (("addresses", addresses), ("search", search)):
        if values:
            known = servers.setdefault(key, [])
            known += [v for v in values if v not in known]


def translate(sink: Sink, value: Any, where: ConfigPath) -> None:
    """Translate a network config (v1, v2 or network_data.json) found at ``where``."""
    from provision.importers.network import openstack, v1, v2

    if isinstance(value, dict) and "network" in value and isinstance(value["network"], dict):
        value, where = value["network"], (*where, "network")
    if not isinstance(value, dict):
        sink.bad("network config must be a mapping", where)
        return
    if value.get("config") == "disabled":
        sink.warn("network config is disabled: the image's own network configuration is kept", where)
        return
    if isinstance(value.get("links"), list):
        openstack.translate(sink, value, where)
        return
    version = value.get("version")
    if version == 1:
        v1.translate(sink, value, where)
    elif version == 2:
        v2.translate(sink, value, where)
    else:
        sink.bad("network config version must be 1 or 2", (*where, "version") if "version" in value else where,
                 "cloud-init's network config has version: 1 (a config list) or version: 2 (netplan)")


def to_spec(document: Any) -> Any:
    """A network-config document as a provision spec (the importer entry of provision.config.kinds)."""
    from provision.config import versions
    from provision.config.kinds import Imported

    ctx = NetContext()
    translate(ctx, document.value, ())
    spec = {"provision": {"version": versions.NEWEST}, **ctx.spec}
    return Imported(spec, ctx.diagnostics, ctx.origins.source_path)


def with_platform_network(spec: dict[str, Any], raw: bytes, name: str) -> dict[str, Any]:
    """``spec`` plus the platform's network config, unless the config has a network section of its own.

    cloud-init renders a datasource's network config (NoCloud network-config,
    OpenStack network_data.json) into the system; so does provision, but the
    user's own config wins. The document is checked like any config (positioned
    errors in it raise ConfigError).
    """
    from provision.config.pipeline import parse_config
    from provision.errors import ConfigError

    if spec.get("network"):
        return spec
    parsed = parse_config(raw, name)
    if parsed.kind != "network-config":
        raise ConfigError([error("not a cloud-init network config (version 1 or 2, or network_data.json)")
                           .at(name, None)])
    if parsed.spec is None or parsed.config is None:
        raise ConfigError([d for d in parsed.diagnostics if d.is_error])
    network = parsed.spec.get("network")
    return {**spec, "network": network} if network else spec


def parse_bytes(data: bytes, name: str) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """Raw network-config bytes (YAML or JSON) to a ``network`` section; diagnostics positioned."""
    from provision.errors import ConfigError
    from provision.source.loader import load_document

    try:
        doc = load_document(data, name)
    except ConfigError as exc:
        return None, list(exc.diagnostics)
    ctx = NetContext()
    translate(ctx, doc.value, ())
    found = [d.at(name, doc.locate(d.path)) for d in ctx.diagnostics]
    if any(d.is_error for d in found):
        return None, found
    return ctx.spec.get("network", {}), found
