"""ifupdown: /etc/network/interfaces.d/50-provision (Debian's interfaces(5) format).

ifupdown knows interfaces only by kernel name, so matched devices are
renamed to their name by a .link file (see :mod:`provision.network.links`).
Bonds use ifenslave's ``bond-*`` options, bridges bridge-utils'
``bridge_*``, VLANs the vlan package's ``vlan-raw-device``; DNS options
need resolvconf in the image. Static routes are ``up``/``down`` commands.
The stage makes sure /etc/network/interfaces sources the directory.
"""

from __future__ import annotations

from provision.config.model import NetInterface, Networking
from provision.network import Rendered, masters, nameservers, ordered

PATH = "/etc/network/interfaces.d/50-provision"
MAIN = "/etc/network/interfaces"
SOURCE_LINE = "source /etc/network/interfaces.d/*"


def kernel_name(iface: NetInterface) -> str:
    return iface.set_name or iface.name


def _options(values: list[tuple[str, object]]) -> list[str]:
    out = []
    for key, value in values:
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "on" if value else "off"
        out.append(f"    {key} {value}")
    return out


def _kind_options(network: Networking, iface: NetInterface) -> list[str]:
    names = {i.name: kernel_name(i) for i in network.interfaces}
    master = masters(network).get(iface.name)
    out = _options([("mtu", iface.mtu), ("hwaddress", f"ether {iface.mac_address}" if iface.mac_address else None)])
    if master is not None and master.type == "bond":
        out += _options([("bond-master", kernel_name(master))])
        if master.bond is not None and master.bond.primary == iface.name:
            out += _options([("bond-primary", kernel_name(iface))])
    if iface.bond is not None:
        b = iface.bond
        out += _options([
            ("bond-slaves", "none"), ("bond-mode", b.mode), ("bond-miimon", b.mii_monitor_interval),
            ("bond-lacp-rate", b.lacp_rate), ("bond-xmit-hash-policy", b.transmit_hash_policy),
            ("bond-updelay", b.up_delay), ("bond-downdelay", b.down_delay), ("bond-min-links", b.min_links),
            ("bond-ad-select", b.ad_select), ("bond-arp-interval", b.arp_interval),
            ("bond-arp-ip-target", ",".join(b.arp_ip_targets)),
        ])
    if iface.bridge is not None or iface.type == "bridge":
        br = iface.bridge
        out += _options([("bridge_ports", " ".join(names[m] for m in iface.members) or "none")])
        if br is not None:
            out += _options([("bridge_stp", br.stp), ("bridge_fd", br.forward_delay),
                             ("bridge_bridgeprio", br.priority), ("bridge_hello", br.hello_time),
                             ("bridge_maxage", br.max_age)])
    if iface.vlan is not None:
        out += _options([("vlan-raw-device", names.get(iface.vlan.link, iface.vlan.link)),
                         ("vlan-id", iface.vlan.id)])
    return out


def _routes(iface: NetInterface, family: int) -> list[str]:
    out = []
    for route in iface.routes:
        if (":" in (route.via or route.to)) != (family == 6):
            continue
        spec = " ".join(filter(None, [
            route.to, f"via {route.via}" if route.via else "", f"metric {route.metric}" if route.metric else "",
            f"table {route.table}" if route.table else "", "onlink" if route.on_link else "",
        ]))
        flag = "-6 " if family == 6 else ""
        out += [f"    up ip {flag}route add {spec} dev {kernel_name(iface)}",
                f"    down ip {flag}route del {spec} dev {kernel_name(iface)} || true"]
    return out


def stanzas(network: Networking, iface: NetInterface) -> list[str]:
    name = kernel_name(iface)
    allow = "allow-hotplug" if iface.optional else "auto"
    out = [f"{allow} {name}"]
    extra = _kind_options(network, iface)
    if iface.name in masters(network):
        return [*out, f"iface {name} inet manual", *extra, ""]
    v4 = [a for a in iface.addresses if ":" not in a]
    v6 = [a for a in iface.addresses if ":" in a]
    servers, search = nameservers(network, iface)
    dns = _options([("dns-nameservers", " ".join(servers)), ("dns-search", " ".join(search))])
    if iface.dhcp4:
        out += [f"iface {name} inet dhcp", *extra, *dns, *_routes(iface, 4)]
        out += [f"    up ip addr add {a} dev {name}" for a in v4]  # static ones next to the lease
    elif v4:
        out += [f"iface {name} inet static", *_options([("address", v4[0]), ("gateway", iface.gateway4)]),
                *extra, *dns, *_routes(iface, 4)]
        out += [f"    up ip addr add {a} dev {name}" for a in v4[1:]]
    else:
        out += [f"iface {name} inet manual", *extra, *(dns if not (v6 or iface.dhcp6) else []), *_routes(iface, 4)]
    if iface.dhcp6:
        out += [f"iface {name} inet6 dhcp", *_routes(iface, 6)]
        out += [f"    up ip -6 addr add {a} dev {name}" for a in v6]
    elif v6:
        out += [f"iface {name} inet6 static", *_options([("address", v6[0]), ("gateway", iface.gateway6)]),
                *_routes(iface, 6)]
        out += [f"    up ip -6 addr add {a} dev {name}" for a in v6[1:]]
    elif iface.accept_ra:
        out += [f"iface {name} inet6 auto", *_routes(iface, 6)]
    return [*out, ""]


def render(network: Networking) -> list[Rendered]:
    lines = ["# Written by provision from the config's network section."]
    # Members and VLAN parents first: ifup -a brings interfaces up in file order.
    for iface in ordered(network):
        lines += stanzas(network, iface)
    return [Rendered(PATH, "\n".join(lines) + "\n")]
