"""netplan YAML: /etc/netplan/90-provision.yaml (mode 0600, as netplan requires).

Written as JSON (a subset of YAML), so no YAML library is needed at boot.
System-wide DNS servers are added to every interface that is not a bond or
bridge member (netplan has no global DNS setting).
"""

from __future__ import annotations

import json
from typing import Any

from provision.config.model import NetInterface, Networking
from provision.network import Rendered, masters, nameservers

PATH = "/etc/netplan/90-provision.yaml"
SECTIONS = {"ethernet": "ethernets", "bond": "bonds", "vlan": "vlans", "bridge": "bridges"}


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def _interface(network: Networking, iface: NetInterface, is_member: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if iface.match is not None:
        out["match"] = _drop_none({"name": iface.match.name, "macaddress": iface.match.mac_address,
                                   "driver": iface.match.driver})
        out["set-name"] = iface.set_name
    out["macaddress"] = iface.mac_address
    out["mtu"] = iface.mtu
    out["optional"] = True if iface.optional else None
    if not is_member:
        out["dhcp4"] = iface.dhcp4
        out["dhcp6"] = iface.dhcp6
        out["accept-ra"] = iface.accept_ra
        out["addresses"] = list(iface.addresses)
        defaults = [("0.0.0.0/0" if ":" not in g else "::/0", g) for g in (iface.gateway4, iface.gateway6) if g]
        routes = [{"to": "default", "via": via} for _, via in defaults]
        routes += [_drop_none({"to": r.to, "via": r.via, "metric": r.metric, "table": r.table,
                               "on-link": True if r.on_link else None}) for r in iface.routes]
        out["routes"] = routes
        servers, search = nameservers(network, iface)
        out["nameservers"] = _drop_none({"addresses": servers, "search": search})
    out["interfaces"] = list(iface.members)
    if iface.bond is not None:
        b = iface.bond
        out["parameters"] = _drop_none({
            "mode": b.mode, "mii-monitor-interval": b.mii_monitor_interval, "lacp-rate": b.lacp_rate,
            "transmit-hash-policy": b.transmit_hash_policy, "primary": b.primary, "up-delay": b.up_delay,
            "down-delay": b.down_delay, "min-links": b.min_links, "ad-select": b.ad_select,
            "arp-interval": b.arp_interval, "arp-ip-targets": list(b.arp_ip_targets),
        })
    if iface.bridge is not None:
        br = iface.bridge
        out["parameters"] = _drop_none({"stp": br.stp, "forward-delay": br.forward_delay,
                                        "priority": br.priority, "hello-time": br.hello_time,
                                        "max-age": br.max_age})
    if iface.vlan is not None:
        out["id"], out["link"] = iface.vlan.id, iface.vlan.link
    return _drop_none(out)


def render(network: Networking) -> list[Rendered]:
    members = masters(network)
    doc: dict[str, Any] = {"version": 2}
    for iface in network.interfaces:
        section = doc.setdefault(SECTIONS[iface.type], {})
        section[iface.name] = _interface(network, iface, iface.name in members)
    return [Rendered(PATH, json.dumps({"network": doc}, indent=2) + "\n", 0o600)]
