"""An image built for Ignition boots unchanged: its kernel arguments, fw_cfg key,
base configs (base.d, base.platform.d) and built-in user.ign all work."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.platforms.acquire import acquire_config
from provision.platforms.cmdline import parse_cmdline
from provision.platforms.detect import detect_platform
from provision.platforms.settings import Settings
from tests.standins.clouds import SimpleCloud
from tests.standins.http_server import LoopbackHTTPServer, Reply
from tests.standins.systree import make_sys_root

IGN = json.dumps({"ignition": {"version": "3.4.0"},
                  "storage": {"files": [{"path": "/etc/motd",
                                         "contents": {"source": "data:,from%20ignition"}}]}})


def settings(root: Path, cmdline: str, **kw: str) -> Settings:
    return Settings.load(sys_root=str(root), cmdline=cmdline, run_dir=str(root / "run"),
                         environ={}, **kw)


# --- kernel command line --------------------------------------------------------

def test_ignition_kernel_arguments_are_read_with_ignitions_names() -> None:
    args = parse_cmdline("ignition.firstboot ignition.platform.id=gcp "
                         "ignition.config.url=http://10.0.0.1/x.ign")
    assert args.firstboot and args.platform == "gce" and args.ignition_platform == "gcp"
    assert args.config_url == "http://10.0.0.1/x.ign"
    for ignition, ours in (("oraclecloud", "oracle"), ("aliyun", "alibaba"), ("metal", "metal"),
                           ("qemu", "qemu"), ("aws", "aws"), ("packet", "packet")):
        assert parse_cmdline(f"ignition.platform.id={ignition}").platform == ours


def test_provision_parameters_win_over_ignitions() -> None:
    args = parse_cmdline("provision.platform=aws ignition.platform.id=gcp "
                         "ignition.config.url=http://a/ provision.config.url=http://b/ "
                         "ignition.config.device=IGN ignition.config.path=/i.ign "
                         "provision.config.device=PROV")
    assert args.platform == "aws" and args.config_url == "http://b/"
    assert (args.config_device, args.config_path) == ("PROV", "/provision/config")


def test_ignition_config_device_needs_its_path_as_in_ignition(tmp_path: Path) -> None:
    args = parse_cmdline("ignition.config.device=CFG ignition.config.path=/config.ign")
    assert (args.config_device, args.config_path) == ("CFG", "/config.ign")
    for lonely in ("ignition.config.device=CFG", "ignition.config.path=/config.ign"):
        with pytest.raises(UsageError, match="must be given together"):
            settings(tmp_path, lonely)


def test_unknown_ignition_platform_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    make_sys_root(tmp_path / "root")
    with pytest.raises(UsageError, match=r"unknown platform 'nosuchcloud'.*aws"):
        acquire_config(settings(tmp_path / "root", "ignition.platform.id=nosuchcloud"))


def test_ignition_config_url_wins_over_the_platform_as_in_ignition(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with LoopbackHTTPServer() as pxe, SimpleCloud("/latest/user-data", b"{}") as imds:
        pxe.route("/node.ign", Reply(body=IGN.encode()))
        outcome = acquire_config(settings(
            root, f"ignition.platform.id=aws ignition.config.url={pxe.url('/node.ign')}",
            metadata_url=imds.base_url))
        assert outcome.data == IGN.encode() and outcome.platform == "aws"
        assert pxe.count("/node.ign") == 1
        assert imds.requests == []  # the cloud's metadata service was not asked


def test_ignition_config_url_on_metal_is_detected_and_offline_needs_network(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    s = settings(root, "ignition.firstboot ignition.platform.id=metal "
                       "ignition.config.url=http://192.0.2.1/x.ign")
    assert detect_platform(s).platform == "metal"
    outcome = acquire_config(s, offline=True)
    assert outcome.status == "need-network"
    assert (root / "run/neednet").exists()


def test_ignitions_fw_cfg_key_is_read(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root", fw_cfg=IGN.encode(),
                         fw_cfg_name="opt/com.coreos/config")
    s = settings(root, "")
    detection = detect_platform(s)
    assert detection.platform == "qemu"
    assert "opt/com.coreos/config" in detection.evidence[0].source
    outcome = acquire_config(s, offline=True)
    assert outcome.data == IGN.encode()
    assert "opt/com.coreos/config" in outcome.source


def test_our_fw_cfg_key_wins_over_ignitions(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root", fw_cfg=b"{}", fw_cfg_name="opt/com.coreos/config")
    ours = root / "sys/firmware/qemu_fw_cfg/by_name/opt/org.provision/config"
    ours.mkdir(parents=True)
    (ours / "size").write_text("2\n")
    (ours / "raw").write_bytes(b"[]")
    outcome = acquire_config(settings(root, "ignition.platform.id=qemu"), offline=True)
    assert outcome.data == b"[]" and "org.provision" in outcome.source


# --- the image's user config ------------------------------------------------------

def test_user_ign_in_the_image_is_the_config_before_the_platform(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root", fw_cfg=b'{"not": "used"}')
    vendor = root / "usr/lib/ignition/user.ign"
    vendor.parent.mkdir(parents=True)
    vendor.write_text(IGN)
    outcome = acquire_config(settings(root, "ignition.platform.id=qemu"), offline=True)
    assert outcome.data == IGN.encode()
    assert outcome.source == "system config /usr/lib/ignition/user.ign"
    # /etc beats /usr/lib, /run beats /etc (Ignition's order), ours beats Ignition's at a level.
    (root / "etc/ignition").mkdir(parents=True)
    (root / "etc/ignition/user.ign").write_text("{}")
    assert acquire_config(settings(root, ""), offline=True).source.endswith("/etc/ignition/user.ign")
    (root / "etc/provision").mkdir(parents=True)
    (root / "etc/provision/user.yaml").write_text("provision: {version: 1.0.0}\n")
    assert acquire_config(settings(root, ""), offline=True).source.endswith("/etc/provision/user.yaml")
    (root / "run/ignition").mkdir(parents=True)
    (root / "run/ignition/user.ign").write_text("{}")
    assert acquire_config(settings(root, ""), offline=True).source.endswith("/run/ignition/user.ign")


def test_kernel_command_line_url_wins_over_user_ign(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    (root / "usr/lib/ignition").mkdir(parents=True)
    (root / "usr/lib/ignition/user.ign").write_text("{}")
    url = "data:;base64," + base64.b64encode(IGN.encode()).decode()
    outcome = acquire_config(settings(root, f"ignition.config.url={url}"), offline=True)
    assert outcome.data == IGN.encode()


# --- base configs through the boot stages -------------------------------------------

def _boot(tmp_path: Path, sys_root: Path, cmdline: str, config: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    root = tmp_path / "target"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    argv = [sys.executable, "-m", "provision", "run", "--root", str(root),
            "--run-dir", str(tmp_path / "run"), "--sys-root", str(sys_root), "--cmdline", cmdline]
    if config is not None:
        path = tmp_path / "user-config"
        path.write_text(config)
        argv += ["--config", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROVISION_STATE_DIR": str(tmp_path / "run")})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _file(path: str, text: str, mode: int | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"path": path, "overwrite": True,
                                "contents": {"source": "data:," + text.replace(" ", "%20")}}
    if mode is not None:
        entry["mode"] = mode
    return entry


def _ign(*files: dict[str, object]) -> str:
    return json.dumps({"ignition": {"version": "3.3.0"}, "storage": {"files": list(files)}})


def test_base_configs_are_merged_under_the_users_config_as_ignition_does(tmp_path: Path) -> None:
    sys_root = make_sys_root(tmp_path / "sys", fw_cfg=_ign(
        _file("/etc/from-user", "user"), _file("/etc/shared", "user wins")).encode(),
        fw_cfg_name="opt/com.coreos/config")
    lib = sys_root / "usr/lib/ignition"
    _write(lib / "base.d/10-a.ign", _ign(_file("/etc/shared", "base"), _file("/etc/base-a", "a")))
    _write(lib / "base.d/20-b.ign", _ign(_file("/etc/base-b", "vendor b")))
    # /etc/ignition/base.d/20-b.ign replaces the vendor file of the same name
    _write(sys_root / "etc/ignition/base.d/20-b.ign", _ign(_file("/etc/base-b", "local b")))
    _write(lib / "base.platform.d/qemu/50-q.ign", _ign(_file("/etc/base-a", "qemu a")))
    _write(lib / "base.platform.d/aws/50-aws.ign", _ign(_file("/etc/not-on-qemu", "x")))
    # provision's own base.d (any format provision reads), merged over Ignition's
    _write(sys_root / "usr/lib/provision/base.d/90-ours.yaml",
           "provision: {version: 1.0.0}\nstorage:\n  files:\n"
           "    - {path: /etc/base-ours, overwrite: true, contents: {source: 'data:,ours'}}\n")
    done = _boot(tmp_path, sys_root, "ignition.firstboot ignition.platform.id=qemu")
    assert done.returncode == 0, done.stderr
    etc = tmp_path / "target/etc"
    assert (etc / "from-user").read_text() == "user"
    assert (etc / "shared").read_text() == "user wins"
    assert (etc / "base-a").read_text() == "qemu a"  # the platform's base.d comes later
    assert (etc / "base-b").read_text() == "local b"
    assert (etc / "base-ours").read_text() == "ours"
    assert not (etc / "not-on-qemu").exists()
    assert "merged over 4 base configs" in done.stderr


def test_base_configs_apply_when_the_platform_has_no_config(tmp_path: Path) -> None:
    sys_root = make_sys_root(tmp_path / "sys")
    _write(sys_root / "usr/lib/ignition/base.d/10.ign", _ign(_file("/etc/base", "b")))
    done = _boot(tmp_path, sys_root, "ignition.platform.id=metal")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "target/etc/base").read_text() == "b"


def test_an_invalid_base_config_stops_the_boot_before_anything_is_written(tmp_path: Path) -> None:
    sys_root = make_sys_root(tmp_path / "sys")
    _write(sys_root / "usr/lib/ignition/base.d/10.ign",
           '{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "relative"}]}}')
    _write(sys_root / "usr/lib/ignition/base.d/05.ign", _ign(_file("/etc/x", "x")))
    done = _boot(tmp_path, sys_root, "ignition.platform.id=metal")
    assert done.returncode == 1
    assert "path is not absolute (in /" in done.stderr
    assert "/usr/lib/ignition/base.d/10.ign line 1)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "target/etc/x").exists()


def test_provision_fetch_shows_the_config_merged_over_base_configs(tmp_path: Path) -> None:
    sys_root = make_sys_root(tmp_path / "sys", fw_cfg=_ign(_file("/etc/from-user", "u")).encode(),
                             fw_cfg_name="opt/com.coreos/config")
    _write(sys_root / "usr/lib/ignition/base.d/10.ign", _ign(_file("/etc/from-base", "b")))
    done = subprocess.run(
        [sys.executable, "-m", "provision", "fetch", "--sys-root", str(sys_root),
         "--cmdline", "ignition.platform.id=qemu"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PROVISION_RUN_DIR":
                                                          str(tmp_path / "run")})
    assert done.returncode == 0, done.stderr
    paths = [f["path"] for f in json.loads(done.stdout)["storage"]["files"]]
    assert paths == ["/etc/from-base", "/etc/from-user"]
    assert "merged over 1 base configs" in done.stderr
