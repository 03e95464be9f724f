"""The static network the initramfs brings up itself to fetch the config.

Where DHCP serves the network, the initramfs hooks bring it up as they
always did (initramfs-tools' ``configure_networking``, dracut's
systemd-networkd with DHCP on every Ethernet link). A network without DHCP
needs its addresses from somewhere before the config can be fetched:

1. the kernel command line (``ip=``, ``nameserver=``, ``rd.route=``,
   ``ifname=``, see :mod:`provision.boot.kernelnet`), the administrator's
   explicit word, wins; else
2. the platform's network config found without the network (a NoCloud seed's
   ``network-config`` on a cidata filesystem, in the fetch result's extras),
   imported like any cloud-init network config.

The offline pass (:func:`decide`) checks it like any config's network
section and, when every interface in it is static, stores it in the run
directory (``initnet.json``); the hooks then skip their DHCP, and the online
pass (:func:`bring_up`) configures the devices with ``ip`` before fetching:
links up, bonds, bridges and VLANs created, addresses, routes and a
resolv.conf for the initramfs. Every command is idempotent (``replace``),
so it is harmless when the hook's own ``ip=`` handling got there first.
A network that needs DHCP anywhere is left to the hooks.

Devices are found through sysfs (``/sys/class/net``): by name, MAC address,
driver or a name pattern; the initramfs never renames them (the target's
.link files do that on the next boot).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

from provision.config.model import NetInterface, Networking
from provision.diagnostics import error
from provision.errors import ConfigError, FetchError

log = logging.getLogger(__name__)

ARPHRD_ETHER = "1"  # /sys/class/net/<dev>/type of an Ethernet device


class Device(NamedTuple):
    name: str
    mac: str
    driver: str | None
    ethernet: bool


class BringUp(NamedTuple):
    """What the initramfs does: ``ip`` argument lists in order, and resolv.conf's text."""

    commands: list[list[str]]
    resolv_conf: str | None
    summary: str


def devices(sys_root: Path) -> list[Device]:
    """The network devices the kernel has, from sysfs (sorted by name; no loopback)."""
    base = sys_root / "sys/class/net"
    found = []
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    for name in names:
        def read(item: str, name: str = name) -> str:
            try:
                return (base / name / item).read_text().strip()
            except OSError:
                return ""
        driver_link = base / name / "device" / "driver"
        driver = os.path.basename(os.readlink(driver_link)) if driver_link.is_symlink() else None
        kind = read("type")
        if name == "lo" or kind == "772":
            continue
        found.append(Device(name, read("address").lower(), driver, kind == ARPHRD_ETHER))
    return found


def network_from_sources(cmdline: str, seed_network_config: bytes | None) -> tuple[dict[str, Any] | None, str]:
    """The network section for the initramfs and where it came from; (None, why) when there is none."""
    from provision.boot.kernelnet import KernelNetError, network_from_cmdline

    try:
        from_kernel = network_from_cmdline(cmdline)
    except KernelNetError as exc:
        raise ConfigError([error(f"kernel command line: {exc}")]) from None
    if from_kernel is not None:
        return from_kernel, "kernel command line"
    if seed_network_config:
        from provision.importers.network import parse_bytes

        network, found = parse_bytes(seed_network_config, "network-config")
        if network is None:
            raise ConfigError([d for d in found if d.is_error])
        return network, "the seed's network-config"
    return None, "no ip= on the kernel command line and no network-config on the seed"


def checked(network: dict[str, Any], origin: str) -> Networking:
    """The section validated like a config's (schema and semantic checks), as the model."""
    from provision.config.pipeline import parse_config
    from provision.config.versions import NEWEST

    spec = {"provision": {"version": NEWEST}, "network": network}
    parsed = parse_config(json.dumps(spec, indent=1).encode(), origin)
    if parsed.config is None:
        raise ConfigError([d for d in parsed.diagnostics if d.is_error])
    return parsed.config.network


def is_static(network: Networking) -> bool:
    """Every interface static: nothing the hooks' DHCP would have to do."""
    return bool(network.interfaces) and not any(
        i.dhcp4 or i.dhcp6 or i.accept_ra for i in network.interfaces
    )


def _matches(iface: NetInterface, device: Device) -> bool:
    match = iface.match
    if match is None:
        return device.name == iface.name
    if match.mac_address and device.mac != match.mac_address.lower():
        return False
    if match.driver and device.driver != match.driver:
        return False
    if match.name and not fnmatch.fnmatchcase(device.name, match.name):
        return False
    # A pattern alone (ip= without an interface) means Ethernet devices only.
    return device.ethernet or bool(match.mac_address or match.driver)


