"""A cloud-init user's instance comes up the same under provision: a real
Debian system booted with a NoCloud seed, looked at from the host.

The seed (tests/vm/nocloud_seed.py) is what a cloud-init user hands a VM:

- user-data, a MIME multipart: a shell script that counts its runs, a
  cloud-config with ``users`` (the image's default user and one more) and
  ``write_files``, and a Jinja part that renders the instance id;
- meta-data: instance-id, local-hostname and the platform's ``public-keys``;
- network-config v2: a static address on the NIC (matched by MAC), DHCP off.

The disk is the Debian image (tests/vm/debian_image.py, mmdebstrap, cached)
on a GPT partition, with the image builder's settings (a default user
``debian``, grow the root) and then enlarged, as a cloud enlarges an image to
the instance's disk size. QEMU user networking with ``restrict=on``; the
only way in is SSH forwarded to the *static* address, which DHCP would never
hand out (QEMU's DHCP gives 10.0.2.15), so a login proves the address.

Booted twice: the second boot provisions nothing and runs the script again
never.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vm import debian, debian_image, guest, nocloud_seed
from tests.vm.conftest import VmEnv

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

# Per QEMU run (TCG): a boot to SSH takes about a minute on a quiet machine.
BOOT_TIMEOUT = 420
INSTANCE_ID = "iid-cloudvm-0042"
HOSTNAME = "cloudvm-guest"
STATIC_IP = "10.0.2.50"  # in QEMU user networking's 10.0.2.0/24, not its DHCP range (.15 up)
GATEWAY = "10.0.2.2"
MAC = "52:54:00:c1:0d:42"
DISK_MIB = 2048  # the image's filesystem is 1 GiB: the rest is for growing
DEFAULT_USER = "debian"
READY = debian_image.READY_MARKER
FAILED = r"provision: FAILED in stage"
CONSOLES = Path(os.environ.get("PROVISION_VM_LOGS", guest.CHECKOUT / ".vm-logs"))

IMAGE_SETTINGS = {
    "default_user": {"name": DEFAULT_USER, "gecos": "Debian", "shell": "/bin/bash", "lock_passwd": True},
    "grow_root": True,
}

SCRIPT = """#!/bin/sh
# Counts its runs: cloud-init runs user-data scripts once per instance.
mkdir -p /var/lib/cloudvm
echo "run at $(cut -d' ' -f1 /proc/uptime)" >>/var/lib/cloudvm/script-runs
"""

JINJA = """## template: jinja
#!/bin/sh
mkdir -p /var/lib/cloudvm
echo "instance {{ v1.instance_id }} host {{ v1.local_hostname }}" >/var/lib/cloudvm/jinja
"""


def cloud_config(user_key: str) -> str:
    return f"""#cloud-config
users:
  - default
  - name: alice
    shell: /bin/bash
    ssh_authorized_keys:
      - {user_key}
write_files:
  - path: /etc/cloudvm/greeting
    content: |
      written by write_files
    permissions: '0604'
"""


def meta_data(platform_key: str) -> str:
    return (f"instance-id: {INSTANCE_ID}\nlocal-hostname: {HOSTNAME}\n"
            f"public-keys:\n  - {platform_key}\n")


NETWORK_CONFIG = f"""version: 2
ethernets:
  nic0:
    match:
      macaddress: "{MAC}"
    dhcp4: false
    dhcp6: false
    addresses: [{STATIC_IP}/24]
    routes:
      - to: default
        via: {GATEWAY}
