"""Config drives, cidata and labelled devices as REAL iso9660 and vfat images on loop devices.

The kernel here may lack vfat/iso9660 drivers; then the datasource reads the
filesystem with xorriso/mcopy, which these tests exercise on the same loop
devices. Labels are presented through a --sys-root /dev/disk/by-label tree
(no udev here), pointing at the real loop device.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from provision.errors import FetchError
from provision.platforms.acquire import acquire_config
from provision.platforms.detect import detect_platform
from provision.platforms.settings import Settings
from tests.standins.openstack import OpenStackMetadata
from tests.standins.systree import loop_device, make_iso, make_sys_root, make_vfat

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("xorriso", "mkfs.vfat", "mcopy", "losetup")),
                       reason="needs xorriso, dosfstools, mtools, losetup"),
]

CONFIG = b'{"provision": {"version": "1.0.0"}}'
USER_DATA = "openstack/latest/user_data"


def settings(tmp_path: Path, labels: dict[str, str], cmdline: str = "", **kw: str) -> Settings:
    root = make_sys_root(tmp_path / "root", labels=labels)
    return Settings.load(sys_root=str(root), cmdline=cmdline, run_dir=str(tmp_path / "run"),
                         environ={}, **kw)


@pytest.mark.parametrize("fs, label", [("iso9660", "config-2"), ("vfat", "CONFIG-2")])
def test_openstack_config_drive_offline(fs: str, label: str, tmp_path: Path) -> None:
    make = make_iso if fs == "iso9660" else make_vfat
    network_data = b'{"links": [], "networks": [], "services": []}'
    image = make(tmp_path / f"drive.{fs}", label,
                 {USER_DATA: CONFIG, "openstack/latest/network_data.json": network_data})
    with loop_device(image) as device:
        s = settings(tmp_path, {label: device})
        assert detect_platform(s).platform == "openstack"
        outcome = acquire_config(s, offline=True)
    assert outcome.platform == "openstack" and outcome.data == CONFIG
    assert device in outcome.source
    assert outcome.extras == {"network_data.json": network_data}  # rendered like a network-config


def test_config_drive_without_user_data_is_no_config(tmp_path: Path) -> None:
    image = make_iso(tmp_path / "drive.iso", "config-2",
                     {"openstack/latest/meta_data.json": b"{}"})
    with loop_device(image) as device:
        outcome = acquire_config(settings(tmp_path, {"config-2": device}), offline=True)
    assert outcome.status == "none"


def test_config_drive_wins_the_race_against_a_slow_metadata_service(tmp_path: Path) -> None:
    from tests.standins.metadata import Answer

    image = make_vfat(tmp_path / "drive.img", "CONFIG-2", {USER_DATA: CONFIG})
    with loop_device(image) as device, OpenStackMetadata(b"from the service") as nova:
        nova.inject("/openstack/latest/user_data", Answer(200, b"slow", delay=5))
        s = settings(tmp_path, {"CONFIG-2": device}, platform="openstack",
                     metadata_url=nova.base_url)
        outcome = acquire_config(s)
    assert outcome.data == CONFIG


def test_cidata_vfat_user_data(tmp_path: Path) -> None:
    cloud_config = b"#cloud-config\nhostname: node1\n"
    image = make_vfat(tmp_path / "seed.img", "CIDATA",
                      {"user-data": cloud_config, "meta-data": b"instance-id: i-1\n"})
    with loop_device(image) as device:
        s = settings(tmp_path, {"CIDATA": device})
        assert detect_platform(s).platform == "nocloud"
        outcome = acquire_config(s, offline=True)
    assert outcome.data == cloud_config


def test_cidata_iso_with_base64_free_gzip_user_data(tmp_path: Path) -> None:
    import gzip

    image = make_iso(tmp_path / "seed.iso", "cidata", {"user-data": gzip.compress(CONFIG)})
    with loop_device(image) as device:
        outcome = acquire_config(settings(tmp_path, {"cidata": device}), offline=True)
    assert outcome.data == CONFIG


def test_metal_labelled_device_and_path(tmp_path: Path) -> None:
    image = make_vfat(tmp_path / "boot.img", "BOOTCFG", {"provision/node.json": CONFIG})
    with loop_device(image) as device:
        s = settings(tmp_path, {"BOOTCFG": device},
                     cmdline="provision.config.device=BOOTCFG provision.config.path=/provision/node.json")
        assert acquire_config(s, offline=True).data == CONFIG
        missing = settings(tmp_path / "b", {"BOOTCFG": device},
                           cmdline="provision.config.device=BOOTCFG provision.config.path=/nope")
        with pytest.raises(FetchError, match="has no /nope"):
            acquire_config(missing, offline=True)


def test_azure_custom_data_from_provisioning_media(tmp_path: Path) -> None:
    ovf = (b'<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
           b'xmlns:wa="http://schemas.microsoft.com/windowsazure"><wa:ProvisioningSection>'
           b'<wa:LinuxProvisioningConfigurationSet><wa:CustomData>'
           + base64.b64encode(CONFIG) +
           b'</wa:CustomData></wa:LinuxProvisioningConfigurationSet></wa:ProvisioningSection>'
           b'</Environment>')
    image = make_iso(tmp_path / "ovf.iso", "rd_rdfe_stable", {"ovf-env.xml": ovf})
    with loop_device(image) as device:
        root = make_sys_root(tmp_path / "root")
        (root / "dev/sr0").symlink_to(device)
        s = Settings.load(sys_root=str(root), cmdline="", platform="azure",
                          run_dir=str(tmp_path / "run"), environ={})
        outcome = acquire_config(s, offline=True)
    assert outcome.data == CONFIG and "CustomData" in outcome.source


def test_label_lookup_without_udev_uses_blkid(tmp_path: Path) -> None:
    # sys root "/" and no udev link for it: blkid finds the label on the loop device.
    from provision.platforms.systree import find_labelled_device

    image = make_vfat(tmp_path / "uniq.img", "PRVTEST7", {"x": b"y"})
    with loop_device(image) as device:
        found = find_labelled_device(Settings.load(sys_root="/", cmdline="", environ={}),
                                     ["PRVTEST7"])
    assert found == ("PRVTEST7", device)


def test_config_drive_appearing_late_is_picked_up_by_the_online_race(tmp_path: Path) -> None:
    import threading

    from tests.standins.metadata import Answer

    image = make_iso(tmp_path / "late.iso", "config-2", {USER_DATA: CONFIG})
    with loop_device(image) as device, OpenStackMetadata(b"from the service") as nova:
        nova.inject("/openstack/latest/user_data", Answer(200, b"slow", delay=4))
        s = settings(tmp_path, {}, platform="openstack", metadata_url=nova.base_url)
        link = s.sys_root / "dev/disk/by-label/config-2"
        # udev creating the link a moment after provision started looking
        timer = threading.Timer(0.5, lambda: link.symlink_to(device))
        timer.start()
        try:
            outcome = acquire_config(s)
        finally:
            timer.cancel()
    assert outcome.data == CONFIG and device in outcome.source
