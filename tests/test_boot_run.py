"""`provision run`, the boot stages, outside a VM: a directory stands in for the root.

The VM tests (tests/vm) run the same stages from a real initramfs; these
check the contracts between the stages quickly: the run directory, the
network hand-off, never provisioning twice, and the failure summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.boot.remote import remote_sources
from provision.boot.rootpeek import root_spec_from_cmdline
from provision.boot.summary import describe
from provision.diagnostics import error
from provision.errors import ConfigError, StageError

SECRET_HASH = "$6$runtestsalt$0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0E1F2G3H4I5J6K7L8M9N0O"


def config(hostname: str, **extra: object) -> dict[str, object]:
    return {
        "provision": {"version": "1.0.0"},
        "storage": {"files": [{"path": "/etc/hostname", "mode": 420, "overwrite": True,
                               "contents": {"source": f"data:,{hostname}%0A"}}]},
        **extra,
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\n")
    return root


def run(tmp_path: Path, root: Path, spec: dict[str, object] | str, *stages: str,
        run_dir: str = "run") -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    argv = [sys.executable, "-m", "provision", "run", "--root", str(root), "--config", str(path),
            "--run-dir", str(tmp_path / run_dir), "--cmdline", ""]
    for stage in stages:
        argv += ["--stage", stage]
    env = {**os.environ, "PROVISION_STATE_DIR": str(tmp_path / run_dir)}
    return subprocess.run(argv, capture_output=True, text=True, env=env)


def test_all_stages_provision_the_root_and_record_it(tmp_path: Path, root: Path) -> None:
    done = run(tmp_path, root, config("first"))
    assert done.returncode == 0, done.stderr
    assert (root / "etc/hostname").read_text() == "first\n"
    record = json.loads((root / "etc/.provision/result.json").read_text())
    assert record["status"] == "succeeded" and record["platform"] == "file"
    assert [s["name"] for s in record["stages"]] == [
        "kargs", "disks", "mount", "grow", "users", "instance", "files", "network", "units", "containers"]
    # The cached config (it may hold secrets) is gone after the last stage.
    assert not (tmp_path / "run/config.json").exists()
    log = (tmp_path / "run/provision.log").read_text()
    assert "stage files: done" in log
    assert (tmp_path / "run/provision.log").stat().st_mode & 0o777 == 0o600


def test_a_provisioned_root_is_never_provisioned_again(tmp_path: Path, root: Path) -> None:
    assert run(tmp_path, root, config("first")).returncode == 0
    record = (root / "etc/.provision/result.json").read_text()
    # A new boot (fresh /run) offering another config: nothing changes.
    again = run(tmp_path, root, config("second"), run_dir="run2")
    assert again.returncode == 0, again.stderr
    assert "not provisioning again" in again.stderr
    assert (root / "etc/hostname").read_text() == "first\n"
    assert (root / "etc/.provision/result.json").read_text() == record


def test_offline_pass_hands_over_to_the_network_with_status_75(tmp_path: Path, root: Path) -> None:
    spec = config("net", systemd={"units": []})
    spec["storage"] = {"files": [{"path": "/etc/motd", "contents": {"source": "http://127.0.0.1:9/motd"}}]}
    done = run(tmp_path, root, spec, "fetch-offline", "disks")
    assert done.returncode == 75, done.stderr
    flag = (tmp_path / "run/neednet").read_text()
    assert "1 remote sources (http)" in flag and "127.0.0.1" not in flag
    assert not (root / "etc/.provision").exists()  # nothing applied yet


def test_invalid_config_fails_with_a_summary_and_no_secrets(tmp_path: Path, root: Path) -> None:
    spec = config("x", passwd={"users": [{"name": "alice", "passwordHash": SECRET_HASH}]})
    spec["storage"]["files"][0]["mode"] = "rw"  # type: ignore[index]
    done = run(tmp_path, root, spec)
    assert done.returncode == 1
    summary = (tmp_path / "run/failure").read_text()
    assert summary.startswith("provision: FAILED in stage fetch-offline\n")
    assert "item:  config $.storage.files[0].mode" in summary
    assert f"full log: {tmp_path / 'run/provision.log'}" in summary
    for text in (done.stderr, summary, (tmp_path / "run/provision.log").read_text()):
        assert SECRET_HASH not in text
    assert not (root / "etc/hostname").exists()


def test_remote_sources_are_urls_that_need_the_network() -> None:
    spec = {
        "storage": {"files": [
            {"path": "/a", "contents": {"source": "data:,x"}},
            {"path": "/b", "contents": {"source": "https://example.test/b"}},
            {"path": "/c", "append": [{"source": "s3://bucket/c"}]},
        ]},
        "containers": {"containers": [{"volumes": [{"source": "/srv/www", "target": "/www"}]}]},
    }
    assert remote_sources(spec) == ["https://example.test/b", "s3://bucket/c"]


def test_a_tang_server_to_ask_needs_the_network() -> None:
    """The disks stage fetches a Tang advertisement the config does not carry."""
    tang = [{"url": "http://tang.test", "thumbprint": "x"},
            {"url": "http://tang2.test", "thumbprint": "y", "advertisement": "{}"}]
    spec = {"storage": {"luks": [{"name": "root", "device": "/dev/vda2", "clevis": {"tang": tang}},
                                 {"name": "data", "device": "/dev/vdb", "clevis": {"tpm2": True}}]}}
    assert remote_sources(spec) == ["http://tang.test"]


def test_root_device_comes_from_the_last_root_parameter() -> None:
    assert root_spec_from_cmdline("ro root=/dev/sda1 quiet root=LABEL=root") == "LABEL=root"
    assert root_spec_from_cmdline("quiet -- root=/dev/vda") is None


def test_summary_names_stage_item_and_cause() -> None:
    failure = describe("files", StageError("files", "/etc/motd", "permission denied"))
    assert (failure.stage, failure.item, failure.cause) == ("files", "/etc/motd", "permission denied")
    failure = describe("fetch", ConfigError([error("unknown key", ("storage", "filez"))]))
    assert failure.item == "config $.storage.filez"
    assert failure.cause == "invalid config: unknown key"
    long = describe("disks", StageError("disks", "/dev/vdb", "x" * 5000))
    assert len(long.cause) <= 400


def test_new_kernel_arguments_end_the_boot_in_a_reboot_before_the_disks(tmp_path: Path, root: Path) -> None:
    entry = root / "boot/loader/entries/image.conf"
    entry.parent.mkdir(parents=True)
    entry.write_text("linux /vmlinuz\noptions root=LABEL=root ro quiet\n")
    spec = config("kargs", kernelArguments={"shouldExist": ["mitigations=off"], "shouldNotExist": ["quiet"]})
    first = run(tmp_path, root, spec, "fetch-offline", "disks", "mount", "files")
    assert first.returncode == 76, first.stderr
    assert "rebooting into the new command line" in first.stderr
    assert entry.read_text() == "linux /vmlinuz\noptions root=LABEL=root ro mitigations=off\n"
    assert not (root / "etc/hostname").exists()  # nothing past the kernel arguments ran
    # The boot with the new command line (a fresh /run): nothing left to change, provisioning goes on.
    second = run(tmp_path, root, spec, "fetch-offline", "disks", "mount", "files", "umount", run_dir="run2")
    assert second.returncode == 0, second.stderr
    assert "rebooting" not in second.stderr
    assert (root / "etc/hostname").read_text() == "kargs\n"
    record = json.loads((root / "etc/.provision/result.json").read_text())
    kargs = next(s for s in record["stages"] if s["name"] == "kargs")
    assert (record["status"], kargs["status"], kargs["changes"]) == ("succeeded", "applied", 0)


def test_kernel_arguments_without_a_boot_loader_stop_the_boot_before_the_disks(
    tmp_path: Path, root: Path
) -> None:
    spec = config("kargs", kernelArguments={"shouldExist": ["mitigations=off"]})
    done = run(tmp_path, root, spec, "fetch-offline", "disks", "mount", "files")
    assert done.returncode == 1
    assert "FAILED in stage disks" in done.stderr and "no boot loader configuration" in done.stderr
    assert not (root / "etc/hostname").exists()


def test_the_platform_network_config_in_the_run_directory_is_rendered_into_the_root(
        tmp_path: Path, root: Path) -> None:
    """A datasource's network-config (its fetch result's extras, kept in the run directory) reaches the target."""
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd-networkd").write_text("")  # the image's network manager
    (tmp_path / "run/platform").mkdir(mode=0o700, parents=True)
    (tmp_path / "run/platform/network-config").write_bytes(
        b"network:\n  version: 1\n  config:\n    - type: physical\n      name: eth0\n"
        b"      subnets:\n        - type: static\n          address: 192.0.2.5/24\n          gateway: 192.0.2.1\n")
    done = run(tmp_path, root, config("net"))
    assert done.returncode == 0, done.stderr
    assert "network configuration from the platform's network-config" in done.stderr
    rendered = (root / "etc/systemd/network/10-provision-eth0.network").read_text()
    assert "Address=192.0.2.5/24" in rendered and "Gateway=192.0.2.1" in rendered
