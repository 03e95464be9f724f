"""systemd-networkd: a .network file per interface, a .netdev per bond, VLAN and bridge.

Files are /etc/systemd/network/10-provision-<name>.{network,netdev}, so they
come before the image's own (networkd uses the first .network that matches
a device). System-wide DNS goes to a resolved.conf drop-in.
"""

from __future__ import annotations

from provision.config.model import NetInterface, Networking
from provision.network import Rendered, file_name, masters, nameservers, vlans_on

DIR = "/etc/systemd/network"
RESOLVED_DROPIN = "/etc/systemd/resolved.conf.d/10-provision.conf"


def _section(title: str, values: list[tuple[str, object]]) -> list[str]:
    lines = [f"[{title}]"]
    for key, value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"{key}={value}")
    return [*lines, ""] if len(lines) > 1 else []


def _match(iface: NetInterface) -> list[tuple[str, object]]:
    if iface.set_name or iface.match is None:
        return [("Name", iface.set_name or iface.name)]
    match = iface.match
    out: list[tuple[str, object]] = [("MACAddress", match.mac_address), ("Driver", match.driver),
                                     ("Name", match.name)]
    if match.mac_address and iface.type == "ethernet":
        # A bond takes its first member's MAC; match physical devices only.
        out.append(("Type", "ether"))
    return out


def _dhcp(iface: NetInterface) -> str:
    return {(True, True): "yes", (True, False): "ipv4", (False, True): "ipv6"}.get(
        (iface.dhcp4, iface.dhcp6), "no")


def network_file(network: Networking, iface: NetInterface) -> str:
    master = masters(network).get(iface.name)
    out = _section("Match", _match(iface))
    out += _section("Link", [("MTUBytes", iface.mtu), ("MACAddress", iface.mac_address),
                             ("RequiredForOnline", False if iface.optional else None)])
    values: list[tuple[str, object]] = []
    if master is not None:
        values.append(("Bond" if master.type == "bond" else "Bridge", master.name))
        if master.bond is not None and master.bond.primary == iface.name:
            values.append(("PrimarySlave", True))
    else:
        servers, search = nameservers(network, iface)
        values.append(("DHCP", _dhcp(iface)))
        values += [("Address", a) for a in iface.addresses]
        values += [("Gateway", g) for g in (iface.gateway4, iface.gateway6)]
        values += [("DNS", s) for s in servers]
        if search:
            values.append(("Domains", " ".join(search)))
        values.append(("IPv6AcceptRA", iface.accept_ra))
        if not iface.addresses and not iface.dhcp4 and not iface.dhcp6:
            values.append(("LinkLocalAddressing", "no" if iface.accept_ra is None else "ipv6"))
    values += [("VLAN", v.name) for v in vlans_on(network, iface.name)]
    if master is None and (iface.type in ("bond", "bridge") or vlans_on(network, iface.name)):
        values.append(("ConfigureWithoutCarrier", True))
    out += _section("Network", values)
    for route in iface.routes:
        out += _section("Route", [
            ("Destination", None if route.to == "default" else route.to), ("Gateway", route.via),
            ("Metric", route.metric), ("Table", route.table), ("GatewayOnLink", True if route.on_link else None),
        ])
    return "\n".join(out)


def _seconds(ms: int | None) -> str | None:
    return None if ms is None else f"{ms}ms"


def netdev_file(iface: NetInterface) -> str:
    out = _section("NetDev", [("Name", iface.name), ("Kind", iface.type), ("MTUBytes", iface.mtu),
                              ("MACAddress", iface.mac_address)])
    if iface.bond is not None:
        bond = iface.bond
        out += _section("Bond", [
            ("Mode", bond.mode), ("MIIMonitorSec", _seconds(bond.mii_monitor_interval)),
            ("LACPTransmitRate", bond.lacp_rate), ("TransmitHashPolicy", bond.transmit_hash_policy),
            ("UpDelaySec", _seconds(bond.up_delay)), ("DownDelaySec", _seconds(bond.down_delay)),
            ("MinLinks", bond.min_links), ("AdSelect", bond.ad_select),
            ("ARPIntervalSec", _seconds(bond.arp_interval)),
            ("ARPIPTargets", " ".join(bond.arp_ip_targets) or None),
        ])
    if iface.vlan is not None:
        out += _section("VLAN", [("Id", iface.vlan.id)])
    if iface.bridge is not None:
        bridge = iface.bridge
        out += _section("Bridge", [
            ("STP", bridge.stp), ("ForwardDelaySec", bridge.forward_delay), ("Priority", bridge.priority),
            ("HelloTimeSec", bridge.hello_time), ("MaxAgeSec", bridge.max_age),
        ])
    return "\n".join(out)


def render(network: Networking) -> list[Rendered]:
    out = []
    for iface in network.interfaces:
        stem = f"{DIR}/10-provision-{file_name(iface.name)}"
        if iface.type != "ethernet":
            out.append(Rendered(stem + ".netdev", netdev_file(iface)))
        out.append(Rendered(stem + ".network", network_file(network, iface)))
    dns = network.nameservers
    if dns.addresses or dns.search:
        lines = ["[Resolve]"]
        if dns.addresses:
            lines.append("DNS=" + " ".join(dns.addresses))
        if dns.search:
            lines.append("Domains=" + " ".join(dns.search))
        out.append(Rendered(RESOLVED_DROPIN, "\n".join(lines) + "\n"))
    return out
