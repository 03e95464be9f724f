"""LUKS volumes bound with clevis: a real Tang server (tangd) on loopback, a software TPM2 (swtpm).

clevis binds a LUKS2 header on a loop device without dm-crypt, so the
binding, the proof that it unlocks (the token read from ``cryptsetup luksDump
--dump-json-metadata``, ``clevis decrypt`` + ``cryptsetup open
--test-passphrase``), the removal of the random provisioning key and the
target's crypttab are checked here for real. The whole disks stage is run
for the fail-closed cases: a wrong thumbprint or an unreachable Tang server
stops the run before the disk's bytes change.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from disk_fixtures import config, image_digest, needs_loop, plan_disks, run_disks, sh

from provision.disks import clevis, luks
from provision.disks.probe import probe
from provision.errors import ProvisionError, StageError

LoopFactory = Callable[[int], tuple[str, Path]]
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
KEY = b"correct horse battery staple\n"
TANGD = "/usr/libexec/tangd"

needs_tang = pytest.mark.skipif(
    not (os.access(TANGD, os.X_OK) and shutil.which("socat") and shutil.which("clevis")),
    reason="needs tang, socat and clevis (scripts/system-packages.txt)",
)
needs_swtpm = pytest.mark.skipif(
    not (shutil.which("swtpm") and shutil.which("tpm2_createprimary")),
    reason="needs swtpm and tpm2-tools (scripts/system-packages.txt)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Tang:
    url: str
    thumbprint: str  # of the signing key
    other_thumbprint: str  # of the exchange key: a real key of the server, but not one that signs

    def advertisement(self) -> bytes:
        with urllib.request.urlopen(self.url + "/adv", timeout=10) as response:
            return bytes(response.read())


@pytest.fixture
def tang(tmp_path: Path) -> Iterator[Tang]:
    """tangd behind socat on a loopback port, with fresh keys."""
    db = tmp_path / "tang"
    db.mkdir()
    sh("/usr/libexec/tangd-keygen", str(db))
    signing, exchange = "", ""
    for jwk in db.glob("*.jwk"):
        ops = json.loads(jwk.read_text()).get("key_ops", [])
        thp = sh("jose", "jwk", "thp", "-i", str(jwk)).stdout.strip()
        if "verify" in ops:
            signing = thp
        else:
            exchange = thp
    port = _free_port()
    proc = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"EXEC:{TANGD} {db}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        yield Tang(f"http://127.0.0.1:{port}", signing, exchange)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def swtpm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A software TPM2 on loopback; clevis' tpm2 pin reaches it through TPM2TOOLS_TCTI."""
    state = tmp_path / "tpm"
    state.mkdir()
    port = _free_port()
    ctrl = port + 1  # the swtpm TCTI expects the control channel on the next port
    proc = subprocess.Popen(
        ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
         "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
         "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1", "--flags", "not-need-init,startup-clear"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        monkeypatch.setenv("TPM2TOOLS_TCTI", f"swtpm:host=127.0.0.1,port={port}")
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def data_url(data: bytes) -> str:
    return "data:;base64," + base64.b64encode(data).decode()


def _fetch_inline(resource: object) -> object:
    import io

    from provision.fetch.resource import decode_data_url

    source = getattr(resource, "source", None)
    assert source is not None
    return io.BytesIO(decode_data_url(source))


def _format_and_bind(device: str, clevis_spec: dict[str, object], adverts: dict[str, object],
                     **extra: object) -> None:
    volume = config({"luks": [{"name": "secret", "device": device, "options": FAST_KDF,
                               "clevis": clevis_spec, **extra}]}).storage.luks[0]
    action = luks.decide(volume, probe(device))
    key_path = luks.format_volume(volume, device, action, _fetch_inline)  # type: ignore[arg-type]
    luks.bind_volume(volume, device, key_path, adverts)


def _opens_with(device: str, key: bytes) -> bool:
    return sh("cryptsetup", "open", "--test-passphrase", "--key-file=-", device,
              input=key, check=False).returncode == 0


def _clevis_key(device: str) -> bytes:
    slot = sh("clevis", "luks", "list", "-d", device).stdout.split(":", 1)[0].strip()
    done = subprocess.run(["clevis", "luks", "pass", "-d", device, "-s", slot],
                          capture_output=True, check=True)
    return done.stdout


def _tokens(device: str) -> list[dict[str, object]]:
    meta = json.loads(sh("cryptsetup", "luksDump", "--dump-json-metadata", device).stdout)
    return list(meta["tokens"].values())


def _keyslots(device: str) -> int:
    meta = json.loads(sh("cryptsetup", "luksDump", "--dump-json-metadata", device).stdout)
    return len(meta["keyslots"])


# ---- binding ---------------------------------------------------------------


@pytest.mark.root
@needs_loop
@needs_tang
def test_tang_binding_replaces_the_random_key(disk_env: Path, loop_factory: LoopFactory, tang: Tang) -> None:
    """Without keyFile: a random key formats, clevis binds (sss over the Tang server),
    the binding opens the volume, the random key's slot is gone, the target keeps no key
    and its crypttab says ``none`` with ``_netdev``."""
    device, _ = loop_factory(32)
    advert = clevis.verify_advertisement(tang.url, tang.thumbprint, tang.advertisement())
    _format_and_bind(device, {"tang": [{"url": tang.url, "thumbprint": tang.thumbprint}]},
                     {tang.url: advert})

    listed = sh("clevis", "luks", "list", "-d", device).stdout
    assert "sss" in listed and tang.url in listed
    assert [t["type"] for t in _tokens(device)] == ["clevis"]
    assert _keyslots(device) == 1  # only the binding's slot: the random key was removed
    assert _opens_with(device, _clevis_key(device))

    assert luks.install_in_target(disk_env) == ["secret"]
    assert not (disk_env / "etc/luks/secret").exists()
    uuid = sh("cryptsetup", "luksUUID", device).stdout.strip()
    assert (disk_env / "etc/crypttab").read_text() == f"secret UUID={uuid} none luks,_netdev\n"


@pytest.mark.root
@needs_loop
@needs_tang
def test_key_file_stays_a_way_in_but_is_not_kept_in_the_target(
    disk_env: Path, loop_factory: LoopFactory, tang: Tang
) -> None:
    """With a keyFile (Ignition): its slot stays (recovery), the binding is added,
    no key file lands in the target."""
    device, _ = loop_factory(32)
    advert = clevis.verify_advertisement(tang.url, tang.thumbprint, tang.advertisement())
    _format_and_bind(device, {"tang": [{"url": tang.url, "thumbprint": tang.thumbprint}]},
                     {tang.url: advert}, keyFile={"source": data_url(KEY)})
    assert _keyslots(device) == 2
    assert _opens_with(device, KEY)
    assert _opens_with(device, _clevis_key(device))
    luks.install_in_target(disk_env)
    assert not (disk_env / "etc/luks/secret").exists()
    assert " none luks,_netdev\n" in (disk_env / "etc/crypttab").read_text()


@pytest.mark.root
@needs_loop
@needs_tang
@needs_swtpm
@pytest.mark.usefixtures("swtpm")
def test_threshold_two_of_tang_and_tpm2(disk_env: Path, loop_factory: LoopFactory, tang: Tang) -> None:
    """threshold 2 over a Tang server and the (software) TPM2: both are in the sss config,
    and the binding opens the volume while both answer."""
    device, _ = loop_factory(32)
    advert = clevis.verify_advertisement(tang.url, tang.thumbprint, tang.advertisement())
    _format_and_bind(device, {"tang": [{"url": tang.url, "thumbprint": tang.thumbprint}],
                              "tpm2": True, "threshold": 2}, {tang.url: advert})
    config_json = json.loads(sh("clevis", "luks", "list", "-d", device).stdout.split("'")[1])
    assert config_json["t"] == 2
    assert set(config_json["pins"]) == {"tang", "tpm2"}
    assert _keyslots(device) == 1
    assert _opens_with(device, _clevis_key(device))


@pytest.mark.root
@needs_loop
@needs_swtpm
@pytest.mark.usefixtures("swtpm")
def test_tpm2_only_binding(disk_env: Path, loop_factory: LoopFactory) -> None:
    """tpm2: true alone: no network needed, so crypttab has no ``_netdev``."""
    device, _ = loop_factory(32)
    _format_and_bind(device, {"tpm2": True}, {})
    assert "tpm2" in sh("clevis", "luks", "list", "-d", device).stdout
    assert _opens_with(device, _clevis_key(device))
    luks.install_in_target(disk_env)
    assert (disk_env / "etc/crypttab").read_text().endswith(" none luks\n")


def _cryptsetup_before_2_4(tmp_path: Path) -> Path:
    """A cryptsetup that, like 2.3 and older, has no ``--dump-json-metadata``; calls are logged."""
    log = tmp_path / "cryptsetup-calls"
    wrapper = tmp_path / "cryptsetup-2.3"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'for a in "$@"; do [ "$a" = --dump-json-metadata ] && '
        '{ echo "cryptsetup: --dump-json-metadata: unknown option" >&2; exit 1; }; done\n'
        f'exec {shutil.which("cryptsetup")} "$@"\n'
    )
    wrapper.chmod(0o755)
    return log


