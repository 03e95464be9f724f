"""The static network the initramfs brings up to fetch the config: from ip= or the seed's network-config.

What it computes is checked against the kernel and dracut documentation's
forms; the bring-up itself runs for real with iproute2 inside a network and
mount namespace this test creates (veth devices, its own sysfs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provision.boot.initnet import Device, checked, decide, is_static, network_from_sources, plan
from provision.boot.kernelnet import KernelNetError, network_from_cmdline
from provision.errors import ConfigError, FetchError

ETH0 = Device("eth0", "52:54:00:12:34:56", "virtio_net", True)
ENS4 = Device("ens4", "52:54:00:12:34:57", "e1000", True)


@pytest.mark.parametrize(("cmdline", "expected"), [
    ("ip=192.0.2.10::192.0.2.1:255.255.255.0:web:eth0:none",
     {"interfaces": [{"name": "eth0", "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1"}]}),
    # the kernel's nfsroot form with two DNS servers; no interface: the first Ethernet device
    ("ip=10.1.2.3:10.1.2.1:10.1.2.254:16::::10.1.0.53:10.1.0.54",
     {"interfaces": [{"name": "ip0", "match": {"name": "*"}, "addresses": ["10.1.2.3/16"],
                      "gateway4": "10.1.2.254"}],
      "nameservers": {"addresses": ["10.1.0.53", "10.1.0.54"]}}),
    # dracut: mtu and MAC after autoconf; IPv6 in brackets; a route and nameservers
    ("ip=[2001:db8::5]::[2001:db8::1]:64::ens4:off:9000:52:54:00:12:34:57 "
     "nameserver=[2001:db8::53] rd.route=[2001:db8:1::/48]:[2001:db8::fe]:ens4",
     {"interfaces": [{"name": "ens4", "addresses": ["2001:db8::5/64"], "gateway6": "2001:db8::1", "mtu": 9000,
                      "macAddress": "52:54:00:12:34:57",
                      "routes": [{"to": "2001:db8:1::/48", "via": "2001:db8::fe"}]}],
      "nameservers": {"addresses": ["2001:db8::53"]}}),
    # ifname= names the device by MAC
    ("ifname=lan:52:54:00:12:34:56 ip=192.0.2.9::192.0.2.1:24::lan:none",
     {"interfaces": [{"name": "lan", "match": {"macAddress": "52:54:00:12:34:56"},
                      "addresses": ["192.0.2.9/24"], "gateway4": "192.0.2.1"}]}),
    ("ip=dhcp", {"interfaces": [{"name": "ip0", "match": {"name": "*"}, "dhcp4": True}]}),
    ("ip=eth1:dhcp6", {"interfaces": [{"name": "eth1", "dhcp6": True}]}),
    # iBFT: the initramfs configures it from firmware tables; for us it is not static
    ("ip=eth2:ibft", {"interfaces": [{"name": "eth2", "dhcp4": True}]}),
    ("ip=off", {"interfaces": []}),
    ("root=/dev/vda1 console=ttyS0", None),
])
def test_kernel_arguments(cmdline: str, expected: dict | None) -> None:
    assert network_from_cmdline(cmdline) == expected


@pytest.mark.parametrize("cmdline", [
    "ip=192.0.2.10::192.0.2.1:255.0.255.0::eth0:none",  # not a netmask
    "ip=::192.0.2.1:24::eth0:none",  # static without an address
    "ip=192.0.2.10::192.0.2.1:24::eth0:bogus",
    "ip=[2001:db8::5::eth0:none",
    "ifname=lan:zz",
    "ip=192.0.2.9::192.0.2.1:24::eth0:none rd.route=10.0.0.0/8:192.0.2.254:eth9",
])
def test_kernel_arguments_that_make_no_sense_are_errors(cmdline: str) -> None:
    with pytest.raises(KernelNetError):
        network_from_cmdline(cmdline)


def test_bad_ip_is_a_config_error_naming_the_command_line() -> None:
    with pytest.raises(ConfigError) as caught:
        network_from_sources("ip=192.0.2.10::192.0.2.1:255.0.255.0::eth0:none", None)
    assert "kernel command line" in str(caught.value)


SEED_V2 = b"""\
version: 2
ethernets:
  uplink:
    match: {macaddress: "52:54:00:12:34:57"}
    set-name: uplink0
    addresses: [198.51.100.20/24]
    routes: [{to: default, via: 198.51.100.1}, {to: 10.0.0.0/8, via: 198.51.100.254, metric: 20}]
    nameservers: {addresses: [198.51.100.53], search: [corp.example]}
