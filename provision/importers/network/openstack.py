"""OpenStack ``network_data.json`` (config drive and metadata service) into the network section.

``links`` are the devices: physical ones (phy, ethernet, vif, ovs, tap, ...)
matched by MAC address, ``bond`` and ``vlan`` links by reference.
``networks`` add addresses, DHCP and routes to their link; ``services`` of
type dns are the system's DNS servers. Link ids are OpenStack's, often not
usable as interface names: a link is named by its ``name`` if it has one,
else its id when that is a valid interface name, else ``net<N>``.
"""

from __future__ import annotations

import re
from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.network import INTERFACES, Sink, add_nameservers
from provision.importers.network.v1 import route_entry, with_prefix

PHYSICAL = {"phy", "ethernet", "vif", "ovs", "tap", "bridge", "hw_veb", "vhostuser", "dvs", "macvtap",
            "802.1qbh", "802.1qbg", "hyperv", "vrouter", "midonet", "ib"}
DHCP4 = {"ipv4_dhcp"}
DHCP6 = {"ipv6_dhcp", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless"}
STATIC = {"ipv4", "ipv6"}
SLAAC = {"ipv6_slaac", "ipv6_dhcpv6-stateless"}
_NAME = r"^[A-Za-z0-9_.-]{1,15}$"


def _names(links: list[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for n, link in enumerate(links):
        if not isinstance(link, dict) or "id" not in link:
            continue
        wanted = link.get("name") or str(link["id"])
        names[str(link["id"])] = wanted if re.match(_NAME, wanted) else f"net{n}"
    return names


def _link(sink: Sink, link: dict[str, Any], names: dict[str, str], where: ConfigPath) -> dict[str, Any] | None:
    kind = link.get("type")
    name = names[str(link["id"])]
    entry: dict[str, Any] = {"name": name}
    mac = link.get("ethernet_mac_address") or link.get("vlan_mac_address")
    if kind == "bond":
        entry["type"] = "bond"
        entry["members"] = [names.get(str(m), str(m)) for m in link.get("bond_links") or []]
        bond: dict[str, Any] = {}
        if link.get("bond_mode"):
            bond["mode"] = link["bond_mode"]
        if link.get("bond_miimon") is not None:
            bond["miiMonitorInterval"] = int(link["bond_miimon"])
        if link.get("bond_xmit_hash_policy"):
            bond["transmitHashPolicy"] = link["bond_xmit_hash_policy"]
        entry["bond"] = bond
        if mac:
            entry["macAddress"] = str(mac).lower()
    elif kind == "vlan":
        parent = str(link.get("vlan_link"))
        entry["type"] = "vlan"
        entry["vlan"] = {"id": int(link.get("vlan_id", 0)), "link": names.get(parent, parent)}
        if mac:
            entry["macAddress"] = str(mac).lower()
    elif kind in PHYSICAL or kind is None:
        entry["type"] = "ethernet"
        if not mac:
            sink.bad("a physical link needs ethernet_mac_address", where)
            return None
        entry["match"] = {"macAddress": str(mac).lower()}
    else:
        sink.bad(f"link type {kind!r} is not supported", (*where, "type"))
        return None
    if link.get("mtu") is not None:
        entry["mtu"] = int(link["mtu"])
    return entry


def _network(sink: Sink, network: dict[str, Any], entry: dict[str, Any], where: ConfigPath) -> None:
    kind = network.get("type")
    if kind in DHCP4:
        entry["dhcp4"] = True
    elif kind in DHCP6:
        entry["dhcp6"] = True
    elif kind in STATIC:
        address = network.get("ip_address")
        if address is None:
            sink.bad("a static network needs ip_address", where)
            return
        full = with_prefix(sink, str(address), network.get("netmask"), (*where, "ip_address"))
        if full is not None:
            entry.setdefault("addresses", []).append(full)
    elif kind not in SLAAC:
        sink.bad(f"network type {kind!r} is not supported", (*where, "type"))
        return
    if kind in SLAAC:
        entry["acceptRa"] = True
    for j, route in enumerate(network.get("routes") or []):
        made = route_entry(sink, route, (*where, "routes", j))
        if made is not None:
            entry.setdefault("routes", []).append(made)
    servers = [s for s in network.get("dns_nameservers") or [] if isinstance(s, str)]
    if servers:
        entry.setdefault("nameservers", {}).setdefault("addresses", []).extend(servers)


def translate(sink: Sink, value: dict[str, Any], where: ConfigPath) -> None:
    links = value.get("links") or []
    names = _names(links)
    entries: dict[str, tuple[dict[str, Any], ConfigPath]] = {}
    for j, link in enumerate(links):
        at = (*where, "links", j)
        if not isinstance(link, dict) or "id" not in link:
            sink.bad("a link needs an id", at)
            continue
        made = _link(sink, link, names, at)
        if made is not None:
            entries[str(link["id"])] = (made, at)
    for j, network in enumerate(value.get("networks") or []):
        at = (*where, "networks", j)
        if not isinstance(network, dict):
            sink.bad("a network must be a mapping", at)
            continue
        target = entries.get(str(network.get("link")))
        if target is None:
            sink.bad(f"network on unknown link {network.get('link')!r}", (*at, "link"))
            continue
        _network(sink, network, target[0], at)
    for j, service in enumerate(value.get("services") or []):
        if isinstance(service, dict) and service.get("type") == "dns" and service.get("address"):
            add_nameservers(sink, [str(service["address"])], [])
        else:
            sink.warn("service is not supported (only type dns)", (*where, "services", j))
    for entry, at in entries.values():
        sink.add(INTERFACES, entry, at)