@pytest.mark.root
@needs_loop
@needs_tang
@pytest.mark.parametrize("json_metadata", [True, False], ids=["luksDump-json", "cryptsetup-2.3"])
def test_a_binding_that_cannot_unlock_keeps_the_random_key(
    disk_env: Path, loop_factory: LoopFactory, tang: Tang, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, json_metadata: bool,
) -> None:
    """The advertisement is right but the server named cannot be reached when the
    unlock is proven: the run stops and the random key's slot stays, so the volume
    is not left to a binding that does not open it. The same holds where
    cryptsetup cannot print JSON metadata and clevis' scripts find the slot."""
    if not json_metadata:
        monkeypatch.setenv("PROVISION_TOOL_CRYPTSETUP", str(tmp_path / "cryptsetup-2.3"))
        log = _cryptsetup_before_2_4(tmp_path)
    device, _ = loop_factory(32)
    advert = clevis.verify_advertisement(tang.url, tang.thumbprint, tang.advertisement())
    gone = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ProvisionError, match="the binding does not unlock it"):
        _format_and_bind(device, {"tang": [{"url": gone, "thumbprint": tang.thumbprint}]}, {gone: advert})
    assert _keyslots(device) == 2  # the random key and the binding's
    if not json_metadata:
        assert "luksDump --dump-json-metadata" in log.read_text()