"""


@dataclass
class Session:
    workdir: Path
    disk: Path
    seed: Path
    platform_key: Path
    user_key: Path
    image_bytes: int


def make_disk(cached: Path, dest: Path) -> Path:
    """The image's root filesystem on a GPT partition that fills the disk exactly,
    with the image builder's settings; then the disk enlarged to DISK_MIB (the
    backup GPT is then no longer at the end, as on a cloud's enlarged disk)."""
    work = dest.with_suffix(".parts")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    root_fs = work / "root.img"
    subprocess.run(["cp", "--sparse=always", str(cached), str(root_fs)], check=True)
    with debian.mounted_rw(root_fs, work / "mnt") as root:
        settings = root / "etc/provision/image.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(IMAGE_SETTINGS, indent=2) + "\n")
    root_mib = root_fs.stat().st_size >> 20
    dest.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", f"{root_mib + 2}M", str(dest)], check=True)
    subprocess.run(["sfdisk", "-q", str(dest)], input=f"label: gpt\nstart=1MiB, size={root_mib}MiB, name=root\n",
                   text=True, check=True, capture_output=True)
    subprocess.run(["dd", f"if={root_fs}", f"of={dest}", "bs=1M", "seek=1", "conv=notrunc,sparse",
                    "status=none"], check=True)
    shutil.rmtree(work)
    subprocess.run(["truncate", "-s", f"{DISK_MIB}M", str(dest)], check=True)
    return dest


@pytest.fixture(scope="module")
def session(vm_env: VmEnv, tmp_path_factory: pytest.TempPathFactory) -> Session:
    if shutil.which("mmdebstrap") is None and not debian_image.cached_image().exists():
        pytest.skip("mmdebstrap is not installed (scripts/system-packages.txt)")
    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (openssh-client)")
    work = tmp_path_factory.mktemp("cloudvm")
    image = debian_image.ensure_image(work / "mmdebstrap.log")
    disk = make_disk(image, work / "disk.img")
    platform_key = _key(work, "platform")
    user_key = _key(work, "alice")
    user_data = nocloud_seed.multipart([
        ("count-runs.sh", "x-shellscript", SCRIPT),
        ("users.yaml", "cloud-config", cloud_config(_public(user_key))),
        ("instance.sh.j2", "jinja2", JINJA),
    ])
    seed = nocloud_seed.cidata_iso(work / "seed.iso", {
        "user-data": user_data,
        "meta-data": meta_data(_public(platform_key)).encode(),
        "network-config": NETWORK_CONFIG.encode(),
    })
    return Session(work, disk, seed, platform_key, user_key, image.stat().st_size)


def _key(work: Path, name: str) -> Path:
    directory = work / name
    directory.mkdir(exist_ok=True)
    key: Path = debian.ssh_key(directory)
    return key


