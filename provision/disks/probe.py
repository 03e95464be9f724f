"""What is on a device right now, read with ``blkid -p`` (no cache)."""

from __future__ import annotations

from dataclasses import dataclass

from provision.errors import ProvisionError
from provision.run import run

# blkid exit statuses (blkid(8)): 2 = nothing found, 8 = ambivalent probe result.
_NOTHING_FOUND = 2
_AMBIVALENT = 8


@dataclass(frozen=True)
class Found:
    """Signature found on a device; ``type`` None means none at all."""

    type: str | None = None
    label: str | None = None
    uuid: str | None = None
    version: str | None = None
    ambivalent: bool = False

    def describe(self) -> str:
        if self.ambivalent:
            return "several conflicting signatures"
        if self.type is None:
            return "nothing"
        parts = [self.type]
        if self.label:
            parts.append(f"label {self.label!r}")
        if self.uuid:
            parts.append(f"uuid {self.uuid}")
        return ", ".join(parts)


def probe(device: str) -> Found:
    """The filesystem (or LUKS, RAID member, swap) signature on ``device``."""
    done = run("blkid", ["-p", "-o", "export", device], check=False, env={"LC_ALL": "C"})
    if done.status == _NOTHING_FOUND:
        return Found()
    if done.status == _AMBIVALENT:
        return Found(ambivalent=True)
    if done.status != 0:
        raise ProvisionError(
            f"cannot probe {device} with blkid: {done.stderr.strip() or f'exit status {done.status}'}"
        )
    values = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if "=" in line
    )
    return Found(
        type=values.get("TYPE"),
        label=values.get("LABEL"),
        uuid=values.get("UUID"),
        version=values.get("VERSION"),
    )
