"""NetworkManager keyfiles, one connection per interface (mode 0600: NetworkManager ignores others).

Connection ids are ``provision-<name>`` and uuids derived from the name, so a
rerun writes the same files. Bond and bridge members name their controller
by its uuid; a VLAN names its parent by uuid too (the parent may be matched
by MAC address, with no fixed interface name).
"""

from __future__ import annotations

import uuid

from provision.config.model import NetInterface, Networking
from provision.network import Rendered, device_name, file_name, masters, nameservers

DIR = "/etc/NetworkManager/system-connections"
NAMESPACE = uuid.UUID("5b1c1f5e-3a0e-4c64-9a57-2f5d1f0b6c11")  # provision's, fixed
TYPES = {"ethernet": "ethernet", "bond": "bond", "vlan": "vlan", "bridge": "bridge"}


def connection_uuid(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def _section(title: str, values: list[tuple[str, object]]) -> list[str]:
    lines = [f"[{title}]"]
    for key, value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"{key}={value}")
    return [*lines, ""]


def _ipv4(network: Networking, iface: NetInterface) -> list[tuple[str, object]]:
    addresses = [a for a in iface.addresses if ":" not in a]
    method = "auto" if iface.dhcp4 else "manual" if addresses else "disabled"
    return _ip(network, iface, method, addresses, iface.gateway4, 4)


def _ipv6(network: Networking, iface: NetInterface) -> list[tuple[str, object]]:
    addresses = [a for a in iface.addresses if ":" in a]
    if iface.dhcp6 or iface.accept_ra:
        method = "auto"
    elif addresses:
        method = "manual"
    else:
        method = "ignore" if iface.accept_ra is None else "disabled"
    return _ip(network, iface, method, addresses, iface.gateway6, 6)


def _ip(network: Networking, iface: NetInterface, method: str, addresses: list[str], gateway: str | None,
        family: int) -> list[tuple[str, object]]:
    values: list[tuple[str, object]] = [(f"address{n}", a) for n, a in enumerate(addresses, 1)]
    values.append(("gateway", gateway))
    servers, search = nameservers(network, iface)
    mine = [s for s in servers if (":" in s) == (family == 6)]
    if mine:
        values.append(("dns", ";".join(mine) + ";"))
    if search and family == 4:
        values.append(("dns-search", ";".join(search) + ";"))
    routes = [r for r in iface.routes if (":" in (r.via or r.to)) == (family == 6)]
    for n, route in enumerate(routes, 1):
        to = ("::/0" if family == 6 else "0.0.0.0/0") if route.to == "default" else route.to
        unspecified = "::" if family == 6 else "0.0.0.0"  # no gateway, but a metric follows
        parts = [to, *([route.via or unspecified] if route.via or route.metric is not None else [])]
        if route.metric is not None:
            parts.append(str(route.metric))
        values.append((f"route{n}", ",".join(parts)))
        options = [f"table={route.table}"] if route.table else []
        if route.on_link:
            options.append("onlink=true")
        if options:
            values.append((f"route{n}_options", ",".join(options)))
    return [("method", method), *values]


def keyfile(network: Networking, iface: NetInterface) -> str:
    master = masters(network).get(iface.name)
    name = device_name(iface)
    connection: list[tuple[str, object]] = [
        ("id", f"provision-{iface.name}"), ("uuid", connection_uuid(iface.name)), ("type", TYPES[iface.type]),
        ("interface-name", name if name else None), ("autoconnect", True),
    ]
    if master is not None:
        connection += [("master", connection_uuid(master.name)), ("slave-type", master.type)]
    if iface.optional:
        connection.append(("wait-device-timeout", 0))
    out = _section("connection", connection)
    if iface.match is not None and not iface.set_name and (iface.match.name or iface.match.driver):
        out += _section("match", [("interface-name", iface.match.name), ("driver", iface.match.driver)])
    if iface.type == "ethernet":
        mac = iface.match.mac_address if iface.match else None
        out += _section("ethernet", [("mac-address", mac.upper() if mac else None), ("mtu", iface.mtu),
                                     ("cloned-mac-address", iface.mac_address)])
    elif iface.mtu is not None or iface.mac_address is not None:
        out += _section("ethernet", [("mtu", iface.mtu), ("cloned-mac-address", iface.mac_address)])
    if iface.bond is not None:
        b = iface.bond
        out += _section("bond", [
            ("mode", b.mode), ("miimon", b.mii_monitor_interval), ("lacp_rate", b.lacp_rate),
            ("xmit_hash_policy", b.transmit_hash_policy), ("primary", b.primary), ("updelay", b.up_delay),
            ("downdelay", b.down_delay), ("min_links", b.min_links), ("ad_select", b.ad_select),
            ("arp_interval", b.arp_interval), ("arp_ip_target", ",".join(b.arp_ip_targets) or None),
        ])
    if iface.vlan is not None:
        out += _section("vlan", [("id", iface.vlan.id), ("parent", connection_uuid(iface.vlan.link))])
    if iface.bridge is not None:
        br = iface.bridge
        out += _section("bridge", [("stp", br.stp), ("forward-delay", br.forward_delay),
                                   ("priority", br.priority), ("hello-time", br.hello_time),
                                   ("max-age", br.max_age)])
    if master is None:
        out += _section("ipv4", _ipv4(network, iface))
        out += _section("ipv6", _ipv6(network, iface))
    return "\n".join(out)


def render(network: Networking) -> list[Rendered]:
    return [
        Rendered(f"{DIR}/provision-{file_name(i.name)}.nmconnection", keyfile(network, i), 0o600)
        for i in network.interfaces
    ]
