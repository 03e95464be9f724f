"""LUKS2 volumes and RAID arrays (root).

LUKS format, reuse and the target's key/crypttab run everywhere (cryptsetup
formats a loop device without the kernel's help); opening a volume needs
dm-crypt and RAID needs the md driver, which this test machine's kernel
lacks: those cases skip with the reason. Checks use cryptsetup and blkid.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from disk_fixtures import (
    blkid,
    config,
    image_digest,
    needs_loop,
    plan_disks,
    run_disks,
    sh,
)

from provision.config import model
from provision.disks import luks, raid
from provision.disks.kernel import has_dm_crypt
from provision.disks.probe import probe
from provision.errors import ProvisionError
from provision.stages import mount as mount_stage
from provision.stages.base import Target

LoopFactory = Callable[[int], tuple[str, Path]]
# Cheap key derivation keeps each format well under a second.
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
KEY = b"correct horse battery staple\n"
VOLUME_UUID = "7d4c1b9e-2f3a-4e5d-8c6b-0a1b2c3d4e5f"
HAVE_DM = has_dm_crypt()
HAVE_MD = raid.md_available()


def data_url(data: bytes) -> str:
    return "data:;base64," + base64.b64encode(data).decode()


def _luks_spec(device: str, **extra: object) -> dict[str, object]:
    return {"name": "secret", "device": device, "label": "vault", "uuid": VOLUME_UUID,
            "options": FAST_KDF, **extra}


def _fetch_inline(resource: model.Resource) -> object:
    import io

    from provision.fetch.resource import decode_data_url

    assert resource.source is not None
    return io.BytesIO(decode_data_url(resource.source))


@pytest.mark.root
@needs_loop
def test_format_with_key_file_then_target_key_and_crypttab(
    disk_env: Path, loop_factory: LoopFactory
) -> None:
    """LUKS2 is formatted with the configured label, uuid and key file (cryptsetup
    accepts the key); the target gets /etc/luks/<name> (0400, the key) and a
    crypttab line naming the volume's UUID."""
    device, _ = loop_factory(32)
    cfg = config({"luks": [_luks_spec(device, keyFile={"source": data_url(KEY)}, discard=True)]})
    volume = cfg.storage.luks[0]
    action = luks.decide(volume, probe(device))
    assert action.kind == "format"
    luks.format_volume(volume, device, action, _fetch_inline)  # type: ignore[arg-type]

    found = blkid(device)
    assert (found["TYPE"], found["VERSION"], found["LABEL"], found["UUID"]) == (
        "crypto_LUKS", "2", "vault", VOLUME_UUID)
    key_file = disk_env.parent / "key"
    key_file.write_bytes(KEY)
    sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(key_file), device)

    assert luks.install_in_target(disk_env) == ["secret"]
    target_key = disk_env / "etc/luks/secret"
    assert target_key.read_bytes() == KEY
    assert stat.S_IMODE(target_key.stat().st_mode) == 0o400
    uuid = sh("cryptsetup", "luksUUID", device).stdout.strip()
    assert (disk_env / "etc/crypttab").read_text() == (
        f"secret UUID={uuid} /etc/luks/secret luks,discard\n")
    # Nothing of the key is left in the state directory.
    assert not list((Path(os.environ["PROVISION_STATE_DIR"]) / "luks").iterdir())


@pytest.mark.root
@needs_loop
def test_random_key_when_no_key_file(disk_env: Path, loop_factory: LoopFactory) -> None:
    """Without keyFile a random key is made; the key kept for the target opens it."""
    device, _ = loop_factory(32)
    volume = config({"luks": [_luks_spec(device)]}).storage.luks[0]
    luks.format_volume(volume, device, luks.decide(volume, probe(device)), _fetch_inline)  # type: ignore[arg-type]
    luks.install_in_target(disk_env)
    key = disk_env / "etc/luks/secret"
    assert len(key.read_bytes()) == 4096
    sh("cryptsetup", "open", "--test-passphrase", "--key-file", str(key), device)


