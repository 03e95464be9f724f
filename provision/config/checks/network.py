"""Checks on the network section: addresses, references between interfaces, VLAN ids.

The schema has checked shapes; here addresses are parsed (``ipaddress`` is
imported only when a config has a network section: it costs start-up time),
member and link names are resolved against the interfaces list, and settings
that belong to another interface type are refused rather than ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from provision.config import model
from provision.config.checks._common import describe, duplicate_errors
from provision.diagnostics import ConfigPath, Diagnostic, error, warning

if TYPE_CHECKING:
    import ipaddress

MAC_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
# Linux interface names: at most 15 bytes, no "/", no whitespace, not "." or "..".
NAME_PATTERN = r"^[^/\s:]{1,15}$"
GLOB_CHARACTERS = "*?["

Where = tuple[str | int, ...]


def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    import ipaddress

    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def parse_interface_address(value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """An address with its prefix length (192.0.2.10/24); None when it is not one."""
    import ipaddress

    if "/" not in value:
        return None
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        return None


def _base(i: int) -> Where:
    return ("network", "interfaces", i)


def check_names(config: model.Config) -> Iterator[Diagnostic]:
    interfaces = config.network.interfaces
    yield from duplicate_errors(
        ((iface.name, (*_base(i), "name")) for i, iface in enumerate(interfaces)), "interface name"
    )
    yield from duplicate_errors(
        ((iface.set_name, (*_base(i), "setName")) for i, iface in enumerate(interfaces) if iface.set_name),
        "setName",
    )
    for i, iface in enumerate(interfaces):
        for key, name in (("name", iface.name), ("setName", iface.set_name)):
            if name is None:
                continue
            if not re.match(NAME_PATTERN, name) or name in (".", ".."):
                yield error(f"{name!r} is not a valid interface name", (*_base(i), key),
                            "at most 15 characters, no '/', ':' or whitespace")
            elif key == "name" and iface.match is None and any(c in name for c in GLOB_CHARACTERS):
                yield error("a glob pattern in name matches nothing without match", (*_base(i), "name"),
                            f'put the pattern in match.name: {{"name": "eth", "match": {{"name": "{name}"}}}}')


def _wrong_type(iface: model.NetInterface, i: int) -> Iterator[Diagnostic]:
    """Settings of one interface type given on another: refused, never ignored."""
    owners = {"bond": "bond", "vlan": "vlan", "bridge": "bridge"}
    for key, kind in owners.items():
        if getattr(iface, key) is not None and iface.type != kind:
            yield error(f"{key} settings on an interface of type {iface.type}", (*_base(i), key),
                        f'set "type": "{kind}", or remove {key}')
    if iface.members and iface.type not in ("bond", "bridge"):
        yield error(f"members on an interface of type {iface.type}", (*_base(i), "members"),
                    "only bonds and bridges have members")
    for key, value in (("match", iface.match), ("setName", iface.set_name)):
        if value is not None and iface.type != "ethernet":
            yield error(f"{key} on an interface of type {iface.type}", (*_base(i), key),
                        "only physical (ethernet) interfaces are matched and renamed")
    if iface.set_name is not None and iface.match is None:
        yield error("setName needs match (which device to rename)", (*_base(i), "setName"))
    if iface.type == "vlan" and iface.vlan is None:
        yield error("an interface of type vlan needs vlan settings (id and link)", _base(i),
                    '"vlan": {"id": 100, "link": "eth0"}')
    if iface.type == "bond" and not iface.members:
        yield warning("bond without members", (*_base(i), "members"))


def check_types(config: model.Config) -> Iterator[Diagnostic]:
    for i, iface in enumerate(config.network.interfaces):
        yield from _wrong_type(iface, i)
        if iface.vlan is not None and not 1 <= iface.vlan.id <= 4094:
            yield error(f"VLAN id {iface.vlan.id} is reserved", (*_base(i), "vlan", "id"),
                        "VLAN ids are 1 to 4094")
        if iface.match is not None and not (iface.match.name or iface.match.mac_address or iface.match.driver):
            yield error("match needs name, macAddress or driver", (*_base(i), "match"))


def check_references(config: model.Config) -> Iterator[Diagnostic]:
    interfaces = config.network.interfaces
    by_name = {iface.name: iface for iface in interfaces}
    master_of: dict[str, int] = {}  # member name -> index of its bond or bridge
    for i, iface in enumerate(interfaces):
        for j, member in enumerate(iface.members):
            where = (*_base(i), "members", j)
            target = by_name.get(member)
            if target is None:
                yield error(f"unknown interface {member!r}", where,
                            "members name entries of network.interfaces")
                continue
            if member == iface.name:
                yield error("an interface cannot be its own member", where)
                continue
            if iface.type == "bond" and target.type not in ("ethernet",):
                yield error(f"bond member {member!r} is a {target.type}", where,
                            "bond members are physical (ethernet) interfaces")
            if member in master_of:
                yield error(f"{member!r} is already a member of {describe(_base(master_of[member]))}", where)
            else:
                master_of[member] = i
        if iface.vlan is not None:
            link = by_name.get(iface.vlan.link)
            if link is None:
                yield error(f"unknown interface {iface.vlan.link!r}", (*_base(i), "vlan", "link"),
                            "link names an entry of network.interfaces")
            elif link.name == iface.name or link.type == "vlan":
                yield error("a VLAN is on a physical interface, a bond or a bridge",
                            (*_base(i), "vlan", "link"))
        if iface.bond is not None and iface.bond.primary is not None and iface.bond.primary not in iface.members:
            yield error(f"primary {iface.bond.primary!r} is not a member of this bond",
                        (*_base(i), "bond", "primary"))
    for i, iface in enumerate(interfaces):
        master = master_of.get(iface.name)
        if master is not None and (iface.addresses or iface.dhcp4 or iface.dhcp6):
            yield warning(f"{iface.name!r} is a member of {interfaces[master].name!r}; "
                          "its own addresses and DHCP are not used", _base(i),
                          "configure addresses on the bond or bridge")


def _addresses(iface: model.NetInterface, i: int) -> Iterator[Diagnostic]:
    for j, value in enumerate(iface.addresses):
        if parse_interface_address(value) is None:
            yield error(f"{value!r} is not an address with a prefix length", (*_base(i), "addresses", j),
                        "e.g. 192.0.2.10/24 or 2001:db8::10/64")
    for key, version in (("gateway4", 4), ("gateway6", 6)):
        value = getattr(iface, key)
        if value is None:
            continue
        address = parse_address(value)
        if address is None or address.version != version:
            yield error(f"{value!r} is not an IPv{version} address", (*_base(i), key))
    yield from _nameservers(iface.nameservers, (*_base(i), "nameservers"))


def _route(route: model.NetRoute, where: ConfigPath) -> Iterator[Diagnostic]:
    import ipaddress

    family = None
    if route.to != "default":
        try:
            family = ipaddress.ip_network(route.to, strict=True).version
        except ValueError:
            hint = "a network in CIDR notation (10.0.0.0/8) or \"default\""
            loose = parse_interface_address(route.to)
            if loose is not None:
                hint = f"did you mean {loose.network}?"
            yield error(f"{route.to!r} is not a network in CIDR notation", (*where, "to"), hint)
            return
    if route.via is not None:
        via = parse_address(route.via)
        if via is None:
            yield error(f"{route.via!r} is not an address", (*where, "via"))
        elif family is not None and via.version != family:
            yield error(f"gateway {route.via} is IPv{via.version}, the destination IPv{family}", (*where, "via"))
    elif route.to == "default":
        yield error("a default route needs via (its gateway)", where)


def _nameservers(servers: model.NameServers, where: ConfigPath) -> Iterator[Diagnostic]:
    for j, value in enumerate(servers.addresses):
        if parse_address(value) is None:
            yield error(f"{value!r} is not an IP address", (*where, "addresses", j))
    for j, domain in enumerate(servers.search):
        if not domain or any(c.isspace() for c in domain) or "/" in domain:
            yield error(f"{domain!r} is not a domain name", (*where, "search", j))


def check_addresses(config: model.Config) -> Iterator[Diagnostic]:
    network = config.network
    for i, iface in enumerate(network.interfaces):
        yield from _addresses(iface, i)
        for j, route in enumerate(iface.routes):
            yield from _route(route, (*_base(i), "routes", j))
        for key, value in (("macAddress", iface.mac_address),
                           ("match", iface.match.mac_address if iface.match else None)):
            if value is not None and not re.match(MAC_PATTERN, value):
                path = (*_base(i), "match", "macAddress") if key == "match" else (*_base(i), key)
                yield error(f"{value!r} is not a MAC address", path, "six hex pairs: 52:54:00:12:34:56")
    yield from _nameservers(network.nameservers, ("network", "nameservers"))
    # The same host address twice is a conflict however it is spelled.
    yield from duplicate_errors(
        (
            (parsed.ip, (*_base(i), "addresses", j))
            for i, iface in enumerate(network.interfaces)
            for j, value in enumerate(iface.addresses)
            if (parsed := parse_interface_address(value)) is not None
        ),
        "address",
    )
    for i, iface in enumerate(network.interfaces):
        for j, value in enumerate(iface.bond.arp_ip_targets if iface.bond else ()):
            target = parse_address(value)
            if target is None or target.version != 4:
                yield error(f"{value!r} is not an IPv4 address", (*_base(i), "bond", "arpIpTargets", j))


CHECKS = (check_names, check_types, check_references, check_addresses)
