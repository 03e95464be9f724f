"""TPM2 enrollment of LUKS volumes with systemd-cryptenroll (``storage.luks[].systemdTpm2``).

An alternative to clevis where the image boots with systemd 251 or newer: the
volume is formatted with a random key, ``systemd-cryptenroll`` seals a new key
to the TPM2 (optionally with a PIN) and records a ``systemd-tpm2`` token in
the LUKS2 header, the token is checked to be there, and only then is the
random key's slot removed. The image's systemd-cryptsetup unlocks the volume
from its crypttab line (``tpm2-device=``).

The PIN is a secret: it reaches systemd-cryptenroll through ``$NEWPIN``, never
argv, and no message here names it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError

# systemd-cryptenroll learnt --tpm2-with-pin (and $NEWPIN) in 251; the issue
# asks for 251 as the floor for the whole binder.
MIN_SYSTEMD = 251
TOKEN_TYPE = "systemd-tpm2"


class EnrollError(ProvisionError):
    """A TPM2 enrollment cannot be made as configured."""


@dataclass(frozen=True)
class Enrollment:
    device: str = "auto"
    pcrs: tuple[int, ...] = ()
    pin: str | None = None

    def describe(self) -> str:
        pcrs = "+".join(str(p) for p in self.pcrs) if self.pcrs else "default PCRs"
        return f"systemd-cryptenroll TPM2 ({self.device}, {pcrs}{', with PIN' if self.pin else ''})"

    def args(self, key_path: Path, device: str) -> list[str]:
        args = [f"--unlock-key-file={key_path}", f"--tpm2-device={self.device}"]
        if self.pcrs:
            args.append("--tpm2-pcrs=" + "+".join(str(p) for p in self.pcrs))
        if self.pin is not None:
            args.append("--tpm2-with-pin=yes")
        return [*args, device]

    def env(self) -> dict[str, str]:
        return {"NEWPIN": self.pin} if self.pin is not None else {}

    def crypttab_options(self) -> list[str]:
        return [f"tpm2-device={self.device}"]


def enrollment(section: dict[str, Any] | None) -> Enrollment | None:
    """What a validated ``systemdTpm2`` section asks for, or None without one."""
    if section is None:
        return None
    return Enrollment(
        device=section.get("device") or "auto",
        pcrs=tuple(section.get("pcrs") or ()),
        pin=section.get("pin"),
    )


_SHARED_LIB = re.compile(r"^libsystemd-shared-(\d+)(?:[.-][^/]*)?\.so$")  # Fedora: 255.4-1.fc40
# Where distributions keep systemd's private shared library, whose name carries the version.
_SHARED_DIRS = ("usr/lib/systemd", "usr/lib64/systemd", "lib/systemd")


def systemd_version(root: Path) -> int | None:
    """The systemd version of the tree at ``root``, from libsystemd-shared-NNN.so; None: not found.

    A file name, not ``systemd --version``: the target's binaries are not
    runnable from here (another root, maybe another architecture).
    """
    dirs = [root / d for d in _SHARED_DIRS]
    dirs += sorted(root.glob("usr/lib/*-linux-gnu*/systemd"))
    found = [
        int(m.group(1))
        for d in dirs if d.is_dir()
        for entry in d.iterdir()
        if (m := _SHARED_LIB.match(entry.name))
    ]
    return max(found) if found else None


def refuse_unless_image_unlocks(volumes: list[str], where: str, version: int | None,
                                unreadable: str | None = None) -> None:
    """Raise unless the image at ``where`` (its systemd ``version``) can unlock ``volumes``.

    The image's own systemd-cryptsetup unlocks an enrolled volume on every later
    boot; an image that cannot would be left with a volume nothing opens.
    """
    if not volumes or (version is not None and version >= MIN_SYSTEMD):
        return
    names = ", ".join(volumes)
    needed = f"unlocking them at boot needs systemd {MIN_SYSTEMD} or newer"
    if unreadable is not None:
        raise EnrollError(f"LUKS volume(s) {names} are to be enrolled with systemd-cryptenroll, but {where} "
                          f"cannot be read before the disks change ({unreadable}), so its systemd version "
                          f"is unknown; {needed}")
    found = ("no systemd (no libsystemd-shared-NNN.so under usr/lib)" if version is None
             else f"systemd {version}")
    raise EnrollError(f"LUKS volume(s) {names} are to be enrolled with systemd-cryptenroll, but {where} "
                      f"has {found}; {needed}")


def tokens(dump_json: str) -> list[dict[str, Any]]:
    """The systemd-tpm2 tokens of a ``cryptsetup luksDump --dump-json-metadata`` output."""
    try:
        header = json.loads(dump_json)
    except ValueError:
        return []
    return [t for t in (header.get("tokens") or {}).values()
            if isinstance(t, dict) and t.get("type") == TOKEN_TYPE]