@pytest.fixture
def dm_crypt_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning only reads; let it get past the kernel check on kernels without dm-crypt."""
    monkeypatch.setattr("provision.stages.disks.kernel.has_dm_crypt", lambda: True)


@pytest.mark.root
@needs_loop
@pytest.mark.usefixtures("dm_crypt_assumed")
def test_existing_volume_reused_or_refused(disk_env: Path, loop_factory: LoopFactory) -> None:
    """Without wipeVolume a LUKS2 volume whose label and uuid match is reused
    (not reformatted); a label mismatch is an error that writes nothing."""
    device, image = loop_factory(32)
    key_file = disk_env.parent / "key"
    key_file.write_bytes(KEY)
    sh("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--label", "vault",
       "--uuid", VOLUME_UUID, "--key-file", str(key_file), *FAST_KDF, device)
    spec = config({"luks": [_luks_spec(device, keyFile={"source": data_url(KEY)})]}).storage.luks[0]
    assert luks.decide(spec, probe(device)).kind == "reuse"

    before = image_digest(image, device)
    with pytest.raises(ProvisionError, match="label 'vault', wanted 'other'"):
        plan_disks(config({"luks": [_luks_spec(device, label="other",
                                               keyFile={"source": data_url(KEY)})]}), disk_env)
    assert image_digest(image, device) == before


@pytest.mark.root
@needs_loop
@pytest.mark.usefixtures("dm_crypt_assumed")
def test_other_signature_without_wipe_volume_fails(disk_env: Path, loop_factory: LoopFactory) -> None:
    """A device holding a filesystem is not encrypted over without wipeVolume."""
    device, image = loop_factory(32)
    sh("mkfs.ext4", "-q", device)
    before = image_digest(image, device)
    with pytest.raises(ProvisionError, match=r"already holds ext4.*wipeVolume is false"):
        plan_disks(config({"luks": [_luks_spec(device)]}), disk_env)
    assert image_digest(image, device) == before


@pytest.mark.root
@needs_loop
@pytest.mark.skipif(HAVE_DM, reason="this kernel has dm-crypt")
def test_luks_without_dm_crypt_fails_before_writing(disk_env: Path, loop_factory: LoopFactory) -> None:
    """On a kernel without dm-crypt a config with LUKS fails while planning, so
    its partitions are not written either (no half-made disk)."""
    device, image = loop_factory(32)
    before = image_digest(image, device)
    with pytest.raises(ProvisionError, match="no dm-crypt"):
        run_disks(config({
            "disks": [{"device": device, "partitions": [{"number": 1, "label": "crypt"}]}],
            "luks": [_luks_spec("/dev/disk/by-partlabel/crypt")],
        }), disk_env)
    assert image_digest(image, device) == before


@pytest.mark.root
@needs_loop
@pytest.mark.skipif(not HAVE_DM, reason="this kernel has no device-mapper (dm-crypt)")
def test_luks_open_filesystem_and_close(disk_env: Path, loop_factory: LoopFactory) -> None:
    """The disks stage formats, opens (/dev/mapper/<name>) and puts a filesystem on
    the volume; the mount stage installs the crypttab line; closing works."""
    device, _ = loop_factory(64)
    cfg = config({
        "luks": [_luks_spec(device, keyFile={"source": data_url(KEY)})],
        "filesystems": [{"device": "/dev/mapper/secret", "format": "ext4", "label": "inner"}],
    })
    run_disks(cfg, disk_env)
    try:
        assert blkid("/dev/mapper/secret")["LABEL"] == "inner"
        mount_stage.STAGE.apply(mount_stage.STAGE.plan(cfg, Target(disk_env)), Target(disk_env))
        assert (disk_env / "etc/crypttab").read_text().startswith("secret UUID=")
    finally:
        sh("cryptsetup", "close", "secret", check=False)
    assert not Path("/dev/mapper/secret").exists()


def test_raid_arguments_follow_the_config() -> None:
    """mdadm gets the level, active count (devices minus spares), spares and options."""
    array = model.Raid(name="data", level="raid5", devices=("/a", "/b", "/c", "/d"), spares=1,
                       options=("--chunk=64",))
    assert raid.create_args(array, ["/dev/a", "/dev/b", "/dev/c", "/dev/d"]) == [
        "--create", "/dev/md/data", "--force", "--run", "--homehost=any", "--level=raid5",
        "--raid-devices=3", "--spare-devices=1", "--chunk=64",
        "/dev/a", "/dev/b", "/dev/c", "/dev/d"]


@pytest.mark.parametrize(("level", "devices", "spares", "message"), [
    ("raid9", 2, 0, "unknown level"),
    ("raid6", 4, 1, "needs at least 4 active"),
    ("raid0", 3, 1, "cannot use spares"),
])
def test_impossible_arrays_are_rejected(level: str, devices: int, spares: int, message: str) -> None:
    array = model.Raid(name="x", level=level, devices=tuple(f"/d{i}" for i in range(devices)),
                       spares=spares)
    with pytest.raises(raid.RaidError, match=message):
        raid.check_array(array)


@pytest.mark.root
@needs_loop
@pytest.mark.skipif(not HAVE_MD, reason="this kernel has no md (software RAID) driver")
def test_raid1_over_two_loop_devices(disk_env: Path, loop_factory: LoopFactory) -> None:
    """RAID1 over two loop devices: /dev/md/<name> appears, mdadm reports raid1 with
    both members, and a filesystem made on it is found by blkid."""
    first, _ = loop_factory(64)
    second, _ = loop_factory(64)
    cfg = config({
        "raid": [{"name": "provtest", "level": "raid1", "devices": [first, second]}],
        "filesystems": [{"device": "/dev/md/provtest", "format": "ext4", "label": "mirror"}],
    })
    try:
        run_disks(cfg, disk_env)
        detail = sh("mdadm", "--detail", "/dev/md/provtest").stdout
        assert "raid1" in detail and first in detail and second in detail
        assert blkid("/dev/md/provtest")["LABEL"] == "mirror"
    finally:
        sh("mdadm", "--stop", "/dev/md/provtest", check=False)
