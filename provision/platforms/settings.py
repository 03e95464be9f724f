"""Where the datasources get their settings: flags, environment, kernel command line.

Precedence: an explicit argument (a command-line flag) beats the environment
variable, which beats the kernel command line, which beats the default. The
seams exist for tests and debugging:

``PROVISION_METADATA_URL``  base URL for any HTTP platform (replaces 169.254.169.254 & co.)
``PROVISION_SYS_ROOT``      read /sys, /dev/disk/by-label and /proc/cmdline below this directory
``PROVISION_CMDLINE``       the kernel command line itself, instead of /proc/cmdline
``PROVISION_RUN_DIR``       where the offline pass leaves its ``neednet`` flag (/run/provision)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provision import __version__
from provision.errors import UsageError
from provision.platforms.cmdline import KernelArgs, parse_cmdline

DEFAULT_FETCH_TIMEOUT = 120.0
DEFAULT_RUN_DIR = Path("/run/provision")


@dataclass(frozen=True)
class Settings:
    sys_root: Path = Path("/")
    kernel: KernelArgs = field(default_factory=KernelArgs)
    platform: str | None = None
    metadata_url: str | None = None
    config_file: Path | None = None
    run_dir: Path = DEFAULT_RUN_DIR
    # Seconds the config fetch keeps trying; None: until it arrives (provision.fetch.wait=infinity).
    fetch_timeout: float | None = DEFAULT_FETCH_TIMEOUT
    user_agent: str = f"provision/{__version__}"

    @property
    def fetch_wait_text(self) -> str:
        """The fetch limit for messages: "120 s" or "no limit"."""
        return "no limit" if self.fetch_timeout is None else f"{self.fetch_timeout:g} s"

    def host_path(self, path: str) -> Path:
        """``path`` (absolute, e.g. /sys/class/dmi/id) below the sys root."""
        return self.sys_root / path.lstrip("/")

    @property
    def neednet_flag(self) -> Path:
        return self.run_dir / "neednet"

    @classmethod
    def load(
        cls,
        *,
        platform: str | None = None,
        metadata_url: str | None = None,
        sys_root: str | None = None,
        cmdline: str | None = None,
        config_file: str | None = None,
        run_dir: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        root = Path(sys_root or env.get("PROVISION_SYS_ROOT") or "/")
        text = cmdline if cmdline is not None else env.get("PROVISION_CMDLINE")
        if text is None:
            text = _read_proc_cmdline(root)
        kernel = parse_cmdline(text)
        if kernel.errors:
            raise UsageError("kernel command line: " + "; ".join(kernel.errors))
        chosen = platform or kernel.platform
        if config_file and chosen in (None, "file"):
            chosen = "file"
        return cls(
            sys_root=root,
            kernel=kernel,
            platform=chosen,
            metadata_url=metadata_url or env.get("PROVISION_METADATA_URL") or None,
            config_file=Path(config_file) if config_file else None,
            run_dir=Path(run_dir or env.get("PROVISION_RUN_DIR") or DEFAULT_RUN_DIR),
            fetch_timeout=None if kernel.fetch_unlimited
            else kernel.fetch_timeout or DEFAULT_FETCH_TIMEOUT,
        )


def _read_proc_cmdline(root: Path) -> str:
    try:
        return (root / "proc/cmdline").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
