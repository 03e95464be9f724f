"""LUKS2 volumes with cryptsetup, and what the target needs to open them at boot.

Reuse follows Ignition: without ``wipeVolume`` an existing LUKS2 volume is
reused when a key file is configured and its label, UUID and discard flag
match (it must also open with that key); LUKS1 or any other signature is an
error. With ``wipeVolume`` the device is wiped and formatted anew.

The key (the configured key file, or a random one) is kept for the target as
/etc/luks/<name> (mode 0400) with a matching /etc/crypttab line. A volume
bound with clevis (:mod:`provision.disks.clevis`) keeps no key in the target:
its crypttab line names ``none`` and the image's clevis unlocks it (with
``_netdev`` when a Tang server is needed). A clevis volume is never reused,
as in Ignition: what is in its header cannot be compared with the config. A
volume enrolled with systemd-cryptenroll (:mod:`provision.disks.cryptenroll`)
is treated alike: no key kept, ``none`` plus ``tpm2-device=`` in crypttab,
never reused, and the target must carry systemd 251 or newer. The target
root is usually not mounted while disks are set up, so both wait in the state
directory and :func:`install_in_target` writes them once it is.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from provision.config import model
from provision.disks import clevis, clevis_tokens, cryptenroll
from provision.disks.probe import Found
from provision.disks.state import state_dir
from provision.errors import ProvisionError
from provision.run import run

TARGET_KEY_DIR = "/etc/luks"

# cryptsetup open options that have a crypttab(5) spelling.
_CRYPTTAB_OPTIONS = {
    "--allow-discards": "discard",
    "--perf-no_read_workqueue": "no-read-workqueue",
    "--perf-no_write_workqueue": "no-write-workqueue",
    "--perf-same_cpu_crypt": "same-cpu-crypt",
    "--perf-submit_from_crypt_cpus": "submit-from-crypt-cpus",
    "--readonly": "readonly",
}


class LuksError(ProvisionError):
    """A LUKS device cannot be created or reused as configured."""


@dataclass(frozen=True)
class LuksAction:
    """``kind``: format, wipe-format, reuse."""

    kind: str
    reason: str = ""


def mapper_path(name: str) -> str:
    return f"/dev/mapper/{name}"


def decide(luks: model.Luks, found: Found) -> LuksAction:
    """Format, or reuse what is on the device, or fail (Ignition's rules)."""
    if luks.wipe_volume:
        return LuksAction("wipe-format", f"wipeVolume (found {found.describe()})")
    if found.type is None and not found.ambivalent:
        return LuksAction("format", "empty device")
    if found.type == "crypto_LUKS":
        if found.version != "2":
            raise LuksError(f"{luks.device} is a LUKS{found.version} volume; only LUKS2 can be reused")
        problems = []
        if clevis.is_present(luks.clevis):
            problems.append("a volume bound with clevis is never reused")
        if luks.systemd_tpm2 is not None:
            problems.append("a volume enrolled with systemd-cryptenroll is never reused")
        if luks.key_file is None or luks.key_file.source is None:
            problems.append("reuse needs a configured keyFile")
        if luks.label is not None and found.label != luks.label:
            problems.append(f"label {found.label!r}, wanted {luks.label!r}")
        if luks.uuid is not None and (found.uuid or "").lower() != luks.uuid.lower():
            problems.append(f"uuid {found.uuid}, wanted {luks.uuid}")
        if not problems:
            return LuksAction("reuse", "existing LUKS2 volume matches")
        raise LuksError(
            f"{luks.device} holds a LUKS2 volume that cannot be reused ({'; '.join(problems)}) "
            "and wipeVolume is false"
        )
    raise LuksError(
        f"{luks.device} already holds {found.describe()} and wipeVolume is false"
    )


def format_args(luks: model.Luks, device: str, key_path: str) -> list[str]:
    args = ["luksFormat", "--batch-mode", "--type", "luks2", "--key-file", key_path]
    if luks.label is not None:
        args += ["--label", luks.label]
    if luks.uuid is not None:
        args += ["--uuid", luks.uuid]
    return [*args, *luks.options, device]


def open_args(luks: model.Luks, device: str, key_path: str) -> list[str]:
    args = ["luksOpen", device, luks.name, "--key-file", key_path]
    if luks.discard:
        # --persistent stores the flag in the header, which reuse checks.
        args += ["--allow-discards", "--persistent"]
    return [*args, *luks.open_options]


def crypttab_line(luks: model.Luks, volume_uuid: str) -> str:
    bound = clevis.binding(luks.clevis)
    enrolled = cryptenroll.enrollment(luks.systemd_tpm2)
    options = ["luks"]
    if bound is not None and bound.needs_network:
        options.append("_netdev")  # as Ignition: the unlock waits for the network
    if enrolled is not None:
        options += enrolled.crypttab_options()
    if luks.discard:
        options.append("discard")
    for option in luks.open_options:
        flag = option.split("=", 1)[0]
        mapped = _CRYPTTAB_OPTIONS.get(flag)
        if mapped and mapped not in options:
            options.append(mapped)
    key = "none" if bound is not None or enrolled is not None else f"{TARGET_KEY_DIR}/{luks.name}"
    return f"{luks.name} UUID={volume_uuid} {key} {','.join(options)}\n"


def key_material(luks: model.Luks, fetch: Callable[[model.Resource], IO[bytes]]) -> bytes:
    """The configured key file's bytes, or a new random key (4096 hex digits)."""
    if luks.key_file is None or luks.key_file.source is None:
        return secrets.token_hex(2048).encode()
    with fetch(luks.key_file) as handle:
        data = handle.read()
    if not data:
        raise LuksError(f"the key file for LUKS volume {luks.name} is empty")
    return data


def _pending_dir() -> Path:
    path = state_dir() / "luks"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def stage_key(name: str, key: bytes) -> Path:
    """Write the key to the state directory (0400) and return its path."""
    path = _pending_dir() / f"{name}.key"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return path


def format_volume(
    luks: model.Luks,
    device: str,
    action: LuksAction,
    fetch: Callable[[model.Resource], IO[bytes]],
) -> Path:
    """Format (or check for reuse) and stage the key and crypttab line; return the key path."""
    key_path = stage_key(luks.name, key_material(luks, fetch))
    if action.kind == "wipe-format":
        run("wipefs", ["-a", device])
    if action.kind in ("format", "wipe-format"):
        run("cryptsetup", format_args(luks, device, str(key_path)))
    elif action.kind == "reuse":
        _check_discard_flag(luks, device)
    volume_uuid = run("cryptsetup", ["luksUUID", device]).stdout.strip()
    (_pending_dir() / f"{luks.name}.crypttab").write_text(crypttab_line(luks, volume_uuid))
    return key_path


def open_volume(luks: model.Luks, device: str, key_path: Path) -> str:
    """Open the volume as /dev/mapper/<name> (needs the kernel's dm-crypt)."""
    result = run("cryptsetup", open_args(luks, device, str(key_path)), check=False)
    if result.status != 0:
        raise LuksError(f"cannot open LUKS volume {luks.name} on {device}: {result.stderr.strip()}")
    return mapper_path(luks.name)


def bind_volume(luks: model.Luks, device: str, key_path: Path, advertisements: dict[str, Any]) -> None:
    """Bind the volume with clevis (it needs no dm-crypt), prove the binding, drop a random key.

    ``advertisements`` are the Tang advertisements fetched and verified
    before the run changed anything, by URL. The token clevis wrote is
    checked to hold the binding asked for, and the unlock is proven (the
    binding's passphrase opens its key slot) when the pins that answer now
    reach the threshold, as Ignition does; only then is a random key's slot
    removed, so a failed bind never leaves a volume nobody can open.
    """
    bound = clevis.binding(luks.clevis)
    if bound is None:
        return
    pin, config = bound.config({**_configured_advertisements(bound), **advertisements})
    result = run("clevis", ["luks", "bind", "-f", "-k", str(key_path), "-d", device, pin, config], check=False)
    if result.status != 0:
        raise LuksError(
            f"cannot bind LUKS volume {luks.name} on {device} with clevis ({pin}): "
            f"{result.stderr.strip() or 'exit status ' + str(result.status)}"
        )
    _check_binding(luks, device, bound, prove=bound.checkable_now(len(advertisements)))
    if luks.key_file is None or luks.key_file.source is None:
        removed = run("cryptsetup", ["luksRemoveKey", "--batch-mode", device, str(key_path)], check=False)
        if removed.status != 0:
            raise LuksError(f"cannot remove the provisioning key of LUKS volume {luks.name}: "
                            f"{removed.stderr.strip()}")
    # Like Ignition, a clevis volume keeps no key file in the target.
    key_path.unlink(missing_ok=True)


def enroll_volume(luks: model.Luks, device: str, key_path: Path) -> None:
    """Enroll the TPM2 with systemd-cryptenroll, check its token is in the header, drop a random key.

    The random key's slot goes only once the token is there, so a failed
    enrollment never leaves a volume nobody can open. The PIN travels in
    ``$NEWPIN`` and is passed to run() as a secret, so no log or error shows it.
    """
    enrolled = cryptenroll.enrollment(luks.systemd_tpm2)
    if enrolled is None:
        return
    secrets_ = [enrolled.pin] if enrolled.pin else []
    result = run("systemd-cryptenroll", enrolled.args(key_path, device), env=enrolled.env(),
                 secrets=secrets_, check=False)
    if result.status != 0:
        why = result.stderr.strip() or f"exit status {result.status}"
        for secret in secrets_:
            why = why.replace(secret, "<redacted>")
        raise LuksError(f"cannot enroll LUKS volume {luks.name} on {device} with the TPM2: {why}")
    dump = run("cryptsetup", ["luksDump", "--dump-json-metadata", device], check=False)
    if not cryptenroll.tokens(dump.stdout):
        raise LuksError(f"LUKS volume {luks.name}: systemd-cryptenroll succeeded but the header "
                        f"has no {cryptenroll.TOKEN_TYPE} token")
    if luks.key_file is None or luks.key_file.source is None:
        removed = run("cryptsetup", ["luksRemoveKey", "--batch-mode", device, str(key_path)], check=False)
        if removed.status != 0:
            raise LuksError(f"cannot remove the provisioning key of LUKS volume {luks.name}: "
                            f"{removed.stderr.strip()}")
    key_path.unlink(missing_ok=True)  # like clevis: no key file in the target
    # Marks the volume for the target's systemd check in install_in_target.
    (_pending_dir() / f"{luks.name}.tpm2").touch()


def _configured_advertisements(bound: clevis.Binding) -> dict[str, Any]:
    return {t.url: json.loads(t.advertisement) for t in bound.tang if t.advertisement}


def _check_binding(luks: model.Luks, device: str, bound: clevis.Binding, *, prove: bool) -> None:
    """Check the header's clevis token against the config; with ``prove``, that it unlocks.

    The token is read from the JSON metadata (one cryptsetup call) and its
    JWE decrypted with ``clevis decrypt``: the same proof as ``clevis luks
    pass``, without the seconds its shell scripts take to find the token.
    Where cryptsetup cannot print JSON metadata (before 2.4) clevis' own
    scripts find the slots, as before.
    """
    dump = run("cryptsetup", ["luksDump", "--dump-json-metadata", device], check=False)
    if dump.status != 0:
        if prove:
            _prove_unlock_with_clevis_scripts(luks, device)
        return
    try:
        found = clevis_tokens.tokens(dump.stdout)
    except clevis.ClevisError as exc:
        raise LuksError(f"LUKS volume {luks.name} was bound with clevis, but its header: {exc}") from None
    if not found:
        raise LuksError(f"LUKS volume {luks.name}: clevis luks bind succeeded but the header has no clevis token")
    for token in found:  # the volume was formatted for this run: every clevis token is this bind's
        wrong = clevis_tokens.mismatch(bound, token)
        if wrong is not None:
            raise LuksError(f"LUKS volume {luks.name}: the clevis binding in the header is not the one "
                            f"configured ({bound.describe()}): {wrong}")
    if not prove:
        return
    why = ""
    for token in found:
        recovered = run("clevis", ["decrypt"], input=token.jwe, check=False)
        if recovered.status != 0 or not recovered.stdout_bytes:
            why = f"clevis decrypt: {recovered.stderr.strip() or 'no key'}"
            continue
        for slot in token.keyslots:
            if _opens_slot(device, slot, recovered.stdout_bytes):
                return
        why = "the key clevis recovers does not open its key slot"
    raise LuksError(f"LUKS volume {luks.name} was bound with clevis, but the binding does not unlock it ({why})")


def _opens_slot(device: str, slot: str | None, key: bytes) -> bool:
    args = ["open", "--test-passphrase", "--key-file=-", *(["--key-slot", slot] if slot else []), device]
    return run("cryptsetup", args, input=key, check=False).status == 0


def bound_slots(device: str) -> list[str]:
    """The key slots clevis has bound on the device (``clevis luks list``)."""
    listed = run("clevis", ["luks", "list", "-d", device], check=False)
    if listed.status != 0:
        return []
    return [line.split(":", 1)[0].strip() for line in listed.stdout.splitlines() if ":" in line]


def _prove_unlock_with_clevis_scripts(luks: model.Luks, device: str) -> None:
    """The proof for cryptsetup before 2.4: ``clevis luks list`` and ``clevis luks pass``."""
    why = "clevis lists no binding"
    for slot in bound_slots(device):
        passed = run("clevis", ["luks", "pass", "-d", device, "-s", slot], check=False)
        if passed.status != 0 or not passed.stdout_bytes:
            why = f"clevis luks pass: {passed.stderr.strip() or 'no key'}"
            continue
        if _opens_slot(device, None, passed.stdout_bytes):
            return
        why = "the key clevis recovers does not open the volume"
    raise LuksError(f"LUKS volume {luks.name} was bound with clevis, but the binding does not unlock it ({why})")


def _check_discard_flag(luks: model.Luks, device: str) -> None:
    dump = run("cryptsetup", ["luksDump", "--dump-json-metadata", device], check=False)
    if dump.status != 0:
        return  # older cryptsetup: the open below still proves the key
    flags = json.loads(dump.stdout).get("config", {}).get("flags", [])
    if ("allow-discards" in flags) != luks.discard:
        raise LuksError(
            f"{device}: the LUKS2 volume's allow-discards flag does not match discard={luks.discard}"
        )


def install_in_target(root: Path) -> list[str]:
    """Move staged keys to <root>/etc/luks and add their crypttab lines; return names."""
    from provision.target.tree import TargetTree

    pending = state_dir() / "luks"
    if not pending.is_dir():
        return []
    names = sorted(p.stem for p in pending.glob("*.crypttab"))
    if not names:
        return []
    _check_target_systemd(root, [n for n in names if (pending / f"{n}.tpm2").exists()])
    with TargetTree(root) as tree:
        tree.make_directory(TARGET_KEY_DIR, mode=0o700, uid=0, gid=0)
        existing = (tree.read_bytes("/etc/crypttab") or b"").decode()
        lines = existing.splitlines(keepends=True)
        for name in names:
            staged_key = pending / f"{name}.key"
            if staged_key.exists():  # not for a volume bound with clevis
                tree.write_file(f"{TARGET_KEY_DIR}/{name}", [staged_key.read_bytes()],
                                mode=0o400, uid=0, gid=0)
            lines = [ln for ln in lines if ln.split()[:1] != [name]]
            lines.append((pending / f"{name}.crypttab").read_text())
        text = "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)
        tree.write_file("/etc/crypttab", [text.encode()], mode=0o644, uid=0, gid=0)
    for name in names:
        (pending / f"{name}.key").unlink(missing_ok=True)
        (pending / f"{name}.crypttab").unlink(missing_ok=True)
        (pending / f"{name}.tpm2").unlink(missing_ok=True)
    return names


def _check_target_systemd(root: Path, enrolled: list[str]) -> None:
    """Refuse to hand a TPM2-enrolled volume to a root whose systemd cannot unlock it.

    The disks stage checked the image before formatting (at plan, from the
    root or, at boot, from the root device); this is the last look, at the
    tree that gets the crypttab lines (a filesystem mounted over /usr by the
    same config would only show here).
    """
    cryptenroll.refuse_unless_image_unlocks(enrolled, f"the target root {root}",
                                            cryptenroll.systemd_version(root))