def resolve(network: Networking, present: list[Device]) -> dict[str, str]:
    """Config name -> kernel device name, for every physical interface."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for iface in network.interfaces:
        if iface.type != "ethernet":
            names[iface.name] = iface.name
            continue
        candidates = [d for d in present if _matches(iface, d) and d.name not in taken]
        if not candidates:
            raise FetchError(f"network for the fetch: no device matches interface {iface.name!r} "
                             f"(present: {', '.join(d.name for d in present) or 'none'})")
        names[iface.name] = candidates[0].name
        taken.add(candidates[0].name)
    return names


def _create(iface: NetInterface, names: dict[str, str]) -> list[list[str]]:
    if iface.type == "bond":
        argv = ["link", "add", iface.name, "type", "bond", "mode", iface.bond.mode if iface.bond else "balance-rr"]
        if iface.bond and iface.bond.mii_monitor_interval is not None:
            argv += ["miimon", str(iface.bond.mii_monitor_interval)]
        return [argv]
    if iface.type == "bridge":
        stp = "1" if iface.bridge and iface.bridge.stp else "0"
        return [["link", "add", iface.name, "type", "bridge", "stp_state", stp]]
    if iface.type == "vlan" and iface.vlan is not None:
        return [["link", "add", "link", names[iface.vlan.link], "name", iface.name, "type", "vlan",
                 "id", str(iface.vlan.id)]]
    return []


def plan(network: Networking, present: list[Device]) -> BringUp:
    """The commands that bring ``network`` up on the devices ``present`` (pure: nothing runs)."""
    from provision.network import nameservers, ordered

    names = resolve(network, present)
    existing = {d.name for d in present}
    masters = {m: i for i in network.interfaces for m in i.members}
    # Bonds and bridges first: members are enslaved to them as they come.
    commands: list[list[str]] = [
        argv for i in network.interfaces if i.type in ("bond", "bridge") and i.name not in existing
        for argv in _create(i, names)
    ]
    shown = []
    for iface in ordered(network):
        dev = names[iface.name]
        if iface.type == "vlan" and dev not in existing:
            commands += _create(iface, names)
        if iface.mtu is not None:
            commands.append(["link", "set", "dev", dev, "mtu", str(iface.mtu)])
        if iface.name in masters:
            # A member is enslaved while down, then comes up with its bond or bridge.
            commands += [["link", "set", "dev", dev, "down"],
                         ["link", "set", "dev", dev, "master", masters[iface.name].name]]
        commands.append(["link", "set", "dev", dev, "up"])
        for address in iface.addresses:
            extra = ["nodad"] if ":" in address else []  # usable at once: the fetch follows
            commands.append(["addr", "replace", address, "dev", dev, *extra])
            shown.append(f"{dev} {address}")
        for gateway in (iface.gateway4, iface.gateway6):
            if gateway:
                family = ["-6"] if ":" in gateway else []
                commands.append([*family, "route", "replace", "default", "via", gateway, "dev", dev])
        for route in iface.routes:
            family = ["-6"] if ":" in (route.via or route.to) else []
            argv = [*family, "route", "replace", route.to]
            if route.via:
                argv += ["via", route.via]
            argv += ["dev", dev]
            if route.metric is not None:
                argv += ["metric", str(route.metric)]
            if route.table is not None:
                argv += ["table", str(route.table)]
            if route.on_link:
                argv.append("onlink")
            commands.append(argv)
    servers: list[str] = []
    search: list[str] = []
    for iface in network.interfaces:
        s, d = nameservers(network, iface)
        servers += [x for x in s if x not in servers]
        search += [x for x in d if x not in search]
    resolv = None
    if servers or search:
        lines = [f"nameserver {s}" for s in servers[:3]]  # the resolver reads three
        if search:
            lines.append("search " + " ".join(search))
        resolv = "\n".join(lines) + "\n"
    return BringUp(commands, resolv, ", ".join(shown) or "links up")


def decide(rundir_file: Path, cmdline: str, seed_network_config: bytes | None) -> str | None:
    """Offline pass: store the static network to bring up, if any; a line for the console, or None."""
    network_dict, origin = network_from_sources(cmdline, seed_network_config)
    rundir_file.unlink(missing_ok=True)
    if network_dict is None:
        log.info("network for the fetch: %s; the hooks bring it up", origin)
        return None
    network = checked(network_dict, origin)
    if not is_static(network):
        return f"network for the fetch from {origin} uses DHCP: the initramfs brings it up"
    from provision.config.build import to_spec

    data = json.dumps({"origin": origin, "network": to_spec(network)}, indent=1).encode()
    fd = os.open(rundir_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    names = ", ".join(i.name for i in network.interfaces)
    return f"static network for the fetch from {origin}: {names}"


def bring_up(rundir_file: Path, sys_root: Path, resolv_conf: Path) -> str | None:
    """Online pass: configure the stored static network; a line for the console, or None."""
    from provision.config.build import build
    from provision.run import run

    try:
        stored = json.loads(rundir_file.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise FetchError(f"{rundir_file}: unreadable ({exc})") from None
    network = build(Networking, stored["network"])
    steps = plan(network, devices(sys_root))
    for argv in steps.commands:
        run("ip", argv, timeout=30)
    if steps.resolv_conf is not None:
        resolv_conf.parent.mkdir(parents=True, exist_ok=True)
        resolv_conf.write_text(steps.resolv_conf)
    return f"static network up from {stored.get('origin', 'the run directory')}: {steps.summary}"
