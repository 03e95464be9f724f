"""Network settings on the kernel command line, as a ``network`` section (spec dict).

The forms dracut documents (dracut.cmdline(7)) and the kernel's own
(nfsroot: ``ip=client:server:gw:netmask:hostname:device:autoconf:dns0:dns1``):

``ip=dhcp`` / ``ip=on`` / ``ip=any`` / ``ip=dhcp6`` / ``ip=auto6``
    every interface dynamic; ``ip=off`` / ``ip=none``: no network from here
``ip=<interface>:<autoconf>[:[<mtu>][:<macaddr>]]``
    one interface dynamic
``ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<hostname>:<interface>:<autoconf>[:[<mtu>][:<macaddr>]]``
``ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<hostname>:<interface>:<autoconf>[:[<dns1>][:<dns2>]]``
    one interface static (autoconf none/off); IPv6 addresses in brackets,
    the netmask dotted or a prefix length; no interface: the first Ethernet
``nameserver=<IP>``
    a DNS server (repeatable)
``rd.route=<net>/<prefix>:<gateway>[:<interface>]``
    a static route
``ifname=<interface>:<MAC>``
    the interface named so in ip= and rd.route= is the one with this MAC

Pure parsing: nothing here touches a device. The result is checked like any
config's network section by :mod:`provision.boot.initnet`.
"""

from __future__ import annotations

import re
from typing import Any

from provision.platforms.cmdline import split_cmdline

DHCP4 = {"dhcp", "on", "any", "bootp", "single-dhcp", "either6"}
DHCP6 = {"dhcp6"}
RA = {"auto6", "link6"}
STATIC = {"none", "off", ""}
# Configured by the initramfs itself from firmware tables: for us, as dynamic as DHCP.
FIRMWARE = {"ibft"}
MAC = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
FIRST_ETHERNET = "*"  # match.name of an ip= without an interface: the first Ethernet device


class KernelNetError(ValueError):
    """A network argument on the kernel command line that cannot be understood."""


def split_fields(value: str) -> list[str]:
    """Split at colons, keeping [bracketed IPv6 addresses] whole (brackets removed)."""
    fields: list[str] = []
    current: list[str] = []
    bracket = False
    for char in value:
        if char == "[" and not bracket:
            bracket = True
        elif char == "]" and bracket:
            bracket = False
        elif char == ":" and not bracket:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    if bracket:
        raise KernelNetError(f"unclosed '[' in {value!r}")
    fields.append("".join(current))
    return fields


def _prefix(netmask: str) -> int:
    from provision.importers.network.v1 import prefix_of

    found = prefix_of(netmask) if netmask else None
    if found is None:
        raise KernelNetError(f"{netmask!r} is not a netmask or prefix length")
    return found


def _autoconf(entry: dict[str, Any], mode: str, arg: str) -> None:
    if mode in DHCP4 or mode in FIRMWARE:
        entry["dhcp4"] = True
    elif mode in DHCP6:
        entry["dhcp6"] = True
    elif mode in RA:
        entry["acceptRa"] = True
    elif mode not in STATIC:
        raise KernelNetError(f"{arg}: unknown autoconf method {mode!r}")


def _tail(entry: dict[str, Any], tail: list[str], servers: list[str]) -> None:
    """After autoconf: ``mtu[:mac]`` or ``dns1[:dns2]``."""
    if not tail:
        return
    head, rest = tail[0], ":".join(tail[1:])
    if head.isdigit() or (head == "" and re.match(MAC, rest)):
        if head:
            entry["mtu"] = int(head)
        if rest:
            if not re.match(MAC, rest):
                raise KernelNetError(f"{rest!r} is not a MAC address")
            entry["macAddress"] = rest.lower()
        return
    servers.extend(s for s in tail[:2] if s)


def _interface(device: str, ifnames: dict[str, str], number: int) -> dict[str, Any]:
    if not device:
        return {"name": f"ip{number}", "match": {"name": FIRST_ETHERNET}}
    mac = ifnames.get(device)
    if mac is not None:
        return {"name": device, "match": {"macAddress": mac}}
    return {"name": device}


def parse_ip(value: str, ifnames: dict[str, str], number: int, servers: list[str]) -> dict[str, Any] | None:
    """One ``ip=`` value as an interface entry; None for ip=off/none."""
    arg = f"ip={value}"
    if value in ("off", "none"):
        return None
    if value in DHCP4 | DHCP6 | RA:
        entry = _interface("", ifnames, number)
        _autoconf(entry, value, arg)
        return entry
    fields = split_fields(value)
    if len(fields) in (2, 3, 4) and "." not in fields[0] and fields[1] in DHCP4 | DHCP6 | RA | FIRMWARE:
        entry = _interface(fields[0], ifnames, number)
        _autoconf(entry, fields[1], arg)
        _tail(entry, fields[2:], servers)
        return entry
    if len(fields) < 7:
        fields += [""] * (7 - len(fields))
    client, _peer, gateway, netmask, _hostname, device, mode = fields[:7]
    entry = _interface(device, ifnames, number)
    _autoconf(entry, mode, arg)
    if client:
        if "/" in client:
            entry["addresses"] = [client]
        else:
            default = "128" if ":" in client else ""
            entry["addresses"] = [f"{client}/{_prefix(netmask or default)}"]
    elif mode in STATIC:
        raise KernelNetError(f"{arg}: a static configuration needs the client address")
    if gateway:
        entry["gateway6" if ":" in gateway else "gateway4"] = gateway
    _tail(entry, fields[7:], servers)
    return entry


def _route(value: str) -> tuple[dict[str, Any], str]:
    fields = split_fields(value)
    if len(fields) < 2 or not fields[0] or not fields[1]:
        raise KernelNetError(f"rd.route={value}: expected <net>/<prefix>:<gateway>[:<interface>]")
    return {"to": fields[0], "via": fields[1]}, (fields[2] if len(fields) > 2 else "")


def network_from_cmdline(cmdline: str) -> dict[str, Any] | None:
    """The network section the kernel command line asks for; None when it says nothing about the network."""
    words = [w.partition("=") for w in split_cmdline(cmdline.partition(" -- ")[0])]
    ifnames: dict[str, str] = {}
    for key, _, value in words:
        if key == "ifname":
            name, _, mac = value.partition(":")
            if not name or not re.match(MAC, mac):
                raise KernelNetError(f"ifname={value}: expected <interface>:<MAC>")
            ifnames[name] = mac.lower()
    interfaces: list[dict[str, Any]] = []
    servers: list[str] = []
    routes: list[tuple[dict[str, Any], str]] = []
    said = False
    for key, _, value in words:
        if key == "ip":
            said = True
            entry = parse_ip(value, ifnames, len(interfaces), servers)
            if entry is not None:
                interfaces.append(entry)
        elif key == "nameserver" and value:
            servers.append(value.strip("[]"))
        elif key == "rd.route":
            routes.append(_route(value))
    for route, device in routes:
        targets = [i for i in interfaces if not device or i["name"] == device]
        if not targets:
            raise KernelNetError(f"rd.route: no ip= configures interface {device or '(any)'}")
        targets[0].setdefault("routes", []).append(route)
    if not said and not servers and not routes:
        return None
    network: dict[str, Any] = {"interfaces": interfaces}
    if servers:
        network["nameservers"] = {"addresses": list(dict.fromkeys(servers))}
    return network
