"""LUKS volumes enrolled with systemd-cryptenroll (``storage.luks[].systemdTpm2``, spec 1.1.0).

systemd-cryptenroll writes its ``systemd-tpm2`` token into a LUKS2 header on a
loop device without dm-crypt, sealing to a software TPM2 (swtpm) reached
through its TCTI spelling (``swtpm:host=…,port=…``) given as the configured
device. Checked for real: the token is in the header, the random key's slot is
gone, the PIN never shows in the log, the target's crypttab line, and the
refusals (clevis and systemdTpm2 together, a target without systemd 251).

Not shown here: that the image's systemd-cryptsetup unlocks the volume at
boot. The token plugin only opens /dev/tpmrm0 (no TCTI override), which this
container has not; that needs a VM boot with swtpm attached (see the report
in docs/disks.md, "systemdTpm2").
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from disk_fixtures import needs_loop, sh

from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages
from provision.config.build import build_config
from provision.config.model import Luks
from provision.config.pipeline import parse_config
from provision.disks import cryptenroll, kernel, luks
from provision.disks.probe import probe
from provision.errors import ProvisionError
from provision.stages import disks as disks_stage
from provision.stages.base import RootFacts, Target

LoopFactory = Callable[[int], tuple[str, Path]]
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
PIN = "4711-sesame"

needs_cryptenroll = pytest.mark.skipif(
    not (shutil.which("swtpm") and shutil.which("systemd-cryptenroll")),
    reason="needs swtpm and systemd-cryptenroll (scripts/system-packages.txt)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tpm(tmp_path: Path) -> Iterator[str]:
    """A software TPM2 on loopback; yields the TCTI systemd-cryptenroll takes as --tpm2-device."""
    state = tmp_path / "tpm"
    state.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
         "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
         # the swtpm TCTI expects the control channel on the next port
         "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1", "--flags", "not-need-init,startup-clear"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"swtpm:host=127.0.0.1,port={port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _volume(device: str, section: dict[str, object]) -> Luks:
    return build_config({"provision": {"version": "1.1.0"}, "storage": {"luks": [
        {"name": "secret", "device": device, "options": FAST_KDF, "systemdTpm2": section}]}}).storage.luks[0]


def _enroll(device: str, section: dict[str, object]) -> None:
    volume = _volume(device, section)
    key_path = luks.format_volume(volume, device, luks.decide(volume, probe(device)),
                                  lambda _: pytest.fail("no key file configured"))
    luks.enroll_volume(volume, device, key_path)


def _header(device: str) -> dict[str, object]:
    return dict(json.loads(sh("cryptsetup", "luksDump", "--dump-json-metadata", device).stdout))


def _fake_root(root: Path, version: int) -> None:
    lib = root / "usr/lib/x86_64-linux-gnu/systemd"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / f"libsystemd-shared-{version}.so").write_bytes(b"")


# ---- enrollment on a loop device -------------------------------------------


@pytest.mark.root
@needs_loop
@needs_cryptenroll
def test_enrollment_leaves_only_the_tpm2_token(
    disk_env: Path, loop_factory: LoopFactory, tpm: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A random key formats, the TPM2 (with PIN, PCR 7) is enrolled, the token is in the
    header, the random key's slot is gone, and the PIN is in no log line."""
    device, _ = loop_factory(32)
    with caplog.at_level(logging.DEBUG):
        _enroll(device, {"device": tpm, "pcrs": [7], "pin": PIN})
    header = _header(device)
    tokens = [t for t in header["tokens"].values() if t["type"] == "systemd-tpm2"]  # type: ignore[attr-defined]
    assert len(tokens) == 1
    assert tokens[0]["tpm2-pcrs"] == [7]
    assert tokens[0].get("tpm2-pin") is True
    # Only the TPM2's slot is left: the random provisioning key no longer opens anything.
    assert list(header["keyslots"]) == tokens[0]["keyslots"]  # type: ignore[call-overload]
    assert "systemd-cryptenroll" in caplog.text
    assert PIN not in caplog.text
    _fake_root(disk_env, 252)
    luks.install_in_target(disk_env)
    line = (disk_env / "etc/crypttab").read_text()
    uuid = sh("cryptsetup", "luksUUID", device).stdout.strip()
    assert line == f"secret UUID={uuid} none luks,tpm2-device={tpm}\n"
    assert not (disk_env / "etc/luks/secret").exists()


