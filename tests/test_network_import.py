"""cloud-init network config (v1, v2, OpenStack network_data.json) imported into the network section.

The documents are written for these tests after the examples in cloud-init's
documentation (network config v1/v2, OpenStack config drive), with our own
addresses and names.
"""

from __future__ import annotations

import json

from provision.config.build import to_spec
from provision.config.pipeline import parse_config
from provision.diagnostics import has_errors

V1 = b"""\
network:
  version: 1
  config:
    - type: physical
      name: eth0
      mac_address: "52:54:00:aa:00:01"
    - type: physical
      name: eth1
      mac_address: "52:54:00:AA:00:02"
      mtu: 9000
    - type: bond
      name: bond0
      bond_interfaces: [eth0, eth1]
      params:
        bond-mode: active-backup
        bond-miimon: 100
        bond-primary: eth0
      subnets:
        - type: static
          address: 192.168.14.2
          netmask: 255.255.255.0
          gateway: 192.168.14.1
          dns_nameservers: [192.168.14.53]
          routes:
            - network: 10.20.0.0
              netmask: 255.255.0.0
              gateway: 192.168.14.254
              metric: 3
    - type: vlan
      name: bond0.200
      vlan_link: bond0
      vlan_id: 200
      subnets:
        - type: dhcp4
        - type: ipv6_slaac
    - type: bridge
      name: br0
      bridge_interfaces: [eth2]
      params:
        bridge_stp: 'off'
        bridge_fd: 0
    - type: physical
      name: eth2
    - type: nameserver
      address: [192.168.23.2, 8.8.8.8]
      search: [exemplary.maas]
    - type: route
      destination: 172.16.0.0/12
      gateway: 192.168.14.100
"""

V2 = b"""\
version: 2
ethernets:
  lan:
    match:
      macaddress: "52:54:00:bb:00:01"
    set-name: lan0
    addresses: [192.0.2.10/24, "2001:db8::10/64"]
    routes:
      - to: default
        via: 192.0.2.1
      - to: 198.51.100.0/24
        via: 192.0.2.254
        metric: 50
        table: 100
    nameservers:
      addresses: [192.0.2.53]
      search: [example.com]
  mgmt:
    match:
      driver: virtio_net
      name: "enp*"
    dhcp4: true
    dhcp6: "yes"
    optional: true
bonds:
  bond1:
    interfaces: [lan]
    parameters:
      mode: 802.3ad
      lacp-rate: fast
      mii-monitor-interval: "100"
      transmit-hash-policy: layer3+4
vlans:
  vlan10:
    id: 10
    link: mgmt
    addresses: [203.0.113.5/24]
bridges:
  br1:
    interfaces: [vlan10]
    parameters:
      stp: true
      forward-delay: 4
"""

