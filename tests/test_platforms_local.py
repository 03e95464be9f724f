"""Platforms that need no metadata server: VMware guestinfo, QEMU fw_cfg, bare metal,
NoCloud seeds, local files — through --sys-root trees and a stand-in rpctool on PATH."""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.settings import Settings
from tests.standins.clouds import SimpleCloud
from tests.standins.systree import make_sys_root

CONFIG = b'{"provision": {"version": "1.0.0"}}'
STANDINS = Path(__file__).parent / "standins"


def settings(tmp_path: Path, cmdline: str = "", **kw: str) -> Settings:
    root = tmp_path / "root"
    if not root.exists():
        make_sys_root(root)
    return Settings.load(sys_root=str(root), cmdline=cmdline, run_dir=str(tmp_path / "run"),
                         environ={}, **kw)


# --- VMware -------------------------------------------------------------------

@pytest.fixture
def guestinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in vmware-rpctool on PATH; returns its state file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # A symlink, so the stand-in sees the name it was called by (as vmtoolsd does).
    (bindir / "vmware-rpctool").symlink_to(STANDINS / "fake_rpctool.py")
    state = tmp_path / "guestinfo.json"
    state.write_text(json.dumps({"values": {}, "calls": []}))
    monkeypatch.setenv("FAKE_RPCTOOL_STATE", str(state))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return state


def set_guestinfo(state: Path, values: dict[str, str]) -> None:
    state.write_text(json.dumps({"values": values, "calls": []}))


def get_state(state: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(state.read_text())
    return loaded


def test_vmware_reads_our_key_decodes_and_overwrites_it(guestinfo: Path, tmp_path: Path) -> None:
    set_guestinfo(guestinfo, {
        "guestinfo.provision.config.data": base64.b64encode(gzip.compress(CONFIG)).decode(),
        "guestinfo.provision.config.data.encoding": "gzip+base64",
    })
    outcome = acquire_config(settings(tmp_path, platform="vmware"), offline=True, scrub=True)
    assert outcome.data == CONFIG
    values = get_state(guestinfo)["values"]
    assert isinstance(values, dict)
    assert CONFIG.decode() not in json.dumps(values)
    assert values["guestinfo.provision.config.data"] == "-"
    # Read again (a second boot): the consumed key no longer yields a config.
    assert acquire_config(settings(tmp_path, platform="vmware")).status == "none"


def test_vmware_fetch_without_scrub_leaves_the_value(guestinfo: Path, tmp_path: Path) -> None:
    set_guestinfo(guestinfo, {"guestinfo.provision.config.data": CONFIG.decode()})
    assert acquire_config(settings(tmp_path, platform="vmware")).data == CONFIG
    values = get_state(guestinfo)["values"]
    assert isinstance(values, dict) and values["guestinfo.provision.config.data"] == CONFIG.decode()


@pytest.mark.parametrize("encoding, encode", [
    ("b64", lambda d: base64.b64encode(d)),
    ("base64", lambda d: base64.b64encode(d)),
    ("gz+b64", lambda d: base64.b64encode(gzip.compress(d))),
    ("", lambda d: d),
])
def test_vmware_ignition_keys_are_read_for_compatibility(
    guestinfo: Path, tmp_path: Path, encoding: str, encode: object
) -> None:
    assert callable(encode)
    values = {"guestinfo.ignition.config.data": encode(CONFIG).decode()}
    if encoding:
        values["guestinfo.ignition.config.data.encoding"] = encoding
    set_guestinfo(guestinfo, values)
    assert acquire_config(settings(tmp_path, platform="vmware")).data == CONFIG


def test_vmware_cloud_init_userdata_key(guestinfo: Path, tmp_path: Path) -> None:
    cloud_config = "#cloud-config\nhostname: vm1\n"
    set_guestinfo(guestinfo, {"guestinfo.userdata": base64.b64encode(cloud_config.encode()).decode(),
                              "guestinfo.userdata.encoding": "base64"})
    assert acquire_config(settings(tmp_path, platform="vmware")).data == cloud_config.encode()


def test_vmware_our_key_wins_over_ignitions(guestinfo: Path, tmp_path: Path) -> None:
    set_guestinfo(guestinfo, {"guestinfo.ignition.config.data": '{"ignition": {"version": "3.4.0"}}',
                              "guestinfo.provision.config.data": CONFIG.decode()})
    outcome = acquire_config(settings(tmp_path, platform="vmware"))
    assert outcome.data == CONFIG and "guestinfo.provision.config.data" in outcome.source


def test_vmware_ovfenv_fallback(guestinfo: Path, tmp_path: Path) -> None:
    ovf = f"""<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1">
  <PropertySection>
    <Property oe:key="guestinfo.ignition.config.data" oe:value="{base64.b64encode(CONFIG).decode()}"/>
    <Property oe:key="guestinfo.ignition.config.data.encoding" oe:value="base64"/>
  </PropertySection>
</Environment>"""
    set_guestinfo(guestinfo, {"guestinfo.ovfenv": ovf})
    assert acquire_config(settings(tmp_path, platform="vmware")).data == CONFIG


def test_vmware_missing_keys_mean_no_config(guestinfo: Path, tmp_path: Path) -> None:
    set_guestinfo(guestinfo, {})
    assert acquire_config(settings(tmp_path, platform="vmware")).status == "none"
    calls = get_state(guestinfo)["calls"]
    assert isinstance(calls, list) and "info-get guestinfo.provision.config.data" in calls


def test_vmware_bad_encoding_is_a_clear_error(guestinfo: Path, tmp_path: Path) -> None:
    set_guestinfo(guestinfo, {"guestinfo.provision.config.data": "x",
                              "guestinfo.provision.config.data.encoding": "rot13"})
    with pytest.raises(FetchError, match="unknown encoding 'rot13'"):
        acquire_config(settings(tmp_path, platform="vmware"))


def test_vmware_falls_back_to_vmtoolsd(guestinfo: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    (bindir / "vmware-rpctool").rename(bindir / "vmtoolsd")
    set_guestinfo(guestinfo, {"guestinfo.provision.config.data": CONFIG.decode()})
    assert acquire_config(settings(tmp_path, platform="vmware")).data == CONFIG


# --- QEMU fw_cfg -----------------------------------------------------------------

def test_qemu_fw_cfg_reads_whole_entry(tmp_path: Path) -> None:
    big = json.dumps({"provision": {"version": "1.0.0"}, "pad": "x" * 300_000}).encode()
    make_sys_root(tmp_path / "root", fw_cfg=big)
    outcome = acquire_config(settings(tmp_path, platform="qemu"), offline=True)
    assert outcome.data == big


def test_qemu_without_entry_is_no_config_and_module_load_is_attempted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "modprobe.log"
    fake = tmp_path / "modprobe"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PROVISION_TOOL_MODPROBE", str(fake))
    make_sys_root(tmp_path / "root")
    outcome = acquire_config(settings(tmp_path, platform="qemu"), offline=True)
    assert outcome.status == "none"
    assert log.read_text().split() == ["qemu_fw_cfg"]


def test_qemu_module_is_loaded_when_fw_cfg_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in modprobe does what loading qemu_fw_cfg does: the sysfs tree appears.
    staged = make_sys_root(tmp_path / "staged", fw_cfg=CONFIG)
    root = make_sys_root(tmp_path / "root")
    fake = tmp_path / "modprobe"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = qemu_fw_cfg ] || exit 1\n"
                    f"mkdir -p {root}/sys && cp -r {staged}/sys/firmware {root}/sys/\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PROVISION_TOOL_MODPROBE", str(fake))
    outcome = acquire_config(settings(tmp_path, platform="qemu"), offline=True)
    assert outcome.data == CONFIG


