"""The platforms Ignition supports that provision lacked, each against a stand-in that
behaves like the real thing (lease files, KVP pool records, guest tools, drives)."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import textwrap
import time
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.detect import detect_platform
from provision.platforms.hyperv import KEY_SIZE, VALUE_SIZE
from provision.platforms.registry import platform_names
from provision.platforms.settings import Settings
from provision.platforms.zvm import spool_files
from tests.standins.clouds import SimpleCloud
from tests.standins.http_server import LoopbackHTTPServer, Reply
from tests.standins.metadata import Answer, Request
from tests.standins.systree import loop_device, make_iso, make_sys_root

CONFIG = b'{"ignition": {"version": "3.4.0"}}'


def settings(root: Path, cmdline: str = "", **kw: str) -> Settings:
    return Settings.load(sys_root=str(root), cmdline=cmdline, run_dir=str(root / "run"),
                         environ={}, **kw)


def test_every_ignition_platform_is_known() -> None:
    ignition = {"aliyun", "applehv", "aws", "azure", "azurestack", "cloudstack", "digitalocean",
                "exoscale", "gcp", "hetzner", "hyperv", "ibmcloud", "kubevirt", "metal",
                "nutanix", "openstack", "oraclecloud", "packet", "powervs", "proxmoxve", "qemu",
                "scaleway", "upcloud", "virtualbox", "vmware", "vultr", "zvm", "akamai"}
    from provision.platforms.cmdline import parse_cmdline

    ours = set(platform_names())
    missing = {p for p in ignition if parse_cmdline(f"ignition.platform.id={p}").platform not in ours}
    assert missing == set()


# --- CloudStack -------------------------------------------------------------------

class CloudStackRouter(SimpleCloud):
    """The virtual router: user-data plus a flat meta-data tree with a listing."""

    META = {"instance-id": b"i-42-VM", "local-hostname": b"vm-42", "availability-zone": b"zone1"}

    def answer(self, request: Request) -> Answer:
        if request.path == "/latest/meta-data/":
            return Answer(200, b"\n".join(k.encode() for k in self.META))
        key = request.path.removeprefix("/latest/meta-data/")
        if key in self.META:
            return Answer(200, self.META[key])
        return super().answer(request)


def test_cloudstack_asks_the_dhcp_server_from_the_networkd_lease(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    leases = root / "run/systemd/netif/leases"
    leases.mkdir(parents=True)
    with CloudStackRouter("/latest/user-data", CONFIG) as router:
        # The lease names the router; port and scheme come from the seam only in tests,
        # so the lease here names 127.0.0.1 and the stand-in listens on its own port.
        (leases / "2").write_text(f"# This is private data.\nADDRESS=10.1.1.5\n"
                                  f"SERVER_ADDRESS=127.0.0.1:{router.port}\n")
        s = settings(root, "ignition.platform.id=cloudstack")
        assert acquire_config(s, offline=True).status == "need-network"
        outcome = acquire_config(s)
    assert outcome.data == CONFIG and outcome.platform == "cloudstack"
    assert f"127.0.0.1:{router.port}/latest/user-data" in outcome.source
    import yaml

    assert yaml.safe_load(outcome.extras["meta-data"]) == {
        k: v.decode() for k, v in CloudStackRouter.META.items()}


def test_cloudstack_dhclient_lease_and_no_user_data(tmp_path: Path) -> None:
    from provision.platforms.cloudstack import dhcp_server

    root = make_sys_root(tmp_path / "root")
    lease = root / "var/lib/dhclient/dhclient-eth0.leases"
    lease.parent.mkdir(parents=True)
    lease.write_text("lease {\n  interface \"eth0\";\n  option dhcp-server-identifier 10.0.0.1;\n}\n"
                     "lease {\n  interface \"eth0\";\n  option dhcp-server-identifier 10.0.0.9;\n}\n")
    assert dhcp_server(settings(root)) == "10.0.0.9"  # the newest lease block
    with SimpleCloud("/latest/user-data", None) as router:
        outcome = acquire_config(settings(root, "provision.platform=cloudstack",
                                          metadata_url=router.base_url))
    assert outcome.status == "none"


def test_cloudstack_without_lease_or_drive_fails_clearly(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with pytest.raises(FetchError, match="no DHCP lease names the virtual router"):
        acquire_config(settings(root, "provision.platform=cloudstack provision.fetch.wait=0.5"))


# --- Hyper-V KVP --------------------------------------------------------------------

def kvp_pool(pairs: list[tuple[str, str]]) -> bytes:
    return b"".join(k.encode().ljust(KEY_SIZE, b"\0") + v.encode().ljust(VALUE_SIZE, b"\0")
                    for k, v in pairs)


def test_hyperv_reads_ignitions_split_kvp_keys(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    config = json.dumps({"ignition": {"version": "3.4.0"},
                         "storage": {"files": [{"path": f"/etc/f{i}"} for i in range(120)]}})
    assert len(config) > VALUE_SIZE  # needs the split form
    chunks = [config[i:i + 2000] for i in range(0, len(config), 2000)]
    pool = root / "var/lib/hyperv/.kvp_pool_0"
    pool.parent.mkdir(parents=True)
    pool.write_bytes(kvp_pool([("OtherKey", "x"), *((f"ignition.config.{i}", c)
                                                    for i, c in enumerate(chunks))]))
    outcome = acquire_config(settings(root, "ignition.platform.id=hyperv"), offline=True)
    assert outcome.data == config.encode()
    assert outcome.source == f"hyperv KVP ignition.config.0..{len(chunks) - 1}"


def test_hyperv_single_key_and_ours_first(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    pool = root / "var/lib/hyperv/.kvp_pool_0"
    pool.parent.mkdir(parents=True)
    pool.write_bytes(kvp_pool([("ignition.config", "{}"), ("provision.config", "[]")]))
    assert acquire_config(settings(root, "provision.platform=hyperv")).data == b"[]"
    pool.write_bytes(kvp_pool([("Something", "else")]))
    assert acquire_config(settings(root, "provision.platform=hyperv")).status == "none"


def test_hyperv_without_the_kvp_daemon_explains(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with pytest.raises(FetchError, match="hv_kvp_daemon"):
        acquire_config(settings(root, "provision.platform=hyperv provision.fetch.wait=0.3"))


# --- Equinix Metal (packet) ----------------------------------------------------------

def test_packet_userdata(tmp_path: Path) -> None:
    with SimpleCloud("/userdata", CONFIG) as packet:
        outcome = acquire_config(settings(make_sys_root(tmp_path / "r"), "ignition.platform.id=packet",
                                          metadata_url=packet.base_url))
        assert outcome.data == CONFIG


# --- guest tools: VirtualBox, z/VM ------------------------------------------------------

def fake_tool(tmp_path: Path, name: str, script: str) -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_virtualbox_guest_property(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls"
    tool = fake_tool(tmp_path, "VBoxControl", f"""\
        echo "$@" >> {log}
        case "$4" in
        /Ignition/Config) printf 'Value: %s\\n' '{CONFIG.decode()}' ;;
        *) echo "No value set!"; exit 2 ;;
        esac
        """)
    monkeypatch.setenv("PROVISION_TOOL_VBOXCONTROL", str(tool))
    outcome = acquire_config(settings(make_sys_root(tmp_path / "r"), "ignition.platform.id=virtualbox"))
    assert outcome.data == CONFIG
    assert log.read_text().splitlines() == [
        "--nologo guestproperty get /Ignition/Config/Encoding",
        "--nologo guestproperty get /Ignition/Config"]


def test_virtualbox_refuses_an_encoding_as_ignition_does(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tool = fake_tool(tmp_path, "VBoxControl", "echo 'Value: gzip'\n")
    monkeypatch.setenv("PROVISION_TOOL_VBOXCONTROL", str(tool))
    with pytest.raises(FetchError, match="unsupported /Ignition/Config/Encoding"):
        acquire_config(settings(make_sys_root(tmp_path / "r"), "provision.platform=virtualbox"))


VMUR_LIST = """\
ORIGINID FILE  CLASS RECORDS  CPY HOLD DATE  TIME     NAME      TYPE     DIST
RSCS     0004  B PUN 00000012 001 NONE 04/01 11:12:13 readme    txt      SYSPROG
RSCS     0007  A PUN 00000040 001 NONE 04/01 11:12:14 node      ign      SYSPROG
"""


def test_zvm_receives_the_ign_spool_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert spool_files(VMUR_LIST) == [("0004", "readme", "txt"), ("0007", "node", "ign")]
    log = tmp_path / "calls"
    listing = tmp_path / "listing"
    listing.write_text(VMUR_LIST)
    padded = tmp_path / "spool"
    padded.write_bytes(CONFIG + b"\0" * 50)  # card records are padded
    for name, script in {
        "modprobe": f'echo "modprobe $*" >> {log}\n',
        "chccwdev": f'echo "chccwdev $*" >> {log}\n',
        "cio_ignore": f'echo "cio_ignore $*" >> {log}\n',
        "vmur": f'echo "vmur $*" >> {log}\n'
                f'if [ "$1" = li ]; then cat {listing}; else cp {padded} "$4"; fi\n',
    }.items():
        monkeypatch.setenv(f"PROVISION_TOOL_{name.upper()}", str(fake_tool(tmp_path, name, script)))
    outcome = acquire_config(settings(make_sys_root(tmp_path / "r"), "ignition.platform.id=zvm"))
    assert outcome.data == CONFIG
    calls = log.read_text().splitlines()
    assert calls[:3] == ["modprobe vmur", "chccwdev -e 000c", "vmur li"]
    assert calls[3].startswith("vmur re -f 0007 ") and calls[3].endswith("/node.ign")


# --- applehv (vsock; the TCP seam here) -------------------------------------------------

def test_applehv_gets_the_config_with_ignitions_request(tmp_path: Path) -> None:
    with LoopbackHTTPServer() as host:
        host.route("/", Reply(body=CONFIG))
        s = settings(make_sys_root(tmp_path / "r"), "ignition.platform.id=applehv",
                     metadata_url=host.base_url)
        outcome = acquire_config(s)
        assert outcome.data == CONFIG
        assert host.requests[0].headers["Accept"] == "application/json"


def test_applehv_without_vsock_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_TOOL_MODPROBE", str(fake_tool(tmp_path, "modprobe", "exit 0\n")))
    root = make_sys_root(tmp_path / "r")
    with pytest.raises(FetchError, match="applehv: "):
        acquire_config(settings(root, "provision.platform=applehv provision.fetch.wait=1"))


# --- azurestack ---------------------------------------------------------------------------

def test_azurestack_without_media_has_no_config_and_never_asks_imds(tmp_path: Path) -> None:
    with SimpleCloud("/metadata/instance/compute/userData", CONFIG) as imds:
        outcome = acquire_config(settings(make_sys_root(tmp_path / "r"),
                                          "ignition.platform.id=azurestack",
                                          metadata_url=imds.base_url))
        assert outcome.status == "none" and imds.requests == []


# --- drives: kubevirt, proxmoxve, nutanix, ibmcloud, powervs -------------------------------

needs_iso = pytest.mark.skipif(not all(shutil.which(t) for t in ("xorriso", "losetup")),
                               reason="needs xorriso and losetup")


@pytest.mark.root
@needs_iso
def test_kubevirt_config_drive_with_openstack_extras(tmp_path: Path) -> None:
    image = make_iso(tmp_path / "cd.iso", "config-2", {
        "openstack/latest/user_data": CONFIG,
        "openstack/latest/network_data.json": b'{"links": []}'})
    with loop_device(image) as device:
        root = make_sys_root(tmp_path / "r", labels={"config-2": device},
                             dmi={"sys_vendor": "KubeVirt"})
        s = settings(root)
        assert detect_platform(s).platform == "kubevirt"
        outcome = acquire_config(s, offline=True)
    assert outcome.data == CONFIG
    assert outcome.extras == {"network_data.json": b'{"links": []}'}


@pytest.mark.root
@needs_iso
def test_proxmoxve_vendor_data_config_wins_over_generated_cloud_config(tmp_path: Path) -> None:
    generated = b"#cloud-config\nhostname: pve-generated\n"
    image = make_iso(tmp_path / "ci.iso", "cidata", {"user-data": generated,
                                                     "vendor-data": CONFIG,
                                                     "meta-data": b"instance-id: 9000\n"})
    with loop_device(image) as device:
        root = make_sys_root(tmp_path / "r", labels={"cidata": device})
        outcome = acquire_config(settings(root, "ignition.platform.id=proxmoxve"), offline=True)
        assert outcome.data == CONFIG and outcome.source.endswith("vendor-data")
        assert outcome.extras["meta-data"] == b"instance-id: 9000\n"
    # Only the generated cloud-config: that is the config (provision imports cloud-config).
    image2 = make_iso(tmp_path / "ci2.iso", "cidata", {"user-data": generated,
                                                       "vendor-data": b"#cloud-config\n{}\n"})
    with loop_device(image2) as device:
        root = make_sys_root(tmp_path / "r2", labels={"cidata": device})
        outcome = acquire_config(settings(root, "ignition.platform.id=proxmoxve"), offline=True)
        assert outcome.data == generated


def test_drive_platforms_without_their_drive(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "r")
    for quiet in ("ibmcloud", "proxmoxve"):  # Ignition gives up quietly: no config
        started = time.monotonic()
        outcome = acquire_config(settings(root, f"ignition.platform.id={quiet} "
                                                "provision.fetch.wait=0.4"), offline=True)
        assert outcome.status == "none" and "cidata" in outcome.source
        assert time.monotonic() - started < 5
    for waits in ("nutanix", "powervs", "kubevirt"):  # Ignition waits for good: an error here
        with pytest.raises(FetchError, match=r"no drive labelled .*config-2.* within 0\.4 s"):
            acquire_config(settings(root, f"ignition.platform.id={waits} "
                                          "provision.fetch.wait=0.4"), offline=True)


def test_base64_user_data_through_a_declarative_entry_is_not_guessed(tmp_path: Path) -> None:
    # Packet does not declare an encoding: base64-looking user data stays as it is.
    encoded = base64.b64encode(CONFIG)
    with SimpleCloud("/userdata", encoded) as packet:
        outcome = acquire_config(settings(make_sys_root(tmp_path / "r"), "provision.platform=packet",
                                          metadata_url=packet.base_url))
    assert outcome.data == encoded
