"""Properties: what the netplan renderer writes, the v2 importer reads back as the same network;
and an ip= argument built from a static address parses back to it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.boot.kernelnet import network_from_cmdline
from provision.config.build import build, to_spec
from provision.config.model import Networking
from provision.importers.network import NetContext, translate
from provision.network import netplan

OCTET = st.integers(1, 254)
IPV4 = st.tuples(st.sampled_from([10, 172, 192]), OCTET, OCTET, OCTET).map(lambda t: ".".join(map(str, t)))
PREFIX = st.integers(8, 30)
MAC = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


def cidr_network(address: str, prefix: int) -> str:
    import ipaddress

    return str(ipaddress.ip_interface(f"{address}/{prefix}").network)


@st.composite
def addressing(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["dhcp4"] = True
    if draw(st.booleans()):
        out["dhcp6"] = True
    addresses = draw(st.lists(st.tuples(IPV4, PREFIX), max_size=2))
    if addresses:
        out["addresses"] = [f"{a}/{p}" for a, p in addresses]
    routes = []
    for _ in range(draw(st.integers(0, 2))):
        route: dict[str, Any] = {"to": cidr_network(draw(IPV4), draw(PREFIX)), "via": draw(IPV4)}
        if draw(st.booleans()):
            route["metric"] = draw(st.integers(0, 1000))
        if draw(st.booleans()):
            route["table"] = draw(st.integers(1, 250))
        routes.append(route)
    if draw(st.booleans()):
        routes.append({"to": "default", "via": draw(IPV4)})
    if routes:
        out["routes"] = routes
    if draw(st.booleans()):
        out["nameservers"] = {"addresses": draw(st.lists(IPV4, min_size=1, max_size=2, unique=True)),
                              "search": draw(st.lists(st.sampled_from(["a.example", "b.example"]),
                                                      max_size=2, unique=True))}
    if draw(st.booleans()):
        out["mtu"] = draw(st.integers(576, 9000))
    return out


@st.composite
def networks(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    interfaces: list[dict[str, Any]] = []
    for n in range(count):
        entry: dict[str, Any] = {"name": f"eth{n}"}
        if draw(st.booleans()):
            entry["match"] = {"macAddress": draw(MAC)}
            if draw(st.booleans()):
                entry["setName"] = f"lan{n}"
        interfaces.append(entry)
    members = [i["name"] for i in interfaces[: draw(st.integers(0, count))]]
    for entry in interfaces:
        if entry["name"] not in members:
            entry.update(draw(addressing()))
    if members:
        bond = {"name": "bond0", "type": "bond", "members": members,
                "bond": {"mode": draw(st.sampled_from(["active-backup", "802.3ad", "balance-rr"]))}}
        if draw(st.booleans()):
            bond["bond"]["miiMonitorInterval"] = draw(st.integers(0, 500))
        bond.update(draw(addressing()))
        interfaces.append(bond)
    if draw(st.booleans()):
        interfaces.append({"name": "vlan7", "type": "vlan", "vlan": {"id": draw(st.integers(1, 4094)),
                                                                     "link": interfaces[-1]["name"]},
                           **draw(addressing())})
    return {"interfaces": interfaces}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(networks())
def test_netplan_output_reads_back_as_the_same_network(network: dict[str, Any]) -> None:
    model = build(Networking, network)
    (rendered,) = netplan.render(model)
    ctx = NetContext()
    translate(ctx, json.loads(rendered.text), ())
    assert ctx.diagnostics == []
    back = build(Networking, ctx.spec["network"])
    # netplan has no interface order: compare by name
    ours = {i["name"]: i for i in to_spec(model)["interfaces"]}
    theirs = {i["name"]: i for i in to_spec(back)["interfaces"]}
    assert theirs == ours


@settings(max_examples=200, deadline=None, derandomize=True)
@given(IPV4, PREFIX, IPV4, st.sampled_from(["eth0", "ens3", ""]), st.booleans(), st.lists(IPV4, max_size=2))
def test_a_static_ip_argument_parses_back(address: str, prefix: int, gateway: str, device: str,
                                          dotted: bool, dns: list[str]) -> None:
    import ipaddress

    netmask = str(ipaddress.ip_network(f"0.0.0.0/{prefix}").netmask) if dotted else str(prefix)
    arg = f"ip={address}::{gateway}:{netmask}:host:{device}:none" + "".join(f":{d}" for d in dns)
    network = network_from_cmdline(f"root=/dev/vda1 {arg} quiet")
    assert network is not None
    (iface,) = network["interfaces"]
    assert iface["addresses"] == [f"{address}/{prefix}"] and iface["gateway4"] == gateway
    assert iface["name"] == (device or "ip0")
    assert network.get("nameservers", {}).get("addresses", []) == list(dict.fromkeys(dns))