def test_qemu_size_mismatch_is_an_error(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root", fw_cfg=CONFIG)
    (root / "sys/firmware/qemu_fw_cfg/by_name/opt/org.provision/config/size").write_text("999\n")
    with pytest.raises(FetchError, match="999 bytes"):
        acquire_config(settings(tmp_path, platform="qemu"))


# --- bare metal ------------------------------------------------------------------

def test_metal_data_url_works_offline(tmp_path: Path) -> None:
    url = "data:;base64," + base64.b64encode(CONFIG).decode()
    outcome = acquire_config(settings(tmp_path, f"provision.config.url={url}"), offline=True)
    assert outcome.platform == "metal" and outcome.data == CONFIG


def test_metal_http_url_needs_network_then_fetches(tmp_path: Path) -> None:
    with SimpleCloud("/boot/config.json", CONFIG) as server:
        s = settings(tmp_path, f"provision.config.url={server.base_url}/boot/config.json "
                               "provision.fetch.timeout=5")
        offline = acquire_config(s, offline=True)
        assert offline.status == "need-network" and s.neednet_flag.is_file()
        assert server.requests == []  # the offline pass did not touch the network
        assert acquire_config(s).data == CONFIG


def test_metal_tftp_url(tmp_path: Path) -> None:
    from tests.standins.tftp_server import LoopbackTFTPServer

    with LoopbackTFTPServer(files={"node.ign": CONFIG}) as server:
        s = settings(tmp_path, f"provision.config.url={server.url('node.ign')} "
                               "provision.fetch.timeout=5")
        assert acquire_config(s, offline=True).status == "need-network"
        assert acquire_config(s).data == CONFIG


def test_metal_http_404_is_an_error_not_an_empty_config(tmp_path: Path) -> None:
    with SimpleCloud("/other", CONFIG) as server:
        s = settings(tmp_path, f"provision.config.url={server.base_url}/missing "
                               "provision.fetch.timeout=5")
        with pytest.raises(FetchError, match="404"):
            acquire_config(s)


def test_metal_without_source_is_no_config(tmp_path: Path) -> None:
    assert acquire_config(settings(tmp_path, "provision.platform=metal")).status == "none"


def test_metal_missing_labelled_device_is_an_error_after_the_deadline(tmp_path: Path) -> None:
    s = settings(tmp_path, "provision.config.device=BOOTCFG provision.fetch.timeout=0.5")
    with pytest.raises(FetchError, match="no filesystem labelled 'BOOTCFG'"):
        acquire_config(s)


# --- NoCloud seed, local file -------------------------------------------------------

def test_nocloud_seed_url_from_kernel_command_line(tmp_path: Path) -> None:
    with SimpleCloud("/seed/user-data", b"#cloud-config\nhostname: h1\n") as server:
        s = settings(tmp_path, f"ds=nocloud;s={server.base_url}/seed/ provision.fetch.timeout=5")
        assert acquire_config(s, offline=True).status == "need-network"
        outcome = acquire_config(s)
    assert outcome.platform == "nocloud" and outcome.data == b"#cloud-config\nhostname: h1\n"


def test_local_file_platform(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_bytes(gzip.compress(CONFIG))
    outcome = acquire_config(settings(tmp_path, config_file=str(config)), offline=True)
    assert outcome.platform == "file" and outcome.data == CONFIG
    with pytest.raises(FetchError, match="does not exist"):
        acquire_config(settings(tmp_path, config_file=str(tmp_path / "nope")))
