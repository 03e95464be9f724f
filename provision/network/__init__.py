"""Network configuration rendered for the target's network manager.

One module per renderer, each with ``render(network) -> list[Rendered]``:
:mod:`.networkd` (systemd-networkd .network/.netdev files), :mod:`.networkmanager`
(keyfiles), :mod:`.netplan` (netplan YAML) and :mod:`.ifupdown`
(/etc/network/interfaces.d). :mod:`.links` writes the systemd .link files
that rename matched devices, shared by every renderer (udev applies them
whatever manages the network). :func:`choose` picks the renderer: the
config's ``network.renderer``, or with ``auto`` the first of netplan,
NetworkManager, ifupdown, systemd-networkd the target has installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from provision.config.model import NetInterface, Networking


class Rendered(NamedTuple):
    """One file of the rendered configuration (a path inside the target root)."""

    path: str
    text: str
    mode: int = 0o644


RENDERERS = ("networkd", "networkmanager", "netplan", "ifupdown")

# Tried in order for renderer "auto": a path in the target that shows the manager is installed.
DETECTION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("netplan", ("/usr/sbin/netplan", "/usr/bin/netplan")),
    ("networkmanager", ("/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")),
    ("ifupdown", ("/usr/sbin/ifup", "/sbin/ifup")),
    ("networkd", ("/usr/lib/systemd/systemd-networkd", "/lib/systemd/systemd-networkd")),
)


def choose(network: Networking, exists: Callable[[str], bool]) -> str | None:
    """The renderer to use; None when ``auto`` finds no network manager in the target."""
    if network.renderer != "auto":
        return network.renderer
    for name, paths in DETECTION:
        if any(exists(p) for p in paths):
            return name
    return None


def render(renderer: str, network: Networking) -> list[Rendered]:
    from importlib import import_module

    from provision.network import links

    module = import_module(f"provision.network.{renderer}")
    files: list[Rendered] = module.render(network)
    return links.render(network, renames_all=renderer == "ifupdown") + files


def ordered(network: Networking) -> list[NetInterface]:
    """Interfaces after their members and VLAN parents (for formats read in order)."""
    by_name = {i.name: i for i in network.interfaces}
    done: dict[str, NetInterface] = {}

    def visit(iface: NetInterface, depth: int = 0) -> None:
        if iface.name in done or depth > len(by_name):  # depth: a cycle the checks refused anyway
            return
        needs = [*iface.members, *([iface.vlan.link] if iface.vlan else [])]
        for name in needs:
            if name in by_name:
                visit(by_name[name], depth + 1)
        done[iface.name] = iface

    for iface in network.interfaces:
        visit(iface)
    return list(done.values())


def device_name(iface: NetInterface) -> str | None:
    """The kernel name the interface has once renamed; None when only a match identifies it."""
    if iface.set_name:
        return iface.set_name
    return iface.name if iface.match is None else None


def masters(network: Networking) -> dict[str, NetInterface]:
    """Member name -> the bond or bridge it belongs to."""
    return {member: iface for iface in network.interfaces for member in iface.members}


def vlans_on(network: Networking, name: str) -> list[NetInterface]:
    return [i for i in network.interfaces if i.vlan is not None and i.vlan.link == name]


def nameservers(network: Networking, iface: NetInterface) -> tuple[list[str], list[str]]:
    """The interface's DNS servers and search domains (its own, then the system-wide ones)."""
    servers = list(dict.fromkeys([*iface.nameservers.addresses, *network.nameservers.addresses]))
    search = list(dict.fromkeys([*iface.nameservers.search, *network.nameservers.search]))
    return servers, search


def file_name(name: str) -> str:
    """An interface name made safe for a file name (names never hold '/', but be sure)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
