"""Boot real VMs (QEMU, TCG) with an initramfs built by our initramfs-tools hook.

The guest is Debian's kernel, the hook-built initramfs, a small root
filesystem on vda (busybox; /sbin/init reports and powers off) and blank
disks. Each boot has a hard timeout and QEMU is always killed; the disk
images are inspected from the host afterwards.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.standins.aws_imds import TOKEN_HEADER, AwsImds
from tests.standins.metadata import Answer
from tests.vm import guest
from tests.vm.conftest import VmEnv
from tests.vm.guest import record_timings

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

CONFIGS = Path(__file__).parent / "configs"
BOOT_TIMEOUT = 480
FIRSTBOOT = "root=/dev/vda ro provision.firstboot"
# Secrets that must never reach the console.
PASSWORD_HASH = "$6$vmtestsalt$Xo6rV3Qd2Ls6b1X0mJ8N0eFv1qY7cZkPpW9tR2uHs4aG5jK8lM3nB7vC1xD6eF0gH9iJ2kL4mN8oP5qR3sT1u"


def full_config(hostname: str) -> bytes:
    return (CONFIGS / "full.json").read_text().replace("@HOSTNAME@", hostname).encode()


def small_config(hostname: str) -> bytes:
    return json.dumps({
        "provision": {"version": "1.0.0"},
        "storage": {"files": [
            {"path": "/etc/hostname", "mode": 420, "overwrite": True,
             "contents": {"source": f"data:,{hostname}%0A"}},
        ]},
        "passwd": {"users": [{"name": "ops", "uid": 1600}]},
    }).encode()


def assert_booted(boot: guest.Boot) -> None:
    assert boot.status == 0 and guest.INIT_MARKER in boot.console, (
        f"the guest did not reach its root filesystem ({boot.stopped_at}):\n{boot.console[-4000:]}"
    )


def read_root(root_image: Path, tmp_path: Path, *paths: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    with guest.mounted(root_image, tmp_path / "mnt-root") as root:
        for path in paths:
            file = root / path.lstrip("/")
            out[path] = file.read_text() if file.exists() else None
    return out


# --- 1. fw_cfg ------------------------------------------------------------

@pytest.fixture(scope="module")
def fwcfg_boot(vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory) -> tuple[guest.Boot, Path, Path]:
    """Case 1's boot, shared with the second-boot test (which boots its disks again)."""
    work = tmp_path_factory.mktemp("fwcfg")
    root = guest.build_root_image(work / "root.img")
    data = guest.blank_disk(work / "data.img", 64)
    config = work / "config.json"
    config.write_bytes(full_config("vm-fwcfg"))
    vm = vm_env.vm([root, data], FIRSTBOOT + " panic=-1", fw_cfg=config)
    boot = vm.boot(work / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("fw_cfg first boot", boot)
    return boot, root, data


def test_fw_cfg_config_partitions_formats_and_writes_the_root(
    fwcfg_boot: tuple[guest.Boot, Path, Path], tmp_path: Path
) -> None:
    boot, root, data = fwcfg_boot
    assert_booted(boot)
    assert "config from qemu fw_cfg opt/org.provision/config is valid" in boot.console

    parts = {p.name: p for p in guest.partitions(data)}
    assert set(parts) == {"data", "swap"}
    assert parts["data"].size == 24 << 20 and parts["swap"].size == 8 << 20
    with guest.loop_device(data, parts["swap"]) as dev:
        assert guest.probe(dev)["TYPE"] == "swap"
    with guest.loop_device(data, parts["data"]) as dev:
        fs = guest.probe(dev)
    assert (fs["TYPE"], fs["LABEL"]) == ("ext4", "DATA")
    with guest.mounted(data, tmp_path / "mnt-data", parts["data"]) as mnt:
        # Written through the mount stage's mount of /var/lib/data.
        assert (mnt / "hello.txt").read_text() == "hello from the data disk\n"
        assert (mnt / "hello.txt").stat().st_mode & 0o777 == 0o600
        assert (mnt / "app").is_dir()

    with guest.mounted(root, tmp_path / "mnt-root") as mnt:
        assert (mnt / "etc/hostname").read_text() == "vm-fwcfg\n"
        passwd = (mnt / "etc/passwd").read_text()
        assert any(line.startswith("alice:x:1501:") for line in passwd.splitlines())
        assert any(line.startswith("admins:x:1500:") and line.endswith("alice")
                   for line in (mnt / "etc/group").read_text().splitlines())
        keys = mnt / "home/alice/.ssh/authorized_keys.d/provision"
        assert "alice@laptop" in keys.read_text()
        assert keys.stat().st_uid == 1501 and keys.stat().st_mode & 0o777 == 0o600
        unit = mnt / "etc/systemd/system/hello.service"
        assert "ExecStart=/bin/echo hello" in unit.read_text()
        wants = mnt / "etc/systemd/system/multi-user.target.wants/hello.service"
        assert wants.is_symlink()
        daemon = json.loads((mnt / "etc/docker/daemon.json").read_text())
        assert daemon["registry-mirrors"] == ["https://mirror.internal.example:5000"]
        record = json.loads((mnt / "etc/.provision/result.json").read_text())
        assert record["status"] == "succeeded" and record["platform"] == "qemu"
        assert {s["name"]: s["status"] for s in record["stages"]} == {
            "kargs": "empty", "disks": "applied", "mount": "applied", "grow": "applied",
            "users": "applied", "instance": "applied", "files": "applied", "network": "empty",
            "units": "applied", "containers": "applied",
        }
        # The mount stage's mount was undone before switching root: the file
        # is on the data disk, not in the root's /var/lib/data.
        assert not (mnt / "var/lib/data/hello.txt").exists()


# --- 5. second boot ---------------------------------------------------------

def test_second_boot_of_a_provisioned_disk_provisions_nothing(
    fwcfg_boot: tuple[guest.Boot, Path, Path], vm_env: VmEnv, tmp_path: Path
) -> None:
    first, root, data = fwcfg_boot
    assert_booted(first)
    record_before = read_root(root, tmp_path, "/etc/.provision/result.json")
    data_before = guest.sha256_file(data)
    # The stamp was not removed (say): provision.firstboot is still there, and
    # the platform now offers another config. The root's record wins.
    config = tmp_path / "other.json"
    config.write_bytes(full_config("another-name"))
    vm = vm_env.vm([root, data], FIRSTBOOT + " panic=-1", fw_cfg=config)
    boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("fw_cfg second boot (skipped)", boot)
    assert_booted(boot)
    assert "not provisioning again" in boot.console
    assert "provision: disks:" not in boot.console  # no stage ran
    assert "provisioned /root" not in boot.console
    assert guest.sha256_file(data) == data_before
    after = read_root(root, tmp_path, "/etc/.provision/result.json", "/etc/hostname")
    assert after["/etc/.provision/result.json"] == record_before["/etc/.provision/result.json"]
    assert after["/etc/hostname"] == "vm-fwcfg\n"


def test_without_the_firstboot_flag_nothing_runs(
    vm_env: VmEnv, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = fresh_disks
    data_before = guest.sha256_file(data)
    config = tmp_path / "config.json"
    config.write_bytes(full_config("never"))
    boot = vm_env.vm([root, data], "root=/dev/vda ro panic=-1", fw_cfg=config).boot(
        tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("same image, no provision.firstboot", boot)
    assert_booted(boot)
    assert "provision:" not in boot.console
    assert guest.sha256_file(data) == data_before
    assert read_root(root, tmp_path, "/etc/hostname")["/etc/hostname"] == "image\n"


# --- 2. AWS-style metadata service over restricted user networking ---------

def test_aws_metadata_service_through_guestfwd(
    vm_env: VmEnv, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = fresh_disks
    with AwsImds(small_config("vm-aws")) as imds:
        vm = vm_env.vm([root, data], FIRSTBOOT + " panic=-1 provision.platform=aws",
                       imds_port=imds.port)
        assert any("restrict=on" in arg for arg in vm.argv(tmp_path / "x"))
        boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
        requests = list(imds.requests)
    record_timings("aws first boot", boot)
    assert_booted(boot)
    assert "the network is needed" in boot.console
    # IMDSv2: a token first, then user data with the token.
    assert requests[0].method == "PUT" and requests[0].path == "/latest/api/token"
    user_data = [r for r in requests if r.path == "/latest/user-data"]
    assert user_data and all(r.headers.get(TOKEN_HEADER) for r in user_data)
    files = read_root(root, tmp_path, "/etc/hostname", "/etc/passwd", "/etc/.provision/result.json")
    assert files["/etc/hostname"] == "vm-aws\n"
    assert "ops:x:1600:" in (files["/etc/passwd"] or "")
    assert json.loads(files["/etc/.provision/result.json"] or "{}")["platform"] == "aws"


def test_static_address_from_ip_instead_of_dhcp(
    vm_env: VmEnv, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    """ip= with a static address: the fetch phase brings it up itself (no DHCP) and fetches over it."""
    root, data = fresh_disks
    static = "ip=169.254.0.40::169.254.0.2:255.255.0.0:::none"  # no interface: the first Ethernet device
    with AwsImds(small_config("vm-static")) as imds:
        vm = vm_env.vm([root, data], FIRSTBOOT + f" panic=-1 provision.platform=aws {static}",
                       imds_port=imds.port)
        boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
        requests = list(imds.requests)
    record_timings("aws first boot, static ip=", boot)
    assert_booted(boot)
    assert "static network for the fetch from kernel command line: ip0" in boot.console
    assert "static network up from kernel command line:" in boot.console
    assert "169.254.0.40/16" in boot.console
    assert "IP-Config" not in boot.console  # initramfs-tools' DHCP (ipconfig) did not run
    assert any(r.path == "/latest/user-data" for r in requests)
    files = read_root(root, tmp_path, "/etc/hostname")
    assert files["/etc/hostname"] == "vm-static\n"


# --- 3. OpenStack config drive ----------------------------------------------

def test_openstack_config_drive(vm_env: VmEnv, fresh_disks: tuple[Path, Path], tmp_path: Path) -> None:
    root, data = fresh_disks
    drive = guest.config_drive(tmp_path / "config-2.iso", small_config("vm-configdrive"))
    vm = vm_env.vm([root, data, drive], FIRSTBOOT + " panic=-1 provision.platform=openstack")
    boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
    record_timings("openstack config drive first boot", boot)
    assert_booted(boot)
    assert "the network is needed" not in boot.console
    files = read_root(root, tmp_path, "/etc/hostname", "/etc/.provision/result.json")
    assert files["/etc/hostname"] == "vm-configdrive\n"
    assert json.loads(files["/etc/.provision/result.json"] or "{}")["platform"] == "openstack"


# --- 4. failures stop the boot ------------------------------------------------

EMERGENCY_SHELL = r"\(initramfs\) "  # busybox sh's prompt in the initramfs


def test_invalid_config_stops_in_the_emergency_shell_and_touches_nothing(
    vm_env: VmEnv, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = fresh_disks
    spec = json.loads(full_config("invalid"))
    spec["passwd"]["users"][0]["passwordHash"] = PASSWORD_HASH
    spec["storage"]["files"][0]["mode"] = "rw-r--r--"  # not a number
    config = tmp_path / "config.json"
    config.write_text(json.dumps(spec))
    before = (guest.sha256_file(root), guest.sha256_file(data))
    boot = vm_env.vm([root, data], FIRSTBOOT, fw_cfg=config).boot(
        tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[EMERGENCY_SHELL])
    assert boot.stopped_at == EMERGENCY_SHELL, boot.console[-4000:]
    console = boot.console
    assert "provision: FAILED in stage fetch-offline" in console
    assert "item:  config $.storage.files[0].mode" in console
    assert "full log: /run/provision/provision.log" in console
    assert guest.INIT_MARKER not in console
    # Never the config: not the secret, not the contents.
    assert PASSWORD_HASH not in console and "mirror.internal.example" not in console
    assert (guest.sha256_file(root), guest.sha256_file(data)) == before


def test_failing_fetch_stops_in_the_emergency_shell_and_touches_nothing(
    vm_env: VmEnv, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = fresh_disks
    before = (guest.sha256_file(root), guest.sha256_file(data))
    with AwsImds(small_config("never")) as imds:
        imds.inject("/latest/user-data", *[Answer(500, b"Internal Server Error")] * 1000)
        vm = vm_env.vm([root, data], FIRSTBOOT + " provision.platform=aws provision.fetch.timeout=8",
                       imds_port=imds.port)
        boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[EMERGENCY_SHELL])
    assert boot.stopped_at == EMERGENCY_SHELL, boot.console[-4000:]
    assert "provision: FAILED in stage fetch" in boot.console
    assert "cause:" in boot.console and "500" in boot.console
    assert guest.INIT_MARKER not in boot.console
    assert (guest.sha256_file(root), guest.sha256_file(data)) == before


# --- dracut: the same engine under systemd in the initrd ----------------------

@pytest.fixture(scope="module")
def dracut_initrd(vm_env: VmEnv) -> Path:
    if shutil.which("dracut") is None:
        pytest.skip("dracut is not installed (Debian: dracut-core, which coexists with initramfs-tools)")
    kver = guest.kernel_version()
    assert kver is not None
    return guest.build_dracut_initramfs(vm_env.workdir / "dracut.img", vm_env.workdir, kver)


def test_dracut_units_provision_on_first_boot(
    vm_env: VmEnv, dracut_initrd: Path, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = fresh_disks
    config = tmp_path / "config.json"
    config.write_bytes(full_config("vm-dracut"))
    vm = guest.Vm(vm_env.kernel, dracut_initrd, [root, data], FIRSTBOOT + " panic=-1",
                  fw_cfg=config, memory_mib=1024)
    boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[DRACUT_EMERGENCY])
    record_timings("dracut fw_cfg first boot", boot)
    assert_booted(boot)
    # One unit per stage, in order.
    order = [boot.console.find(f"stage={s} ") for s in
             ("fetch-offline", "disks", "mount", "files", "umount")]
    assert -1 not in order and order == sorted(order), order
    assert {p.name for p in guest.partitions(data)} == {"data", "swap"}
    files = read_root(root, tmp_path, "/etc/hostname", "/etc/.provision/result.json")
    assert files["/etc/hostname"] == "vm-dracut\n"
    assert json.loads(files["/etc/.provision/result.json"] or "{}")["status"] == "succeeded"


DRACUT_EMERGENCY = r"Entering emergency mode|emergency mode\. After logging in"


def test_dracut_invalid_config_reaches_the_emergency_target(
    vm_env: VmEnv, dracut_initrd: Path, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = fresh_disks
    spec = json.loads(full_config("invalid"))
    spec["passwd"]["users"][0]["passwordHash"] = PASSWORD_HASH
    spec["storage"]["files"][0]["mode"] = "rw-r--r--"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(spec))
    before = (guest.sha256_file(root), guest.sha256_file(data))
    vm = guest.Vm(vm_env.kernel, dracut_initrd, [root, data], FIRSTBOOT, fw_cfg=config,
                  memory_mib=1024)
    boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[DRACUT_EMERGENCY])
    assert boot.stopped_at == DRACUT_EMERGENCY, boot.console[-4000:]
    assert "provision: FAILED in stage fetch-offline" in boot.console
    assert "item:  config $.storage.files[0].mode" in boot.console
    assert PASSWORD_HASH not in boot.console
    assert guest.INIT_MARKER not in boot.console
    assert (guest.sha256_file(root), guest.sha256_file(data)) == before


def test_dracut_brings_up_the_network_only_for_the_online_fetch(
    vm_env: VmEnv, dracut_initrd: Path, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    if not guest.dracut_has_networkd():
        pytest.skip("dracut's systemd-networkd module is not installed (Debian: dracut-network)")
    root, data = fresh_disks
    with AwsImds(small_config("vm-dracut-aws")) as imds:
        vm = guest.Vm(vm_env.kernel, dracut_initrd, [root, data],
                      FIRSTBOOT + " panic=-1 provision.platform=aws", imds_port=imds.port,
                      memory_mib=1024)
        boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[DRACUT_EMERGENCY])
        requests = [(r.method, r.path) for r in imds.requests]
    record_timings("dracut aws first boot", boot)
    assert_booted(boot)
    assert "the network is needed" in boot.console
    assert ("PUT", "/latest/api/token") in requests and ("GET", "/latest/user-data") in requests
    assert read_root(root, tmp_path, "/etc/hostname")["/etc/hostname"] == "vm-dracut-aws\n"


def test_dracut_static_address_from_ip_instead_of_dhcp(
    vm_env: VmEnv, dracut_initrd: Path, fresh_disks: tuple[Path, Path], tmp_path: Path
) -> None:
    """dracut: with a static ip= the network unit skips DHCP and the fetch phase brings the address up."""
    root, data = fresh_disks
    static = "ip=169.254.0.41::169.254.0.2:255.255.0.0:::none"
    with AwsImds(small_config("vm-dracut-static")) as imds:
        vm = guest.Vm(vm_env.kernel, dracut_initrd, [root, data],
                      FIRSTBOOT + f" panic=-1 provision.platform=aws {static}", imds_port=imds.port,
                      memory_mib=1024)
        boot = vm.boot(tmp_path / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[DRACUT_EMERGENCY])
        requests = [(r.method, r.path) for r in imds.requests]
    record_timings("dracut aws first boot, static ip=", boot)
    assert_booted(boot)
    assert "static network for the fetch from kernel command line: ip0" in boot.console
    assert "static network up from kernel command line:" in boot.console
    assert "169.254.0.41/16" in boot.console
    assert ("GET", "/latest/user-data") in requests
    assert read_root(root, tmp_path, "/etc/hostname")["/etc/hostname"] == "vm-dracut-static\n"