@pytest.mark.root
@needs_loop
@needs_tang
def test_cryptsetup_before_2_4_still_proves_the_binding(
    disk_env: Path, loop_factory: LoopFactory, tang: Tang, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without JSON metadata the binding is found with clevis' scripts and proven; the random key goes."""
    monkeypatch.setenv("PROVISION_TOOL_CRYPTSETUP", str(tmp_path / "cryptsetup-2.3"))
    log = _cryptsetup_before_2_4(tmp_path)
    device, _ = loop_factory(32)
    advert = clevis.verify_advertisement(tang.url, tang.thumbprint, tang.advertisement())
    _format_and_bind(device, {"tang": [{"url": tang.url, "thumbprint": tang.thumbprint}]}, {tang.url: advert})
    assert _keyslots(device) == 1
    assert _opens_with(device, _clevis_key(device))
    calls = log.read_text()
    assert "luksDump --dump-json-metadata" in calls and "open --test-passphrase" in calls


@pytest.mark.root
@needs_loop
@needs_tang
def test_a_clevis_volume_is_never_reused(disk_env: Path, loop_factory: LoopFactory, tang: Tang) -> None:
    """As in Ignition: without wipeVolume an existing LUKS2 volume with a clevis section is refused."""
    device, _ = loop_factory(32)
    sh("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", *FAST_KDF, "--key-file=-", device,
       input=KEY)
    volume = config({"luks": [{"name": "secret", "device": device, "keyFile": {"source": data_url(KEY)},
                               "clevis": {"tang": [{"url": tang.url, "thumbprint": tang.thumbprint}]}}]})
    with pytest.raises(ProvisionError, match="never reused"):
        luks.decide(volume.storage.luks[0], probe(device))


# ---- the advertisement ------------------------------------------------------


@needs_tang
def test_advertisement_checks(tang: Tang) -> None:
    """The signing key's thumbprint is accepted; the exchange key's, a made-up one, a
    tampered signature and a non-advertisement are refused."""
    data = tang.advertisement()
    assert clevis.verify_advertisement(tang.url, tang.thumbprint, data)
    for wrong in (tang.other_thumbprint, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        with pytest.raises(clevis.ClevisError, match=f"no signing key .* thumbprint {wrong}"):
            clevis.verify_advertisement(tang.url, wrong, data)
    tampered = json.loads(data)
    signature = tampered["signature"]
    tampered["signature"] = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(clevis.ClevisError, match="not signed by the trusted key"):
        clevis.verify_advertisement(tang.url, tang.thumbprint, json.dumps(tampered).encode())
    with pytest.raises(clevis.ClevisError, match="not JSON"):
        clevis.verify_advertisement(tang.url, tang.thumbprint, b"<html>")


# ---- the whole stage: fail closed -------------------------------------------


@pytest.fixture
def dm_crypt_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage refuses LUKS on kernels without dm-crypt at plan time; these runs stop earlier."""
    monkeypatch.setattr("provision.stages.disks.kernel.has_dm_crypt", lambda: True)


def _stage_config(device: str, url: str, thumbprint: str) -> object:
    from provision.config.build import build_config

    return build_config({"provision": {"version": "1.0.0", "timeouts": {"httpTotal": 3}}, "storage": {
        "disks": [{"device": device, "wipeTable": True, "partitions": [{"label": "root"}]}],
        "luks": [{"name": "root", "device": "/dev/disk/by-partlabel/root", "options": FAST_KDF,
                  "wipeVolume": True,
                  "clevis": {"tang": [{"url": url, "thumbprint": thumbprint}]}}],
    }})


@pytest.mark.root
@needs_loop
@needs_tang
@pytest.mark.usefixtures("dm_crypt_assumed")
def test_wrong_thumbprint_fails_closed(disk_env: Path, loop_factory: LoopFactory, tang: Tang) -> None:
    """A thumbprint that is not the server's signing key: the run stops naming the
    volume and the thumbprint, before the partition table is written."""
    device, image = loop_factory(32)
    before = image_digest(image, device)
    cfg = _stage_config(device, tang.url, tang.other_thumbprint)
    plan = plan_disks(cfg, disk_env)  # type: ignore[arg-type]
    assert any("bound with clevis (1 of Tang " in a.detail for a in plan.actions)
    with pytest.raises(StageError) as caught:
        run_disks(cfg, disk_env)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "/dev/mapper/root" in message and tang.other_thumbprint in message
    assert image_digest(image, device) == before


@pytest.mark.root
@needs_loop
@pytest.mark.usefixtures("dm_crypt_assumed")
def test_unreachable_tang_fails_before_any_change(disk_env: Path, loop_factory: LoopFactory) -> None:
    """No server at the URL: the advertisement (a need of the stage) cannot be fetched
    (retried until the config's httpTotal), the error names the Tang server, and the
    disk is untouched."""
    device, image = loop_factory(32)
    before = image_digest(image, device)
    url = f"http://127.0.0.1:{_free_port()}"
    cfg = _stage_config(device, url, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(StageError, match=f"Tang server {url}"):
        run_disks(cfg, disk_env)  # type: ignore[arg-type]
    assert image_digest(image, device) == before


# ---- Butane's boot_device.luks ----------------------------------------------

BOOT_DEVICE = """\
variant: fcos
version: 1.5.0
boot_device:
  luks:
    tpm2: true
    threshold: {threshold}
    tang:
      - url: https://tang.example.com
        thumbprint: REPLACE-THIS-WITH-YOUR-TANG-THUMBPRINT
"""


def test_butane_boot_device_luks_is_accepted_and_checked() -> None:
    """Butane's sugar becomes storage.luks[].clevis, which validates; a threshold the
    pins cannot reach is an error at the Butane line that set it."""
    from provision.config.pipeline import parse_config

    parsed = parse_config(BOOT_DEVICE.format(threshold=2).encode(), "node.bu")
    assert [d.message for d in parsed.diagnostics] == []
    assert parsed.config is not None
    bound = clevis.binding(parsed.config.storage.luks[0].clevis)
    assert bound is not None and (bound.tpm2, bound.threshold, len(bound.tang)) == (True, 2, 1)

    parsed = parse_config(BOOT_DEVICE.format(threshold=3).encode(), "node.bu")
    [diag] = parsed.diagnostics
    assert "threshold 3 is more than the 2 pin(s)" in diag.message
    assert diag.position is not None and diag.position.line == 5


@pytest.mark.parametrize(
    ("clevis_spec", "line"),
    [
        ({"tpm2": True}, "v UUID=u none luks\n"),
        ({"tang": [{"url": "http://t", "thumbprint": "x"}]}, "v UUID=u none luks,_netdev\n"),
        ({"custom": {"pin": "tang", "config": "{}", "needsNetwork": True}}, "v UUID=u none luks,_netdev\n"),
        ({"custom": {"pin": "tpm2", "config": "{}"}}, "v UUID=u none luks\n"),
        ({"tpm2": False}, "v UUID=u /etc/luks/v luks\n"),  # switched off: an ordinary volume
    ],
)
def test_crypttab_names_no_key_and_waits_for_the_network_when_needed(
    clevis_spec: dict[str, object], line: str
) -> None:
    volume = config({"luks": [{"name": "v", "device": "/dev/vdb", "clevis": clevis_spec}]}).storage.luks[0]
    assert luks.crypttab_line(volume, "u") == line


def test_sss_config_is_ignitions() -> None:
    """The pin and config handed to clevis: sss with t (default 1), tang entries as url/thp
    (plus the verified advertisement), tpm2 as an empty object; a custom pin as written."""
    spec = {"tang": [{"url": "http://t", "thumbprint": "x"}], "tpm2": True}
    bound = clevis.binding(spec)
    assert bound is not None
    pin, text = bound.config({"http://t": {"payload": "p"}})
    assert pin == "sss"
    assert json.loads(text) == {"t": 1, "pins": {"tang": [{"url": "http://t", "thp": "x", "adv": {"payload": "p"}}],
                                                 "tpm2": {}}}
    custom = clevis.binding({"custom": {"pin": "tpm2", "config": '{"pcr_ids":"7"}'}})
    assert custom is not None and custom.config({}) == ("tpm2", '{"pcr_ids":"7"}')
    assert clevis.binding({"tpm2": False, "tang": [], "threshold": 0}) is None
