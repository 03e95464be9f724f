"""Semantic checks of the network section, and spec 1.0.0 configs under 1.1.0."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provision.config.pipeline import parse_config
from provision.diagnostics import format_path


def diagnostics(interfaces: list[dict[str, Any]], **network: Any) -> dict[str, str]:
    spec = {"provision": {"version": "1.1.0"}, "network": {"interfaces": interfaces, **network}}
    parsed = parse_config(json.dumps(spec, indent=1).encode(), "c.json")
    for d in parsed.diagnostics:
        assert d.position is not None, d  # every finding is positioned in the source
    return {format_path(d.path): d.message for d in parsed.diagnostics if d.is_error}


def test_a_valid_network_has_no_findings() -> None:
    assert diagnostics([
        {"name": "eth0", "match": {"macAddress": "52:54:00:00:00:01"}, "setName": "lan0"},
        {"name": "eth1"},
        {"name": "bond0", "type": "bond", "members": ["eth0", "eth1"], "bond": {"mode": "802.3ad", "primary": "eth0"},
         "addresses": ["192.0.2.10/24", "2001:db8::a/64"], "gateway4": "192.0.2.1", "gateway6": "2001:db8::1",
         "routes": [{"to": "10.0.0.0/8", "via": "192.0.2.254", "metric": 10, "table": 7}]},
        {"name": "v100", "type": "vlan", "vlan": {"id": 100, "link": "bond0"}, "dhcp4": True},
        {"name": "br0", "type": "bridge", "members": ["v100"], "bridge": {"stp": False}},
    ], nameservers={"addresses": ["192.0.2.53", "2001:db8::53"], "search": ["example.com"]}) == {}


@pytest.mark.parametrize(("interfaces", "path", "words"), [
    ([{"name": "e", "addresses": ["192.0.2.1"]}], "$.network.interfaces[0].addresses[0]", "prefix length"),
    ([{"name": "e", "addresses": ["192.0.2.256/24"]}], "$.network.interfaces[0].addresses[0]", "prefix length"),
    ([{"name": "e", "gateway4": "2001:db8::1"}], "$.network.interfaces[0].gateway4", "not an IPv4"),
    ([{"name": "e", "routes": [{"to": "10.1.2.3/8", "via": "10.0.0.1"}]}],
     "$.network.interfaces[0].routes[0].to", "CIDR"),
    ([{"name": "e", "routes": [{"to": "10.0.0.0/8", "via": "2001:db8::1"}]}],
     "$.network.interfaces[0].routes[0].via", "IPv6"),
    ([{"name": "e", "routes": [{"to": "default"}]}], "$.network.interfaces[0].routes[0]", "needs via"),
    ([{"name": "e", "nameservers": {"addresses": ["dns.example"]}}],
     "$.network.interfaces[0].nameservers.addresses[0]", "not an IP"),
    ([{"name": "e"}, {"name": "v", "type": "vlan", "vlan": {"id": 4095, "link": "e"}}],
     "$.network.interfaces[1].vlan.id", "reserved"),
    ([{"name": "v", "type": "vlan", "vlan": {"id": 5, "link": "nope"}}],
     "$.network.interfaces[0].vlan.link", "unknown interface"),
    ([{"name": "b", "type": "bond", "members": ["x"]}], "$.network.interfaces[0].members[0]", "unknown interface"),
    ([{"name": "e"}, {"name": "b", "type": "bond", "members": ["e"]}, {"name": "r", "type": "bridge", "members": ["e"]}],
     "$.network.interfaces[2].members[0]", "already a member"),
    ([{"name": "e"}, {"name": "e"}], "$.network.interfaces[1].name", "duplicate interface name"),
    ([{"name": "e", "addresses": ["192.0.2.1/24"]}, {"name": "f", "addresses": ["192.0.2.1/25"]}],
     "$.network.interfaces[1].addresses[0]", "duplicate address"),
    ([{"name": "e", "bond": {"mode": "802.3ad"}}], "$.network.interfaces[0].bond", "type ethernet"),
    ([{"name": "e", "type": "vlan"}], "$.network.interfaces[0]", "needs vlan settings"),
    ([{"name": "en*"}], "$.network.interfaces[0].name", "glob"),
    ([{"name": "a-very-long-interface"}], "$.network.interfaces[0].name", "not a valid interface name"),
    ([{"name": "e", "match": {"macAddress": "52:54:00:00:01"}}], "$.network.interfaces[0].match.macAddress",
     "not a MAC"),
    ([{"name": "e", "setName": "lan0"}], "$.network.interfaces[0].setName", "needs match"),
    ([{"name": "e"}, {"name": "b", "type": "bond", "members": ["e"], "bond": {"primary": "f"}}],
     "$.network.interfaces[1].bond.primary", "not a member"),
])
def test_mistakes_are_errors_at_their_path(interfaces: list[dict[str, Any]], path: str, words: str) -> None:
    found = diagnostics(interfaces)
    assert path in found, found
    assert words in found[path]


def test_schema_refuses_unknown_keys_and_types() -> None:
    found = diagnostics([{"name": "e", "type": "wifi", "dchp4": True}])
    assert "$.network.interfaces[0].type" in found
    assert "$.network.interfaces[0].dchp4" in found


def test_spec_1_0_0_configs_keep_working_and_know_no_network() -> None:
    old = {"provision": {"version": "1.0.0"}, "storage": {"files": [{"path": "/etc/motd"}]}}
    parsed = parse_config(json.dumps(old).encode(), "old.json")
    assert parsed.ok and parsed.version == "1.0.0"
    assert parsed.spec is not None and parsed.spec["provision"]["version"] == "1.1.0"
    assert [f.path for f in parsed.config.storage.files] == ["/etc/motd"]  # type: ignore[union-attr]
    old["network"] = {"interfaces": [{"name": "eth0"}]}
    parsed = parse_config(json.dumps(old).encode(), "old.json")
    assert not parsed.ok
    assert any("unknown key 'network'" in d.message for d in parsed.diagnostics)