@pytest.mark.root
@needs_loop
@needs_cryptenroll
def test_failed_enrollment_keeps_the_key_and_hides_the_pin(
    disk_env: Path, loop_factory: LoopFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """No TPM at the configured TCTI: a clear error without the PIN, and the random key's
    slot is still there (the volume is never left without a way in)."""
    device, _ = loop_factory(32)
    dead = f"swtpm:host=127.0.0.1,port={_free_port()}"
    with caplog.at_level(logging.DEBUG), pytest.raises(ProvisionError) as caught:
        _enroll(device, {"device": dead, "pin": PIN})
    assert "cannot enroll LUKS volume secret" in str(caught.value)
    assert PIN not in str(caught.value) and PIN not in caplog.text
    header = _header(device)
    assert len(header["keyslots"]) == 1 and not header["tokens"]  # type: ignore[arg-type]


@pytest.mark.root
@needs_loop
@needs_cryptenroll
def test_target_without_new_enough_systemd_is_refused(
    disk_env: Path, loop_factory: LoopFactory, tpm: str
) -> None:
    """The image's systemd unlocks the volume: a root with systemd 250 (or none) is refused
    before crypttab names a volume it cannot open."""
    device, _ = loop_factory(32)
    _enroll(device, {"device": tpm})
    _fake_root(disk_env, 250)
    with pytest.raises(ProvisionError, match=r"target root .* has systemd 250; .*251 or newer"):
        luks.install_in_target(disk_env)
    assert not (disk_env / "etc/crypttab").exists()


@pytest.mark.root
@needs_loop
@needs_cryptenroll
@pytest.mark.parametrize("version", [250, None])
def test_an_image_without_systemd_251_is_refused_before_the_volume_is_formatted(
    disk_env: Path, loop_factory: LoopFactory, tpm: str, monkeypatch: pytest.MonkeyPatch,
    version: int | None,
) -> None:
    """The run (disks then mount, as ``provision apply``) stops at the plan: the error names
    the systemd found and the minimum, and the disk is as it was (no LUKS header)."""
    # This container has no device-mapper; nothing here opens the volume, and the
    # check under test comes after the kernel's (which the initramfs passes).
    monkeypatch.setattr(kernel, "has_dm_crypt", lambda: True)
    device, image = loop_factory(32)
    before = image.read_bytes()
    if version is not None:
        _fake_root(disk_env, version)
    spec = {"provision": {"version": "1.1.0"}, "storage": {"luks": [
        {"name": "secret", "device": device, "options": FAST_KDF, "systemdTpm2": {"device": tpm}}]}}
    request = ApplyRequest(build_config(spec), "0" * 64, disk_env)
    found = "systemd 250" if version else "no systemd"
    with pytest.raises(ProvisionError, match=rf"secret .* has {found}.*needs systemd 251 or newer"):
        apply_config(request, load_stages(["disks", "mount"]), release=True)
    assert probe(device).type is None
    assert image.read_bytes() == before
    assert not (disk_env / "etc/crypttab").exists()


def _image_device(loop_factory: LoopFactory, tmp_path: Path, version: int) -> str:
    """A loop device holding an ext4 root whose systemd is ``version``."""
    tree = tmp_path / f"image-{version}"
    _fake_root(tree, version)
    device, _ = loop_factory(16)
    sh("mkfs.ext4", "-q", "-d", str(tree), device)
    return device


def _boot_disks(tmp_path: Path, root_device: str, spec: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """``provision run``'s fetch-offline and disks phases, as the initramfs runs them
    (the root not mounted: an empty directory stands for its mount point)."""
    import os
    import sys

    mount_point = tmp_path / "sysroot"
    mount_point.mkdir(exist_ok=True)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(spec))
    argv = [sys.executable, "-m", "provision", "run", "--root", str(mount_point), "--root-device", root_device,
            "--config", str(config_path), "--run-dir", str(tmp_path / "run"), "--cmdline", "",
            "--stage", "fetch-offline", "--stage", "disks"]
    env = {**os.environ, "PROVISION_STATE_DIR": str(tmp_path / "run"), "PROVISION_DEVICE_TIMEOUT": "10"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.root
@needs_loop
@needs_cryptenroll
def test_at_boot_the_root_device_is_read_before_the_disks_change(
    tmp_path: Path, loop_factory: LoopFactory
) -> None:
    """The disks phase reads the image's systemd from the root device (mounted read-only,
    unmounted again): 250 stops the boot in the disks stage with the volume untouched;
    a root device that is not there stops it too, saying why."""
    root_device = _image_device(loop_factory, tmp_path, 250)
    data, data_image = loop_factory(32)
    before = data_image.read_bytes()
    spec = {"provision": {"version": "1.1.0"}, "storage": {"luks": [
        {"name": "vault", "device": data, "options": FAST_KDF, "systemdTpm2": {"pin": PIN}}]}}
    done = _boot_disks(tmp_path, root_device, spec)
    assert done.returncode == 1, done.stderr
    assert "FAILED in stage disks" in done.stderr
    assert f"root device {root_device} has systemd 250; unlocking them at boot needs systemd 251" in done.stderr
    assert PIN not in done.stderr + (tmp_path / "run/provision.log").read_text()
    assert data_image.read_bytes() == before
    assert root_device not in Path("/proc/mounts").read_text()  # the look left nothing mounted

    (tmp_path / "absent").mkdir()  # a fresh boot: its own run directory
    absent = _boot_disks(tmp_path / "absent", "LABEL=no-such-root", spec)
    assert absent.returncode == 1, absent.stderr
    assert ("root device LABEL=no-such-root cannot be read before the disks change (the device is not present)"
            in absent.stderr)
    assert data_image.read_bytes() == before


@pytest.mark.root
@needs_loop
def test_the_root_peek_reads_the_image_systemd(tmp_path: Path, loop_factory: LoopFactory) -> None:
    from provision.boot.rootpeek import image_facts

    device = _image_device(loop_factory, tmp_path, 252)
    facts = image_facts(device, tmp_path / "peek")
    assert (facts.systemd, facts.unreadable) == (252, None) and device in facts.where
    assert device not in Path("/proc/mounts").read_text()
    blank, _ = loop_factory(8)
    unformatted = image_facts(blank, tmp_path / "peek")
    assert unformatted.systemd is None and unformatted.unreadable is not None
    assert "does not mount" in unformatted.unreadable


def test_the_boot_refuses_from_what_the_root_device_showed(tmp_path: Path) -> None:
    """At boot the plan's root is the run directory; what was read from the root device
    decides, and a root that could not be read refuses (its systemd is unknown)."""
    enrolled = build_config({"provision": {"version": "1.1.0"}, "storage": {"luks": [
        {"name": "vault", "device": "/dev/vdb", "systemdTpm2": {}}]}})
    old = RootFacts("root device LABEL=root (/dev/vda2)", systemd=250)
    with pytest.raises(ProvisionError, match=r"vault .*root device LABEL=root \(/dev/vda2\) has systemd 250"):
        disks_stage._check_image_systemd(Target(tmp_path, image=old), ["vault"])
    absent = RootFacts("root device LABEL=root", unreadable="the device is not present")
    with pytest.raises(ProvisionError, match=r"cannot be read before the disks change \(the device is not present\)"):
        disks_stage._check_image_systemd(Target(tmp_path, image=absent), ["vault"])
    _fake_root(tmp_path, 250)  # the run directory is not the image: its contents do not count
    disks_stage._check_image_systemd(Target(tmp_path, image=RootFacts("root device /dev/vda2", systemd=252)),
                                     ["vault"])
    assert enrolled.storage.luks[0].systemd_tpm2 is not None


@pytest.mark.root
@needs_loop
def test_an_enrolled_volume_is_never_reused(disk_env: Path, loop_factory: LoopFactory) -> None:
    device, _ = loop_factory(32)
    sh("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", *FAST_KDF, "--key-file=-", device,
       input=b"k")
    with pytest.raises(ProvisionError, match="never reused"):
        luks.decide(_volume(device, {}), probe(device))


# ---- pure parts --------------------------------------------------------------


def test_systemd_version_from_the_shared_library_name(tmp_path: Path) -> None:
    assert cryptenroll.systemd_version(tmp_path) is None
    _fake_root(tmp_path, 249)
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/libsystemd-shared-255.4-1.fc40.so").write_bytes(b"")
    (tmp_path / "usr/lib/systemd/libsystemd-core-256.so").write_bytes(b"")  # not the shared library
    assert cryptenroll.systemd_version(tmp_path) == 255


def test_the_pin_is_never_in_argv() -> None:
    enrolled = cryptenroll.enrollment({"pcrs": [0, 7], "pin": PIN})
    assert enrolled is not None
    argv = enrolled.args(Path("/run/key"), "/dev/vdb")
    assert PIN not in " ".join(argv)
    assert "--tpm2-pcrs=0+7" in argv and "--tpm2-with-pin=yes" in argv and "--tpm2-device=auto" in argv
    assert enrolled.env() == {"NEWPIN": PIN}


# ---- validation ----------------------------------------------------------------


def _diagnostics(luks_entry: str, version: str = "1.1.0") -> list[str]:
    text = '{"provision": {"version": "' + version + '"},\n "storage": {"luks": [\n  ' + luks_entry + "\n]}}\n"
    parsed = parse_config(text.encode(), "config.json")
    return [f"{d.position.line if d.position else '?'}: {d.message}" for d in parsed.diagnostics if d.is_error]


def test_clevis_and_systemd_tpm2_together_are_refused_with_a_position() -> None:
    found = _diagnostics('{"name": "c", "device": "/dev/vdb", "clevis": {"tpm2": true},\n'
                         '   "systemdTpm2": {"pin": "' + PIN + '"}}')
    assert len(found) == 1 and found[0].startswith("4: ") and "clevis or with systemdTpm2" in found[0]
    assert PIN not in found[0]


def test_bad_pcrs_and_the_older_spec_are_refused() -> None:
    assert any("23" in d for d in _diagnostics('{"name": "c", "device": "/dev/vdb", "systemdTpm2": {"pcrs": [24]}}'))
    older = _diagnostics('{"name": "c", "device": "/dev/vdb", "systemdTpm2": {}}', version="1.0.0")
    assert older and any("systemdTpm2" in d for d in older)
    assert not _diagnostics('{"name": "c", "device": "/dev/vdb", "systemdTpm2": {"pcrs": [7], "pin": "1"}}')


def test_validate_quotes_the_line_with_the_pin_masked(tmp_path: Path) -> None:
    import sys

    path = tmp_path / "config.json"
    path.write_text('{"provision": {"version": "1.1.0"},\n "storage": {"luks": [\n'
                    '  {"name": "c", "device": "/dev/vdb", "clevis": {"tpm2": true},\n'
                    '   "systemdTpm2": {"pin": "' + PIN + '"}}\n]}}\n')
    done = subprocess.run([sys.executable, "-m", "provision", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert ":4:" in done.stdout + done.stderr and "<redacted>" in done.stdout + done.stderr
    assert PIN not in done.stdout + done.stderr