OPENSTACK = json.dumps({
    "links": [
        {"id": "tap-a1", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01", "mtu": 1450},
        {"id": "interface-with-a-long-id", "type": "ovs", "ethernet_mac_address": "fa:16:3e:00:00:02"},
        {"id": "bond-x", "type": "bond", "bond_links": ["tap-a1", "interface-with-a-long-id"],
         "bond_mode": "802.3ad", "bond_miimon": 100, "bond_xmit_hash_policy": "layer3+4",
         "ethernet_mac_address": "fa:16:3e:00:00:03"},
        {"id": "vlan-y", "type": "vlan", "vlan_link": "bond-x", "vlan_id": 42,
         "vlan_mac_address": "fa:16:3e:00:00:03"},
    ],
    "networks": [
        {"id": "net0", "type": "ipv4", "link": "bond-x", "ip_address": "10.0.0.5", "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                    {"network": "172.17.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.2"}],
         "network_id": "9c0d"},
        {"id": "net1", "type": "ipv6_dhcp", "link": "vlan-y"},
    ],
    "services": [{"type": "dns", "address": "10.0.0.53"}, {"type": "dns", "address": "10.0.0.54"}],
}, indent=1).encode()


def imported(data: bytes, name: str = "network-config") -> dict:
    parsed = parse_config(data, name)
    assert parsed.config is not None, parsed.diagnostics
    assert parsed.kind in ("network-config", "cloud-config")
    return to_spec(parsed.config)["network"]


def by_name(network: dict) -> dict[str, dict]:
    return {i["name"]: i for i in network["interfaces"]}


def test_v1_bond_vlan_bridge_routes_and_dns() -> None:
    net = imported(V1)
    ifaces = by_name(net)
    assert ifaces["eth0"] == {"name": "eth0", "match": {"macAddress": "52:54:00:aa:00:01"}, "setName": "eth0"}
    assert ifaces["eth1"]["match"] == {"macAddress": "52:54:00:aa:00:02"}  # lower-cased
    assert ifaces["eth1"]["mtu"] == 9000
    bond = ifaces["bond0"]
    assert bond["type"] == "bond" and bond["members"] == ["eth0", "eth1"]
    assert bond["bond"] == {"mode": "active-backup", "miiMonitorInterval": 100, "primary": "eth0"}
    assert bond["addresses"] == ["192.168.14.2/24"]  # netmask folded into the prefix
    assert bond["gateway4"] == "192.168.14.1"
    # the subnet's route, then the top-level route attached by its gateway
    assert bond["routes"] == [{"to": "10.20.0.0/16", "via": "192.168.14.254", "metric": 3},
                              {"to": "172.16.0.0/12", "via": "192.168.14.100"}]
    assert bond["nameservers"] == {"addresses": ["192.168.14.53"]}
    vlan = ifaces["bond0.200"]
    assert vlan["vlan"] == {"id": 200, "link": "bond0"} and vlan["dhcp4"] is True and vlan["acceptRa"] is True
    assert ifaces["br0"]["bridge"] == {"stp": False, "forwardDelay": 0}
    assert net["nameservers"] == {"addresses": ["192.168.23.2", "8.8.8.8"], "search": ["exemplary.maas"]}


def test_v2_document_and_string_values() -> None:
    net = imported(V2)
    ifaces = by_name(net)
    lan = ifaces["lan"]
    assert lan["match"] == {"macAddress": "52:54:00:bb:00:01"} and lan["setName"] == "lan0"
    assert lan["routes"][1] == {"to": "198.51.100.0/24", "via": "192.0.2.254", "metric": 50, "table": 100}
    mgmt = ifaces["mgmt"]
    assert mgmt["match"] == {"driver": "virtio_net", "name": "enp*"}
    assert mgmt["dhcp6"] is True and mgmt["optional"] is True
    assert ifaces["bond1"]["bond"]["miiMonitorInterval"] == 100
    assert ifaces["vlan10"]["vlan"] == {"id": 10, "link": "mgmt"}
    assert ifaces["br1"]["bridge"] == {"stp": True, "forwardDelay": 4}


def test_openstack_network_data() -> None:
    net = imported(OPENSTACK, "network_data.json")
    ifaces = by_name(net)
    assert ifaces["tap-a1"]["match"] == {"macAddress": "fa:16:3e:00:00:01"} and ifaces["tap-a1"]["mtu"] == 1450
    # an id too long for an interface name gets a generated one
    assert ifaces["net1"]["match"] == {"macAddress": "fa:16:3e:00:00:02"}
    bond = ifaces["bond-x"]
    assert bond["members"] == ["tap-a1", "net1"]
    assert bond["bond"] == {"mode": "802.3ad", "miiMonitorInterval": 100, "transmitHashPolicy": "layer3+4"}
    assert bond["addresses"] == ["10.0.0.5/24"]
    assert bond["routes"] == [{"to": "default", "via": "10.0.0.1"}, {"to": "172.17.0.0/16", "via": "10.0.0.2"}]
    assert ifaces["vlan-y"]["vlan"] == {"id": 42, "link": "bond-x"} and ifaces["vlan-y"]["dhcp6"] is True
    assert net["nameservers"] == {"addresses": ["10.0.0.53", "10.0.0.54"]}


def test_cloud_config_network_key_and_unsupported_keys_are_positioned() -> None:
    doc = b"#cloud-config\nhostname: web1\nnetwork:\n  version: 2\n  ethernets:\n    eth0:\n" \
          b"      dhcp4: true\n      wakeonlan: true\n"
    parsed = parse_config(doc, "user-data")
    assert parsed.config is not None
    assert [i.name for i in parsed.config.network.interfaces] == ["eth0"]
    (warn,) = [d for d in parsed.diagnostics if "wakeonlan" in d.message]
    assert warn.position is not None and warn.position.line == 8


def test_v1_address_without_netmask_is_an_error_at_its_line() -> None:
    doc = b"network:\n  version: 1\n  config:\n    - type: physical\n      name: eth0\n" \
          b"      subnets:\n        - type: static\n          address: 192.0.2.7\n"
    parsed = parse_config(doc, "network-config")
    assert parsed.config is None
    (err,) = [d for d in parsed.diagnostics if d.is_error]
    assert "no prefix length" in err.message and err.position is not None and err.position.line == 8


def test_semantic_errors_point_into_the_imported_document() -> None:
    doc = b"version: 2\nethernets:\n  eth0:\n    addresses: [192.0.2.300/24]\nbonds:\n  bond0:\n" \
          b"    interfaces: [eth0, eth7]\n"
    parsed = parse_config(doc, "network-config")
    errors = [d for d in parsed.diagnostics if d.is_error]
    assert {(d.message.split(" ")[0], d.position.line if d.position else None) for d in errors} == {
        ("'192.0.2.300/24'", 4), ("unknown", 7)}


def test_disabled_network_config_keeps_the_image_s_and_says_so() -> None:
    parsed = parse_config(b"network:\n  version: 1\n  config: disabled\n", "network-config")
    assert parsed.config is not None and parsed.config.network.interfaces == ()
    assert any("disabled" in d.message for d in parsed.diagnostics)


def test_unknown_version_is_refused() -> None:
    parsed = parse_config(b"#cloud-config\nnetwork:\n  version: 3\n  ethernets: {}\n", "user-data")
    assert has_errors(parsed.diagnostics)


def test_the_platform_network_config_joins_a_config_without_a_network_section() -> None:
    from provision.importers.network import with_platform_network

    spec = {"provision": {"version": "1.1.0"}, "storage": {"files": [{"path": "/etc/motd"}]}}
    merged = with_platform_network(spec, V2, "network-config")
    assert merged["storage"] == spec["storage"]
    assert [i["name"] for i in merged["network"]["interfaces"]] == ["lan", "mgmt", "bond1", "vlan10", "br1"]
    own = {**spec, "network": {"interfaces": [{"name": "eth0", "dhcp4": True}]}}
    assert with_platform_network(own, V2, "network-config") is own  # the user's own section wins


def test_a_broken_platform_network_config_is_a_positioned_error() -> None:
    import pytest

    from provision.errors import ConfigError
    from provision.importers.network import with_platform_network

    spec = {"provision": {"version": "1.1.0"}}
    with pytest.raises(ConfigError) as caught:
        with_platform_network(spec, b"version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.1]\n", "seed/network-config")
    (diag,) = caught.value.diagnostics
    assert diag.file == "seed/network-config" and diag.position is not None and diag.position.line == 4
    with pytest.raises(ConfigError):
        with_platform_network(spec, b"hello: world\n", "seed/network-config")
