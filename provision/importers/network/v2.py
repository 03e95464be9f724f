"""cloud-init network config version 2 (netplan's YAML) into the network section.

Ethernets, bonds, bridges and VLANs become ``network.interfaces`` entries of
that type; keys map one to one where netplan and provision agree, and any
key this importer does not know is reported, never dropped.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.network import INTERFACES, Sink, network_section

SECTIONS = {"ethernets": "ethernet", "bonds": "bond", "bridges": "bridge", "vlans": "vlan"}
RENDERERS = {"networkd": "networkd", "NetworkManager": "networkmanager"}

# netplan key -> provision key, for keys whose value is taken as it is.
COMMON = {
    "dhcp4": "dhcp4", "dhcp6": "dhcp6", "mtu": "mtu", "optional": "optional",
    "gateway4": "gateway4", "gateway6": "gateway6", "macaddress": "macAddress", "accept-ra": "acceptRa",
    "set-name": "setName",
}
BOND_PARAMETERS = {
    "mode": "mode", "mii-monitor-interval": "miiMonitorInterval", "lacp-rate": "lacpRate",
    "transmit-hash-policy": "transmitHashPolicy", "primary": "primary", "up-delay": "upDelay",
    "down-delay": "downDelay", "min-links": "minLinks", "ad-select": "adSelect",
    "arp-interval": "arpInterval", "arp-ip-targets": "arpIpTargets",
}
BRIDGE_PARAMETERS = {
    "stp": "stp", "forward-delay": "forwardDelay", "priority": "priority",
    "hello-time": "helloTime", "max-age": "maxAge",
}
MATCH = {"name": "name", "macaddress": "macAddress", "driver": "driver"}
ROUTE = {"to": "to", "via": "via", "metric": "metric", "table": "table", "on-link": "onLink"}
# Integer settings netplan also accepts as strings ("100", or times like "15").
INTEGERS = {"miiMonitorInterval", "upDelay", "downDelay", "arpInterval", "forwardDelay", "helloTime",
            "maxAge", "priority", "minLinks", "mtu", "metric", "table"}
IGNORED_QUIETLY = {"critical", "renderer"}  # renderer: the image decides (network.renderer)


def _value(key: str, value: Any) -> Any:
    if key in INTEGERS and isinstance(value, str) and value.isdigit():
        return int(value)
    if key in ("dhcp4", "dhcp6", "stp", "optional", "acceptRa", "onLink") and isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "yes", "on"):
            return True
        if lowered in ("false", "no", "off"):
            return False
    return value


def _mapped(sink: Sink, data: Any, table: dict[str, str], where: ConfigPath, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(data, dict):
        sink.bad(f"{what} must be a mapping", where)
        return out
    for key, value in data.items():
        if key in table:
            out[table[key]] = _value(table[key], value)
        else:
            sink.warn(f"{what} key {key!r} is not supported", (*where, key), at_key=True)
    return out


def _addresses(sink: Sink, value: Any, where: ConfigPath) -> list[str]:
    """netplan addresses: a list of strings, or of one-key mappings {address: {label, lifetime}}."""
    out = []
    for j, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, dict) and len(item) == 1:
            address = next(iter(item))
            sink.warn("address options (label, lifetime) are not supported; the address is kept",
                      (*where, j, address), at_key=True)
            out.append(str(address))
        else:
            out.append(str(item))
    if not isinstance(value, list):
        sink.bad("addresses must be a list", where)
    return out


def _interface(sink: Sink, name: str, kind: str, data: Any, where: ConfigPath) -> None:
    entry: dict[str, Any] = {"name": name, "type": kind}
    if not isinstance(data, dict):
        data = {} if data is None else data
    if not isinstance(data, dict):
        sink.bad(f"{name} must be a mapping", where)
        return
    for key, value in data.items():
        at = (*where, key)
        if key in COMMON:
            entry[COMMON[key]] = _value(COMMON[key], value)
        elif key == "addresses":
            entry["addresses"] = _addresses(sink, value, at)
        elif key == "nameservers":
            servers = _mapped(sink, value, {"addresses": "addresses", "search": "search"}, at, "nameservers")
            entry["nameservers"] = servers
        elif key == "routes" and isinstance(value, list):
            entry["routes"] = [_mapped(sink, r, ROUTE, (*at, j), "route") for j, r in enumerate(value)]
        elif key == "match" and kind == "ethernet":
            entry["match"] = _mapped(sink, value, MATCH, at, "match")
        elif key == "interfaces" and kind in ("bond", "bridge"):
            entry["members"] = value
        elif key == "parameters" and kind == "bond":
            entry["bond"] = _mapped(sink, value, BOND_PARAMETERS, at, "bond parameter")
        elif key == "parameters" and kind == "bridge":
            entry["bridge"] = _mapped(sink, value, BRIDGE_PARAMETERS, at, "bridge parameter")
        elif key in ("id", "link") and kind == "vlan":
            entry.setdefault("vlan", {})[key] = value
        elif key in IGNORED_QUIETLY:
            continue
        else:
            sink.warn(f"network key {key!r} is not supported", at, at_key=True)
    if kind == "bond" and "bond" not in entry:
        entry["bond"] = {}
    if kind == "vlan" and set(entry.get("vlan", {})) != {"id", "link"}:
        sink.bad("a VLAN needs id and link", where)
        return
    index = sink.add(INTERFACES, entry, where)
    # Diagnostics about a field point at the netplan key that gave it.
    spec_to_source = {v: k for k, v in COMMON.items()} | {
        "addresses": "addresses", "nameservers": "nameservers", "routes": "routes", "match": "match",
        "members": "interfaces", "bond": "parameters", "bridge": "parameters",
    }
    for key in entry:
        if key in spec_to_source and spec_to_source[key] in data:
            sink.origins.record((*INTERFACES, index, key), (*where, spec_to_source[key]))
    for key in ("id", "link"):
        if key in data:
            sink.origins.record((*INTERFACES, index, "vlan", key), (*where, key))


def translate(sink: Sink, value: dict[str, Any], where: ConfigPath) -> None:
    for key, data in value.items():
        at = (*where, key)
        if key == "version":
            continue
        if key == "renderer":
            if data in RENDERERS:
                network_section(sink).setdefault("renderer", RENDERERS[data])
            else:
                sink.warn(f"renderer {data!r} is not supported; the image's is detected", at)
            continue
        kind = SECTIONS.get(key)
        if kind is None:
            sink.warn(f"network section {key!r} is not supported", at, at_key=True)
            continue
        if not isinstance(data, dict):
            sink.bad(f"{key} must be a mapping of interface names", at)
            continue
        for name, settings in data.items():
            _interface(sink, str(name), kind, settings, (*at, name))