"""


def test_the_kernel_command_line_wins_over_the_seed() -> None:
    network, origin = network_from_sources("ip=192.0.2.10::192.0.2.1:24::eth0:none", SEED_V2)
    assert origin == "kernel command line" and network is not None
    assert network["interfaces"][0]["name"] == "eth0"
    network, origin = network_from_sources("console=ttyS0", SEED_V2)
    assert origin == "the seed's network-config" and network is not None
    assert network["interfaces"][0]["name"] == "uplink"


def test_plan_for_the_seed_finds_the_device_by_mac() -> None:
    network = checked(network_from_sources("", SEED_V2)[0] or {}, "seed")
    steps = plan(network, [ETH0, ENS4])
    assert steps.commands == [
        ["link", "set", "dev", "ens4", "up"],
        ["addr", "replace", "198.51.100.20/24", "dev", "ens4"],
        ["route", "replace", "default", "via", "198.51.100.1", "dev", "ens4"],
        ["route", "replace", "10.0.0.0/8", "via", "198.51.100.254", "dev", "ens4", "metric", "20"],
    ]
    assert steps.resolv_conf == "nameserver 198.51.100.53\nsearch corp.example\n"


def test_plan_for_a_bond_with_a_vlan() -> None:
    network = checked({"interfaces": [
        {"name": "a", "match": {"macAddress": ETH0.mac}}, {"name": "b", "match": {"driver": "e1000"}},
        {"name": "bond0", "type": "bond", "members": ["a", "b"], "bond": {"mode": "active-backup",
                                                                           "miiMonitorInterval": 100}},
        {"name": "v7", "type": "vlan", "vlan": {"id": 7, "link": "bond0"}, "addresses": ["2001:db8::7/64"],
         "mtu": 1400},
    ]}, "test")
    assert plan(network, [ETH0, ENS4]).commands == [
        ["link", "add", "bond0", "type", "bond", "mode", "active-backup", "miimon", "100"],
        ["link", "set", "dev", "eth0", "down"], ["link", "set", "dev", "eth0", "master", "bond0"],
        ["link", "set", "dev", "eth0", "up"],
        ["link", "set", "dev", "ens4", "down"], ["link", "set", "dev", "ens4", "master", "bond0"],
        ["link", "set", "dev", "ens4", "up"],
        ["link", "set", "dev", "bond0", "up"],
        ["link", "add", "link", "bond0", "name", "v7", "type", "vlan", "id", "7"],
        ["link", "set", "dev", "v7", "mtu", "1400"], ["link", "set", "dev", "v7", "up"],
        ["addr", "replace", "2001:db8::7/64", "dev", "v7", "nodad"],
    ]


def test_plan_without_a_matching_device_says_what_is_there() -> None:
    network = checked({"interfaces": [{"name": "x", "match": {"macAddress": "02:00:00:00:00:09"},
                                       "addresses": ["192.0.2.1/24"]}]}, "test")
    with pytest.raises(FetchError, match=r"no device matches interface 'x' \(present: eth0, ens4"):
        plan(network, [ETH0, ENS4])


def test_first_ethernet_for_an_ip_without_interface() -> None:
    network = checked(network_from_cmdline("ip=10.1.2.3::10.1.2.254:16::::") or {}, "cmdline")
    wifi = Device("aaa0", "02:00:00:00:00:01", None, False)
    assert plan(network, [wifi, ENS4, ETH0]).commands[0] == ["link", "set", "dev", "ens4", "up"]


def test_decide_stores_only_a_static_network(tmp_path: Path) -> None:
    stored = tmp_path / "initnet.json"
    line = decide(stored, "ip=192.0.2.10::192.0.2.1:24::eth0:off nameserver=192.0.2.53", None)
    assert line is not None and "eth0" in line
    data = json.loads(stored.read_text())
    assert data["origin"] == "kernel command line"
    assert data["network"]["interfaces"] == [{"name": "eth0", "addresses": ["192.0.2.10/24"],
                                              "gateway4": "192.0.2.1"}]
    assert stored.stat().st_mode & 0o777 == 0o600
    assert decide(stored, "ip=dhcp", None) is not None and not stored.exists()  # DHCP: the hooks' job
    assert decide(stored, "quiet", None) is None and not stored.exists()


def test_is_static() -> None:
    assert is_static(checked({"interfaces": [{"name": "e", "addresses": ["192.0.2.1/24"]}]}, "t"))
    assert not is_static(checked({"interfaces": [{"name": "e", "dhcp4": True}]}, "t"))
    assert not is_static(checked({"interfaces": []}, "t"))


BRING_UP = """
import subprocess, sys
from pathlib import Path
# the host's sysfs shows the host's devices: mount this namespace's own
subprocess.run(["mount", "-t", "sysfs", "sysfs", "/sys"], check=True)
from provision.boot.initnet import bring_up, decide
work = Path(sys.argv[1])
stored = work / "initnet.json"
print(decide(stored, sys.argv[2], None))
print(bring_up(stored, Path("/"), work / "resolv.conf"))
"""


def test_bring_up_for_real_in_a_network_namespace(tmp_path: Path) -> None:
    """ip= on the kernel command line, applied by iproute2 to a veth device found by its MAC."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare or ip missing")
    script = tmp_path / "bring_up.py"
    script.write_text(BRING_UP)
    cmdline = ("ifname=uplink:52:54:00:ab:cd:ef ip=192.0.2.10::192.0.2.1:24::uplink:none "
               "rd.route=10.0.0.0/8:192.0.2.254:uplink nameserver=192.0.2.53")
    shell = textwrap.dedent(f"""\
        set -e
        ip link add veth-a address 52:54:00:ab:cd:ef type veth peer name veth-b
        ip link set veth-b up
        {sys.executable} {script} {tmp_path} '{cmdline}'
        ip -j addr show dev veth-a > {tmp_path}/addr.json
        ip -j route show > {tmp_path}/route.json
    """)
    out = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", shell],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0 and "Operation not permitted" in out.stderr:
        pytest.skip("cannot create namespaces here")
    assert out.returncode == 0, out.stderr
    assert "static network up from kernel command line: veth-a 192.0.2.10/24" in out.stdout
    (link,) = json.loads((tmp_path / "addr.json").read_text())
    assert link["operstate"] in ("UP", "LOWERLAYERDOWN", "UNKNOWN") or "UP" in link["flags"]
    assert {(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"} == {("192.0.2.10", 24)}
    routes = {(r["dst"], r.get("gateway")) for r in json.loads((tmp_path / "route.json").read_text())}
    assert ("default", "192.0.2.1") in routes and ("10.0.0.0/8", "192.0.2.254") in routes
    assert (tmp_path / "resolv.conf").read_text() == "nameserver 192.0.2.53\n"


def test_provision_run_fetches_over_the_static_network_it_brought_up(tmp_path: Path) -> None:
    """The whole hand-off: the offline pass reads ip= and stops (75); the fetch phase configures the
    address and fetches a file from a server in another network namespace, reachable only through it."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None or shutil.which("ip") is None:
        pytest.skip("unshare, nsenter or ip missing")
    root, www = tmp_path / "root", tmp_path / "www"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    www.mkdir()
    (www / "motd").write_text("fetched over the static network\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"provision": {"version": "1.1.0"}, "storage": {"files": [
        {"path": "/etc/motd", "contents": {"source": "http://192.0.2.1:8080/motd"}}]}}))
    (tmp_path / "resolv.conf").write_text("")
    cmdline = "ifname=uplink:52:54:00:ab:cd:ef ip=192.0.2.10::192.0.2.1:24::uplink:none nameserver=192.0.2.53"
    provision = (f"{sys.executable} -m provision run --root {root} --config {config} "
                 f"--run-dir {tmp_path}/run --cmdline '{cmdline}'")
    python = sys.executable
    shell = textwrap.dedent(f"""\
        set -u
        mount -t sysfs sysfs /sys
        mount --bind {tmp_path}/resolv.conf /etc/resolv.conf
        ip link set lo up
        ip link add veth-a address 52:54:00:ab:cd:ef type veth peer name veth-b
        unshare --net sleep 120 &
        PEER=$!
        until [ "$(readlink /proc/$PEER/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.05; done
        ip link set veth-b netns $PEER
        nsenter -t $PEER -n sh -c 'ip link set lo up && ip addr add 192.0.2.1/24 dev veth-b && ip link set veth-b up'
        nsenter -t $PEER -n {python} -m http.server --bind 192.0.2.1 --directory {www} 8080 2>/dev/null &
        SERVER=$!
        until nsenter -t $PEER -n {python} -c "import socket; socket.create_connection(('192.0.2.1', 8080), 1)" \\
            2>/dev/null; do sleep 0.1; done
        PROVISION_STATE_DIR={tmp_path}/run {provision} --stage fetch-offline --stage disks
        echo "offline=$?"
        PROVISION_STATE_DIR={tmp_path}/run {provision} --stage fetch --stage disks --stage mount \\
            --stage files --stage umount
        echo "online=$?"
        kill $SERVER $PEER
    """)
    out = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", shell],
                         capture_output=True, text=True, timeout=300)
    if "Operation not permitted" in out.stderr and "offline=" not in out.stdout:
        pytest.skip("cannot create namespaces here")
    assert "offline=75" in out.stdout, out.stderr
    assert "online=0" in out.stdout, out.stderr
    assert "static network for the fetch from kernel command line: uplink" in out.stderr
    assert "static network up from kernel command line: veth-a 192.0.2.10/24" in out.stderr
    assert (root / "etc/motd").read_text() == "fetched over the static network\n"
    assert (tmp_path / "resolv.conf").read_text() == "nameserver 192.0.2.53\n"
