"""What the boot stages leave for each other in the run directory (/run/provision).

The stages run as separate processes; everything one stage tells a later one
goes through files here. /run is a tmpfs that does not outlive the boot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def neednet(self) -> Path:
        """Written by the offline pass when the network is needed (the hooks read it)."""
        return self.path / "neednet"

    @property
    def initnet(self) -> Path:
        """The static network the online pass brings up before fetching (provision.boot.initnet)."""
        return self.path / "initnet.json"

    @property
    def config_cache(self) -> Path:
        """The final config, once fetched and resolved (provision.fetch.cache)."""
        return self.path / "config.json"

    @property
    def offline_config(self) -> Path:
        """Config bytes the offline pass read but could not finish without the network."""
        return self.path / "offline-config"

    @property
    def fetched(self) -> Path:
        """Where the config came from: platform and source (no contents)."""
        return self.path / "fetched.json"

    @property
    def instance(self) -> Path:
        """What the platform said about the instance (provision.instance.data)."""
        return self.path / "instance.json"

    @property
    def skip(self) -> Path:
        """Present when nothing is to be provisioned on this boot; holds the reason."""
        return self.path / "skip"

    @property
    def log(self) -> Path:
        return self.path / "provision.log"

    @property
    def failure(self) -> Path:
        """The failure summary the hooks show on the console."""
        return self.path / "failure"

    @property
    def staging_root(self) -> Path:
        """Where the disks stage's result record waits until the root is mounted."""
        return self.path / "pre-root"

    @property
    def peek(self) -> Path:
        """Mount point for a read-only look at the root before it is mounted."""
        return self.path / "peek"

    @property
    def bootfs(self) -> Path:
        """Mount point for the root (and its /boot) while the kargs stage edits the boot loader."""
        return self.path / "bootfs"

    @property
    def reboot(self) -> Path:
        """Present when this boot must end in a reboot (new kernel arguments); holds why."""
        return self.path / "reboot"

    @property
    def platform_data(self) -> Path:
        """The platform's raw extras next to the user data (meta-data, vendor-data,
        network-config), one file each, for the stages that render them."""
        return self.path / "platform"

    def keep_platform_data(self, extras: Mapping[str, bytes]) -> None:
        """Write the platform's extras (mode 0600 in a 0700 directory; they may hold secrets)."""
        if not extras:
            return
        self.ensure()
        self.platform_data.mkdir(mode=0o700, exist_ok=True)
        for name, data in extras.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"platform data name {name!r}")
            self.write_private(self.platform_data / name, data)

    def ensure(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def write_private(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` (mode 0600) atomically."""
        self.ensure()
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def write_json(self, path: Path, value: dict[str, Any]) -> None:
        self.write_private(path, json.dumps(value, indent=2, sort_keys=True).encode() + b"\n")

    def read_json(self, path: Path) -> dict[str, Any]:
        try:
            value = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def skip_reason(self) -> str | None:
        try:
            return self.skip.read_text(encoding="utf-8").strip() or "skipped"
        except FileNotFoundError:
            return None