def _public(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


def _fail(what: str, console: str) -> str:
    return f"{what}; the console is in {CONSOLES}:\n{console[-6000:]}"


def boot_and_ask(vm_env: VmEnv, s: Session, name: str) -> dict[str, object]:
    """Boot; wait for the ready line and a login as the default user with the
    platform's key; ask the guest what the tests check; stop it."""
    port = debian.free_port()
    cmdline = "root=LABEL=root ro console=ttyS0 panic=-1 provision.firstboot"
    # restrict=on: the guest reaches nothing; the host reaches only the static address's sshd.
    net = ["-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-{STATIC_IP}:22",
           "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"]
    vm = guest.Vm(vm_env.kernel, vm_env.initrd, [s.disk, s.seed], cmdline, memory_mib=1024, extra=net)
    platform = debian.Ssh(port, s.platform_key)
    alice = debian.Ssh(port, s.user_key)
    seen: dict[str, object] = {}
    with vm.running(s.workdir / f"{name}.serial.log", timeout=BOOT_TIMEOUT) as run:
        try:
            up = run.wait_for(f"{READY}|{FAILED}")
            assert up and up.group(0).startswith(READY), _fail(f"{name}: the system did not come up",
                                                               run.console)
            assert platform.wait(run, DEFAULT_USER), \
                _fail(f"{name}: the platform key does not log in as {DEFAULT_USER} at {STATIC_IP}", run.console)
            seen["login_wall_seconds"] = round(run.result().seconds, 1)
            for key, command in {
                "whoami": "id -un",
                "hostname": "hostname",
                "addresses": "ip -4 -o addr show scope global",
                "route": "ip -4 route show default",
                # The scripts' unit (oneshot, wanted by multi-user.target) is done
                # before the ready line, which waits for multi-user.target.
                "runs": "cat /var/lib/cloudvm/script-runs",
                "jinja": "cat /var/lib/cloudvm/jinja",
                "greeting": "stat -c '%a %U' /etc/cloudvm/greeting; cat /etc/cloudvm/greeting 2>&1",
                "root_bytes": "df -B1 --output=size / | tail -1",
                "disk_bytes": "cat /sys/block/vda/size",
                "partition_bytes": "cat /sys/block/vda/vda1/size",
                "root_source": "findmnt -n -o SOURCE /",
            }.items():
                done = platform.run(DEFAULT_USER, command, timeout=120)
                seen[key] = done.stdout.strip()
            seen["alice"] = alice.run("alice", "id -un").stdout.strip()
            seen["alice_as_default"] = alice.run(DEFAULT_USER, "id -un").returncode
            platform.run(DEFAULT_USER, "sync")
        finally:
            seen["console"] = console = run.console
            wall = run.result().seconds
            CONSOLES.mkdir(exist_ok=True)
            (CONSOLES / f"cloud-init-user-{name}.log").write_text(console)
    boot = guest.Boot(0, console, wall)
    guest.record_timings(f"debian, cloud-init user data (NoCloud): {name}", boot,
                         provision_done_uptime=boot.uptime_at("provision: done"),
                         ready_uptime=boot.uptime_at(READY),
                         ssh_login_wall_seconds=seen["login_wall_seconds"])
    return seen


@pytest.fixture(scope="module")
def boots(session: Session, vm_env: VmEnv) -> dict[str, dict[str, object]]:
    return {"first": boot_and_ask(vm_env, session, "first-boot"),
            "again": boot_and_ask(vm_env, session, "again")}


def test_the_platform_key_logs_in_as_the_default_user_at_the_static_address(
    boots: dict[str, dict[str, object]]
) -> None:
    seen = boots["first"]
    assert seen["whoami"] == DEFAULT_USER
    # Only the static address: DHCP (which would give 10.0.2.15) stayed off.
    assert re.findall(r"inet (\S+)", str(seen["addresses"])) == [f"{STATIC_IP}/24"], seen["addresses"]
    assert f"default via {GATEWAY}" in str(seen["route"])
    assert seen["hostname"] == HOSTNAME


def test_cloud_config_users_and_write_files(boots: dict[str, dict[str, object]]) -> None:
    seen = boots["first"]
    assert seen["alice"] == "alice"  # her own key, from the cloud-config part
    assert seen["alice_as_default"] != 0  # the platform key is the default user's, hers is not
    assert seen["greeting"] == "604 root\nwritten by write_files"


def test_the_script_ran_once_and_the_jinja_part_rendered_the_instance_id(
    boots: dict[str, dict[str, object]]
) -> None:
    first, again = boots["first"], boots["again"]
    console = str(first["console"])
    assert "failed user-data scripts" not in console and "Failed to start" not in console, \
        _fail("a unit failed", console)
    assert len(str(first["runs"]).splitlines()) == 1, first["runs"]
    assert first["jinja"] == f"instance {INSTANCE_ID} host {HOSTNAME}"
    # Booted again: nothing provisioned, the script not run again, the system the same.
    assert "not provisioning again" in str(again["console"])
    assert again["runs"] == first["runs"]
    assert again["whoami"] == DEFAULT_USER and again["hostname"] == HOSTNAME
    assert again["addresses"] == first["addresses"]


def test_the_root_filesystem_fills_its_enlarged_disk(
    session: Session, boots: dict[str, dict[str, object]]
) -> None:
    seen = boots["first"]
    assert seen["root_source"] == "/dev/vda1"
    disk = int(str(seen["disk_bytes"])) * 512
    partition = int(str(seen["partition_bytes"])) * 512
    root = int(str(seen["root_bytes"]))
    assert disk == DISK_MIB << 20
    # The partition reaches the end of the disk (1 MiB alignment in front, the backup GPT behind).
    assert partition >= disk - (2 << 20), (partition, disk)
    # The filesystem grew with it: statfs's size leaves out ext4's own metadata (a few %).
    assert root > session.image_bytes + (512 << 20), (root, session.image_bytes)
    assert root > partition * 0.9, (root, partition)
