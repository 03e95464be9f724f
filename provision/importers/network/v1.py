"""cloud-init network config version 1 (a list of typed entries) into the network section.

``physical`` entries are matched by MAC address when they have one (and
renamed to their name, as cloud-init does), ``bond``, ``vlan`` and ``bridge``
entries become interfaces of that type, ``nameserver`` entries system-wide
DNS, and ``route`` entries routes on the interface whose subnet holds the
gateway. Subnets fold into the interface: dhcp4/dhcp6 flags, static
addresses (``address`` with a prefix or a ``netmask``), gateways, routes and
DNS.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.network import INTERFACES, Sink, add_nameservers

KINDS = {"physical": "ethernet", "bond": "bond", "vlan": "vlan", "bridge": "bridge"}
DHCP4 = {"dhcp", "dhcp4"}
DHCP6 = {"dhcp6", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless"}
SLAAC = {"ipv6_slaac", "ipv6_dhcpv6-stateless"}
STATIC = {"static", "static6"}

BOND_PARAMS = {
    "bond-mode": "mode", "bond-miimon": "miiMonitorInterval", "bond-lacp-rate": "lacpRate",
    "bond-xmit-hash-policy": "transmitHashPolicy", "bond-primary": "primary", "bond-updelay": "upDelay",
    "bond-downdelay": "downDelay", "bond-min-links": "minLinks", "bond-ad-select": "adSelect",
    "bond-arp-interval": "arpInterval", "bond-arp-ip-target": "arpIpTargets",
}
BRIDGE_PARAMS = {
    "bridge_stp": "stp", "bridge_fd": "forwardDelay", "bridge_bridgeprio": "priority",
    "bridge_hello": "helloTime", "bridge_maxage": "maxAge",
}
INTEGERS = {"miiMonitorInterval", "upDelay", "downDelay", "minLinks", "arpInterval", "forwardDelay",
            "priority", "helloTime", "maxAge"}


def prefix_of(netmask: str) -> int | None:
    """255.255.255.0 -> 24 (also accepts a bare prefix length); None for a non-contiguous mask."""
    import ipaddress

    try:
        return ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        try:
            return ipaddress.ip_network(f"::/{netmask}").prefixlen
        except ValueError:
            return None


def with_prefix(sink: Sink, address: str, netmask: Any, where: ConfigPath) -> str | None:
    if "/" in address:
        return address
    if netmask is None:
        # cloud-init's default for a bare address: a host route (/32, /128 for IPv6)... we ask instead.
        sink.bad(f"address {address!r} has no prefix length or netmask", where, "write 192.0.2.10/24, or add netmask")
        return None
    prefix = prefix_of(str(netmask))
    if prefix is None:
        sink.bad(f"netmask {netmask!r} is not a valid netmask", where)
        return None
    return f"{address}/{prefix}"


def route_entry(sink: Sink, route: Any, where: ConfigPath) -> dict[str, Any] | None:
    """A v1 route: destination (CIDR) or network + netmask, gateway, metric."""
    if not isinstance(route, dict):
        sink.bad("a route must be a mapping", where)
        return None
    destination = route.get("destination") or route.get("network")
    if destination is None:
        sink.bad("a route needs destination or network", where)
        return None
    destination = str(destination)
    if "/" not in destination:
        prefixed = with_prefix(sink, destination, route.get("netmask", route.get("prefix")), where)
        if prefixed is None:
            return None
        destination = prefixed
    if destination in ("0.0.0.0/0", "::/0"):
        destination = "default" if route.get("gateway") else destination
    out: dict[str, Any] = {"to": destination}
    if route.get("gateway"):
        out["via"] = str(route["gateway"])
    if route.get("metric") is not None:
        out["metric"] = int(route["metric"])
    for key in route:
        if key not in ("destination", "network", "netmask", "prefix", "gateway", "metric", "type"):
            sink.warn(f"route key {key!r} is not supported", (*where, key), at_key=True)
    return out


def _subnet(sink: Sink, entry: dict[str, Any], subnet: Any, where: ConfigPath) -> None:
    if not isinstance(subnet, dict):
        sink.bad("a subnet must be a mapping", where)
        return
    kind = subnet.get("type")
    if kind in DHCP4:
        entry["dhcp4"] = True
    elif kind in DHCP6:
        entry["dhcp6"] = True
    elif kind in STATIC:
        address = subnet.get("address")
        if address is None:
            sink.bad("a static subnet needs address", where)
            return
        addresses = address if isinstance(address, list) else [address]
        for one in addresses:
            full = with_prefix(sink, str(one), subnet.get("netmask", subnet.get("prefix")), (*where, "address"))
            if full is not None:
                entry.setdefault("addresses", []).append(full)
        if subnet.get("gateway"):
            gateway = str(subnet["gateway"])
            entry["gateway6" if ":" in gateway else "gateway4"] = gateway
    elif kind == "manual":
        pass  # link up, no addresses
    elif kind not in SLAAC:
        sink.bad(f"subnet type {kind!r} is not supported", (*where, "type"),
                 "dhcp, dhcp4, dhcp6, static, static6, manual, ipv6_slaac, ipv6_dhcpv6-*")
        return
    if kind in SLAAC:
        entry["acceptRa"] = True
    for j, route in enumerate(subnet.get("routes") or []):
        made = route_entry(sink, route, (*where, "routes", j))
        if made is not None:
            entry.setdefault("routes", []).append(made)
    servers = subnet.get("dns_nameservers") or []
    search = subnet.get("dns_search") or []
    if servers or search:
        known = entry.setdefault("nameservers", {})
        known.setdefault("addresses", []).extend(servers if isinstance(servers, list) else [servers])
        known.setdefault("search", []).extend(search if isinstance(search, list) else [search])
    for key in subnet:
        if key not in ("type", "address", "netmask", "prefix", "gateway", "routes", "dns_nameservers",
                       "dns_search", "control"):
            sink.warn(f"subnet key {key!r} is not supported", (*where, key), at_key=True)


def _params(sink: Sink, params: Any, table: dict[str, str], where: ConfigPath) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        name = table.get(key) or table.get(key.replace("_", "-")) or table.get(key.replace("-", "_"))
        if name is None:
            sink.warn(f"parameter {key!r} is not supported", (*where, key), at_key=True)
            continue
        if name in INTEGERS and isinstance(value, str) and value.isdigit():
            value = int(value)
        if name == "stp" and isinstance(value, str):
            value = value.lower() in ("on", "yes", "true", "1")
        if name == "arpIpTargets" and isinstance(value, str):
            value = value.split()
        out[name] = value
    return out


KNOWN_KEYS = {"type", "name", "mac_address", "mtu", "subnets", "bond_interfaces", "params",
              "vlan_link", "vlan_id", "bridge_interfaces", "accept-ra"}


def _interface(sink: Sink, item: dict[str, Any], where: ConfigPath) -> None:
    kind = KINDS[item["type"]]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        sink.bad(f"a {item['type']} entry needs a name", where)
        return
    entry: dict[str, Any] = {"name": name, "type": kind}
    mac = item.get("mac_address")
    if mac is not None:
        if kind == "ethernet":
            # cloud-init renames the device with this MAC to the entry's name.
            entry["match"] = {"macAddress": str(mac).lower()}
            entry["setName"] = name
        else:
            entry["macAddress"] = str(mac).lower()
    if item.get("mtu") is not None:
        entry["mtu"] = int(item["mtu"])
    if "accept-ra" in item:
        entry["acceptRa"] = bool(item["accept-ra"])
    if kind == "bond":
        entry["members"] = item.get("bond_interfaces") or []
        entry["bond"] = _params(sink, item.get("params"), BOND_PARAMS, (*where, "params"))
    elif kind == "bridge":
        entry["members"] = item.get("bridge_interfaces") or []
        entry["bridge"] = _params(sink, item.get("params"), BRIDGE_PARAMS, (*where, "params"))
    elif kind == "vlan":
        if item.get("vlan_id") is None or item.get("vlan_link") is None:
            sink.bad("a vlan entry needs vlan_id and vlan_link", where)
            return
        entry["vlan"] = {"id": int(item["vlan_id"]), "link": item["vlan_link"]}
    elif item.get("params"):
        sink.warn("params of a physical entry are not supported", (*where, "params"), at_key=True)
    for j, subnet in enumerate(item.get("subnets") or []):
        _subnet(sink, entry, subnet, (*where, "subnets", j))
    for key in item:
        if key not in KNOWN_KEYS:
            sink.warn(f"{item['type']} key {key!r} is not supported", (*where, key), at_key=True)
    sink.add(INTERFACES, entry, where)


def _global_route(sink: Sink, item: dict[str, Any], where: ConfigPath) -> None:
    """A top-level route goes to the interface whose static subnet contains its gateway."""
    import ipaddress

    route = route_entry(sink, item, where)
    if route is None:
        return
    interfaces = sink.spec.get("network", {}).get("interfaces", [])
    via = route.get("via")
    for entry in interfaces:
        for address in entry.get("addresses", []):
            try:
                if via and ipaddress.ip_address(via) in ipaddress.ip_interface(address).network:
                    entry.setdefault("routes", []).append(route)
                    return
            except ValueError:
                continue
    sink.bad("no interface has a static subnet that holds this route's gateway", where,
             "put the route in the subnet's routes instead")


def translate(sink: Sink, value: dict[str, Any], where: ConfigPath) -> None:
    config = value.get("config")
    for key in value:
        if key not in ("version", "config"):
            sink.warn(f"network key {key!r} is not supported", (*where, key), at_key=True)
    if not isinstance(config, list):
        sink.bad("network config version 1 needs config: a list of entries", (*where, "config"))
        return
    routes = []
    for j, item in enumerate(config):
        at = (*where, "config", j)
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(item, dict):
            sink.bad("a config entry must be a mapping", at)
        elif kind in KINDS:
            _interface(sink, item, at)
        elif kind == "nameserver":
            addresses, search = item.get("address") or [], item.get("search") or []
            add_nameservers(sink, addresses if isinstance(addresses, list) else [addresses],
                            search if isinstance(search, list) else [search])
            if item.get("interface"):
                sink.warn("nameserver interface is not supported: the servers apply system-wide",
                          (*at, "interface"), at_key=True)
        elif kind == "route":
            routes.append((item, at))  # after every interface: it attaches to one by its gateway
        else:
            sink.bad(f"config entry type {kind!r} is not supported", (*at, "type") if kind else at,
                     "physical, bond, vlan, bridge, nameserver or route")
    for item, at in routes:
        _global_route(sink, item, at)
