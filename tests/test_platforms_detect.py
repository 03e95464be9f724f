"""Platform detection from local evidence, the kernel command line and `provision detect`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provision.errors import UsageError
from provision.platforms.cmdline import parse_cmdline, split_cmdline
from provision.platforms.detect import detect_platform
from provision.platforms.settings import Settings
from tests.standins.systree import make_sys_root

CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("aws-nitro", {"dmi": {"sys_vendor": "Amazon EC2", "product_name": "m5.large"}}, "aws"),
    ("aws-xen-uuid", {"hypervisor_uuid": "ec2e1916-9099-7caf-fd21-012345abcdef"}, "aws"),
    ("aws-xen-dmi-uuid", {"dmi": {"product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF"}}, "aws"),
    ("aws-swapped-uuid", {"dmi": {"product_uuid": "45E12AEC-DCD1-B213-94ED-012345ABCDEF"}}, "aws"),
    ("gce", {"dmi": {"product_name": "Google Compute Engine", "sys_vendor": "Google"}}, "gce"),
    ("gce-serial", {"dmi": {"product_serial": "GoogleCloud-1234ABCD"}}, "gce"),
    ("azure", {"dmi": {"chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77",
                       "sys_vendor": "Microsoft Corporation"}}, "azure"),
    ("openstack", {"dmi": {"product_name": "OpenStack Nova", "sys_vendor": "QEMU"}}, "openstack"),
    ("otc", {"dmi": {"chassis_asset_tag": "OpenTelekomCloud"}}, "openstack"),
    ("digitalocean", {"dmi": {"sys_vendor": "DigitalOcean"}}, "digitalocean"),
    ("hetzner", {"dmi": {"sys_vendor": "Hetzner"}}, "hetzner"),
    ("oracle", {"dmi": {"chassis_asset_tag": "OracleCloud.com"}}, "oracle"),
    ("vmware", {"dmi": {"product_name": "VMware Virtual Platform",
                        "sys_vendor": "VMware, Inc."}}, "vmware"),
    ("qemu-plain", {"dmi": {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}},
     "qemu"),
    ("qemu-fw-cfg", {"fw_cfg": b"{}", "dmi": {"sys_vendor": "QEMU"}}, "qemu"),
    ("cidata-on-qemu", {"dmi": {"sys_vendor": "QEMU"}, "labels": {"cidata": "/dev/vdb"}}, "nocloud"),
    ("config-drive", {"labels": {"config-2": "/dev/sr0"}}, "openstack"),
    ("bare-metal-unknown", {"dmi": {"sys_vendor": "Dell Inc.", "product_name": "PowerEdge"}}, None),
    ("nothing", {}, None),
]


@pytest.mark.parametrize("name, tree, expected", CASES, ids=[c[0] for c in CASES])
def test_detection_table(name: str, tree: dict[str, Any], expected: str | None,
                         tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / name, **tree)
    detection = detect_platform(Settings.load(sys_root=str(root), cmdline="", environ={}))
    assert detection.platform == expected
    if expected:
        assert detection.evidence[0].platform == expected


def test_kernel_command_line_beats_dmi(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path, dmi={"sys_vendor": "Amazon EC2"},
                         cmdline="ro quiet provision.platform=vmware")
    detection = detect_platform(Settings.load(sys_root=str(root), environ={}))
    assert detection.platform == "vmware"
    assert [e.platform for e in detection.evidence] == ["vmware", "aws"]  # both are shown


def test_config_url_on_command_line_means_metal(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path, dmi={"sys_vendor": "QEMU"})
    s = Settings.load(sys_root=str(root), cmdline="provision.config.url=tftp://h/c", environ={})
    assert detect_platform(s).platform == "metal"


def test_detection_never_touches_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("detection opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    root = make_sys_root(tmp_path, dmi={"sys_vendor": "Amazon EC2"})
    assert detect_platform(Settings.load(sys_root=str(root), cmdline="", environ={})).platform == "aws"


def test_cmdline_parsing() -> None:
    args = parse_cmdline('BOOT_IMAGE=/vmlinuz ro provision.platform=aws '
                         'provision.config.url="http://h/a b" provision.fetch.timeout=30 '
                         'provision.firstboot provision.config.device=CFG '
                         'provision.config.path=/x.ign -- provision.platform=gce')
    assert args.platform == "aws"  # after "--" belongs to init
    assert args.config_url == "http://h/a b"
    assert args.fetch_timeout == 30.0
    assert args.firstboot and args.config_device == "CFG" and args.config_path == "/x.ign"
    assert parse_cmdline("ds=nocloud;s=http://10.0.0.2/seed/;i=x").nocloud_seed == \
        "http://10.0.0.2/seed/"
    assert parse_cmdline("provision.firstboot=0").firstboot is False


def test_bad_timeout_on_cmdline_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"provision\.fetch\.timeout"):
        Settings.load(sys_root=str(tmp_path), cmdline="provision.fetch.timeout=soon", environ={})


def test_environment_seams_and_flag_precedence(tmp_path: Path) -> None:
    env = {"PROVISION_METADATA_URL": "http://127.0.0.1:1", "PROVISION_SYS_ROOT": str(tmp_path),
           "PROVISION_CMDLINE": "provision.platform=gce"}
    s = Settings.load(environ=env)
    assert (s.metadata_url, s.sys_root, s.platform) == ("http://127.0.0.1:1", tmp_path, "gce")
    s = Settings.load(environ=env, platform="aws", metadata_url="http://127.0.0.1:2")
    assert (s.platform, s.metadata_url) == ("aws", "http://127.0.0.1:2")


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                               blacklist_characters='"'), min_size=1)
                .map(lambda w: "".join(w.split())).filter(bool), max_size=8))
def test_split_cmdline_round_trips_unquoted_words(words: list[str]) -> None:
    assert split_cmdline("  ".join(words)) == words


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_detect_cli_text_and_json(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path, dmi={"product_name": "Google Compute Engine"})
    started = time.monotonic()
    text = run_cli("detect", "--sys-root", str(root), "--cmdline", "")
    assert time.monotonic() - started < 30
    assert text.returncode == 0
    assert text.stdout.splitlines()[0] == "platform: gce"
    assert "/sys/class/dmi/id/product_name" in text.stdout
    data = json.loads(run_cli("detect", "--sys-root", str(root), "--cmdline", "",
                              "--format", "json").stdout)
    assert data["platform"] == "gce" and data["evidence"][0]["detail"] == "'Google Compute Engine'"


def test_detect_cli_without_evidence_exits_1(tmp_path: Path) -> None:
    result = run_cli("detect", "--sys-root", str(make_sys_root(tmp_path)), "--cmdline", "")
    assert result.returncode == 1
    assert "platform: unknown" in result.stdout and "provision.platform=" in result.stderr


def test_network_guard_blocks_non_loopback_before_anything_is_sent(_network_guard: list[str]) -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="network guard"):
        sock.connect(("169.254.169.254", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            pytest.raises(ConnectionRefusedError):
        udp.sendto(b"x", ("10.0.0.1", 69))
    assert _network_guard == ["('169.254.169.254', 80)", "('10.0.0.1', 69)"]
    _network_guard.clear()  # handled: the guard worked, the test should pass


def test_unknown_platform_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("detect", "fetch"):
        result = run_cli(command, "--platform", "bogus", "--sys-root", str(tmp_path),
                         "--cmdline", "")
        assert result.returncode == 2
        assert "unknown platform 'bogus'" in result.stderr and "aws" in result.stderr
