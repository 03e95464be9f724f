"""The network stage renders one realistic config for each network manager, checked by its own tools.

- systemd-networkd itself parses the files (in a private network and mount
  namespace, so nothing on this machine changes) and must neither ignore a
  key nor fail to load a netdev;
- ``netplan generate --root-dir`` turns our YAML into networkd files;
- ``ifup --no-act`` plans the commands ifupdown would run;
- ``nmcli --offline`` loads and re-emits each keyfile.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provision.config.model import Config
from provision.config.pipeline import parse_config
from provision.errors import StageError
from provision.stages.base import Target
from provision.stages.network import STAGE

NETWORK: dict[str, Any] = {
    "interfaces": [
        {"name": "eno1", "match": {"macAddress": "52:54:00:00:00:01"}, "setName": "eno1"},
        {"name": "eno2", "match": {"macAddress": "52:54:00:00:00:02"}, "setName": "eno2"},
        {"name": "mgmt", "match": {"name": "enp0s*"}, "dhcp4": True, "optional": True},
        {"name": "bond0", "type": "bond", "members": ["eno1", "eno2"], "mtu": 9000,
         "bond": {"mode": "802.3ad", "lacpRate": "fast", "miiMonitorInterval": 100,
                  "transmitHashPolicy": "layer3+4"},
         "addresses": ["192.0.2.10/24", "2001:db8::10/64"], "gateway4": "192.0.2.1", "gateway6": "2001:db8::1",
         "routes": [{"to": "10.10.0.0/16", "via": "192.0.2.254", "metric": 100, "table": 200}],
         "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}},
        {"name": "vlan100", "type": "vlan", "vlan": {"id": 100, "link": "bond0"}},
        {"name": "br0", "type": "bridge", "members": ["vlan100"], "bridge": {"stp": False, "forwardDelay": 0},
         "addresses": ["198.51.100.5/24"]},
    ],
    "nameservers": {"addresses": ["192.0.2.54"]},
}


def config(renderer: str = "auto", network: dict[str, Any] | None = None) -> Config:
    spec = {"provision": {"version": "1.1.0"}, "network": {"renderer": renderer, **(network or NETWORK)}}
    parsed = parse_config(json.dumps(spec).encode(), "c.json")
    assert parsed.config is not None and parsed.ok, parsed.diagnostics
    return parsed.config


def provision(root: Path, renderer: str = "auto", network: dict[str, Any] | None = None) -> list[str]:
    cfg = config(renderer, network)
    plan = STAGE.plan(cfg, Target(root))
    STAGE.apply(plan, Target(root))
    return [a.kind for a in plan.actions]


def need(tool: str) -> str:
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if path is None:
        pytest.skip(f"{tool} not installed")
    return path


def test_networkd_parses_every_file_without_complaint(tmp_path: Path) -> None:
    networkd = need("/usr/lib/systemd/systemd-networkd")
    need("unshare")
    provision(tmp_path, "networkd")
    netdir = tmp_path / "etc/systemd/network"
    names = sorted(p.name for p in netdir.iterdir())
    assert names == sorted([
        "10-provision-eno1.link", "10-provision-eno2.link",
        *(f"10-provision-{n}.network" for n in ("eno1", "eno2", "mgmt", "bond0", "vlan100", "br0")),
        *(f"10-provision-{n}.netdev" for n in ("bond0", "vlan100", "br0")),
    ])
    bond = (netdir / "10-provision-bond0.network").read_text()
    assert "Address=192.0.2.10/24\n" in bond and "Gateway=192.0.2.1\n" in bond and "VLAN=vlan100\n" in bond
    assert "[Route]\nDestination=10.10.0.0/16\nGateway=192.0.2.254\nMetric=100\nTable=200\n" in bond
    assert "Bond=bond0" in (netdir / "10-provision-eno1.network").read_text()
    assert "Bridge=br0" in (netdir / "10-provision-vlan100.network").read_text()
    # networkd reads the directory in a namespace of its own: a private /run and no real links.
    script = (f"mount --bind {netdir} /etc/systemd/network && mount -t tmpfs tmpfs /run/systemd && "
              f"SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console timeout 4 {networkd}; true")
    out = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", script],
                         capture_output=True, text=True, timeout=60)
    log = out.stdout + out.stderr
    if "Operation not permitted" in log and "loaded" not in log:
        pytest.skip("cannot create namespaces here")
    complaints = [line for line in log.splitlines() if "10-provision" in line]
    assert complaints == []  # networkd names a file only to complain about it
    for netdev, kind in (("bond0", "bond"), ("vlan100", "vlan"), ("br0", "bridge")):
        assert f'{netdev}: loaded "{kind}"' in log


def test_netplan_generates_from_our_yaml(tmp_path: Path) -> None:
    need("netplan")
    provision(tmp_path, "netplan")
    yaml_file = tmp_path / "etc/netplan/90-provision.yaml"
    assert stat.S_IMODE(yaml_file.stat().st_mode) == 0o600
    out = subprocess.run(["netplan", "generate", "--root-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "permissions" not in out.stderr.lower()
    generated = tmp_path / "run/systemd/network"
    bond = (generated / "10-netplan-bond0.network").read_text()
    assert "Address=192.0.2.10/24" in bond and "Address=2001:db8::10/64" in bond
    assert "Gateway=192.0.2.1" in bond and "DNS=192.0.2.53" in bond and "Domains=example.com" in bond
    assert "Table=200" in bond and "Metric=100" in bond
    assert "Mode=802.3ad" in (generated / "10-netplan-bond0.netdev").read_text()
    assert "Id=100" in (generated / "10-netplan-vlan100.netdev").read_text()
    assert "MACAddress=52:54:00:00:00:01" in (generated / "10-netplan-eno1.link").read_text()


def test_ifupdown_plans_the_commands(tmp_path: Path) -> None:
    need("ifup")
    provision(tmp_path, "ifupdown")
    main = (tmp_path / "etc/network/interfaces").read_text()
    assert "source /etc/network/interfaces.d/*" in main.splitlines()
    rendered = tmp_path / "etc/network/interfaces.d/50-provision"
    # matched devices are renamed to their names, since ifupdown knows only names
    assert "Name=mgmt" in (tmp_path / "etc/systemd/network/10-provision-mgmt.link").read_text()
    out = subprocess.run(["ifup", "--no-act", "-a", "-i", str(rendered), "--state-dir", str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    commands = out.stdout + out.stderr
    assert "ip addr add 192.0.2.10/255.255.255.0" in commands
    assert "ip route add default via 192.0.2.1" in commands
    assert "ip route add 10.10.0.0/16 via 192.0.2.254 metric 100 table 200 dev bond0" in commands
    assert "ip addr add 198.51.100.5/255.255.255.0" in commands
    text = rendered.read_text()
    # members before their bond, the VLAN before the bridge on it
    assert text.index("auto eno1") < text.index("auto bond0") < text.index("auto vlan100") < text.index("auto br0")
    assert "bond-master bond0" in text and "vlan-raw-device bond0" in text and "bridge_ports vlan100" in text


def test_ifupdown_adds_the_source_line_to_an_existing_interfaces_file(tmp_path: Path) -> None:
    main = tmp_path / "etc/network/interfaces"
    main.parent.mkdir(parents=True)
    main.write_text("auto lo\niface lo inet loopback\n")
    provision(tmp_path, "ifupdown")
    assert main.read_text() == "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n"


def nmcli_load(keyfile: Path) -> subprocess.CompletedProcess[str]:
    with keyfile.open() as stdin:
        return subprocess.run(["nmcli", "--offline", "connection", "modify", "connection.autoconnect", "yes"],
                              stdin=stdin, capture_output=True, text=True, timeout=60)


def test_networkmanager_loads_every_keyfile(tmp_path: Path) -> None:
    need("nmcli")
    provision(tmp_path, "networkmanager")
    keydir = tmp_path / "etc/NetworkManager/system-connections"
    loaded = {}
    for keyfile in sorted(keydir.iterdir()):
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600  # NetworkManager ignores others
        out = nmcli_load(keyfile)
        assert out.returncode == 0, (keyfile.name, out.stderr)
        loaded[keyfile.name.removeprefix("provision-").removesuffix(".nmconnection")] = out.stdout
    assert set(loaded) == {"eno1", "eno2", "mgmt", "bond0", "vlan100", "br0"}
    bond = loaded["bond0"]
    # NetworkManager writes the gateway back next to the first address
    assert "address1=192.0.2.10/24,192.0.2.1" in bond and "address1=2001:db8::10/64,2001:db8::1" in bond
    assert "route1=10.10.0.0/16,192.0.2.254,100" in bond
    assert "route1_options=table=200" in bond and "mode=802.3ad" in bond
    bond_uuid = next(line.split("=", 1)[1] for line in bond.splitlines() if line.startswith("uuid="))
    assert f"master={bond_uuid}" in loaded["eno1"] and "slave-type=bond" in loaded["eno1"]
    assert "mac-address=52:54:00:00:00:01" in loaded["eno1"].lower()
    assert f"parent={bond_uuid}" in loaded["vlan100"] and "id=100" in loaded["vlan100"]
    assert "stp=false" in loaded["br0"] and "method=auto" in loaded["mgmt"]


def test_nmcli_refuses_a_broken_keyfile(tmp_path: Path) -> None:
    """The check above can fail: a keyfile NetworkManager cannot use is refused."""
    need("nmcli")
    bad = tmp_path / "bad.nmconnection"
    bad.write_text("[connection]\nid=x\ntype=ethernet\n[ipv4]\nmethod=manual\naddress1=192.0.2.300/24\n")
    assert nmcli_load(bad).returncode != 0


@pytest.mark.parametrize(("installed", "expected"), [
    (["usr/sbin/netplan", "usr/sbin/NetworkManager", "usr/lib/systemd/systemd-networkd"], "netplan"),
    (["usr/sbin/NetworkManager", "usr/sbin/ifup", "usr/lib/systemd/systemd-networkd"], "networkmanager"),
    (["sbin/ifup", "lib/systemd/systemd-networkd"], "ifupdown"),
    (["usr/lib/systemd/systemd-networkd"], "networkd"),
])
def test_auto_detects_the_image_s_network_manager(tmp_path: Path, installed: list[str], expected: str) -> None:
    for path in installed:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    plan = STAGE.plan(config(), Target(tmp_path))
    assert {a.detail for a in plan.actions} == {expected}


def test_auto_without_any_network_manager_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="no network manager found"):
        STAGE.plan(config(), Target(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_second_run_changes_nothing_and_replaces_stale_files(tmp_path: Path) -> None:
    assert set(provision(tmp_path, "networkd")) == {"create"}
    assert set(provision(tmp_path, "networkd")) == {"unchanged"}
    path = tmp_path / "etc/systemd/network/10-provision-br0.network"
    path.write_text("edited\n")
    actions = provision(tmp_path, "networkd")
    assert actions.count("replace") == 1 and "Address=198.51.100.5/24" in path.read_text()


def test_an_empty_network_section_is_empty() -> None:
    assert STAGE.is_empty(config(network={"interfaces": []}))
    assert not STAGE.is_empty(config())


def test_ifupdown_keeps_static_addresses_next_to_dhcp(tmp_path: Path) -> None:
    need("ifup")
    provision(tmp_path, "ifupdown", {"interfaces": [
        {"name": "eth0", "dhcp4": True, "dhcp6": True, "addresses": ["192.0.2.7/24", "2001:db8::7/64"]}]})
    rendered = tmp_path / "etc/network/interfaces.d/50-provision"
    out = subprocess.run(["ifup", "--no-act", "-a", "-i", str(rendered), "--state-dir", str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ip addr add 192.0.2.7/24 dev eth0" in out.stdout + out.stderr
    assert "ip -6 addr add 2001:db8::7/64 dev eth0" in out.stdout + out.stderr
