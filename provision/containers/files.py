"""What the runtime modules produce: files to write, links to make, paths to remove."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileWrite:
    path: str
    data: bytes = field(repr=False)  # may be a credential: never shown
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    secret: bool = False  # plan lines and errors never show the contents
    what: str = ""  # for plan lines: "docker daemon settings", ...


@dataclass
class RuntimeFiles:
    """Everything one runtime needs written, in write order."""

    # Directories made (or fixed) before the writes: (path, mode), owned by root.
    directories: list[tuple[str, int]] = field(default_factory=list)
    writes: list[FileWrite] = field(default_factory=list)
    # Units to enable (links) and disable (links removed), by unit file path.
    enable: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
