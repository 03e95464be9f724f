"""systemd .link files: rename a matched device (cloud-init's mac_address + name, netplan's set-name).

udev applies .link files whatever manages the network afterwards, so every
renderer uses these. ifupdown names interfaces only by kernel name, so for it
every matched entry is renamed (to setName, else its name).
"""

from __future__ import annotations

from provision.config.model import Networking
from provision.network import Rendered, file_name

LINK_DIR = "/etc/systemd/network"


def render(network: Networking, renames_all: bool = False) -> list[Rendered]:
    out = []
    for iface in network.interfaces:
        if iface.match is None:
            continue
        new_name = iface.set_name or (iface.name if renames_all else None)
        if new_name is None:
            continue
        lines = ["[Match]"]
        if iface.match.mac_address:
            lines.append(f"MACAddress={iface.match.mac_address}")
        if iface.match.driver:
            lines.append(f"Driver={iface.match.driver}")
        if iface.match.name:
            lines.append(f"OriginalName={iface.match.name}")
        lines += ["", "[Link]", f"Name={new_name}"]
        out.append(Rendered(f"{LINK_DIR}/10-provision-{file_name(iface.name)}.link", "\n".join(lines) + "\n"))
    return out
