"""The one place that runs external commands.

Every command goes through :func:`run`: argv is logged (with secrets
redacted), output is captured, and a failure raises CommandError naming the
command, its exit status and its stderr. Tool names resolve through
:data:`TOOLS`, which packagers and tests override with environment variables
``PROVISION_TOOL_<NAME>`` (e.g. ``PROVISION_TOOL_MKFS_EXT4=/sbin/mkfs.ext4``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.errors import CommandError, ProvisionError

log = logging.getLogger(__name__)

# Logical tool name -> default executable. Looked up on PATH (plus the sbin
# directories, which an initramfs or a non-root PATH may lack) at call time.
TOOLS: dict[str, str] = {
    "VBoxControl": "VBoxControl",
    "blkid": "blkid",
    "blockdev": "blockdev",
    "btrfs": "btrfs",
    "chccwdev": "chccwdev",
    "chpasswd": "chpasswd",
    "cio_ignore": "cio_ignore",
    "clevis": "clevis",
    "cryptsetup": "cryptsetup",
    # TPM2 enrollment of LUKS volumes (storage.luks[].systemdTpm2)
    "systemd-cryptenroll": "systemd-cryptenroll",
    "e2fsck": "e2fsck",
    "groupadd": "groupadd",
    "groupdel": "groupdel",
    "groupmod": "groupmod",
    "ip": "ip",
    "jose": "jose",
    # the image's own boot loader editor for kernel arguments (provision.bootloader.helper)
    "kargs-helper": "/usr/lib/provision/kargs-helper",
    "mcopy": "mcopy",
    "mdadm": "mdadm",
    "mkfs.btrfs": "mkfs.btrfs",
    "mkfs.ext4": "mkfs.ext4",
    "mkfs.vfat": "mkfs.vfat",
    "mkfs.xfs": "mkfs.xfs",
    "mkswap": "mkswap",
    "modprobe": "modprobe",
    "mount": "mount",
    "partx": "partx",
    "pvresize": "pvresize",
    "resize2fs": "resize2fs",
    "sfdisk": "sfdisk",
    "umount": "umount",
    "useradd": "useradd",
    "userdel": "userdel",
    "usermod": "usermod",
    "vmtoolsd": "vmtoolsd",
    "vmur": "vmur",
    "vmware-rpctool": "vmware-rpctool",
    "wipefs": "wipefs",
    "xfs_growfs": "xfs_growfs",
    "xorriso": "xorriso",
}

_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def _env_name(tool: str) -> str:
    return "PROVISION_TOOL_" + "".join(c if c.isalnum() else "_" for c in tool.upper())


def tool_path(tool: str) -> str | None:
    """Resolve a logical tool name to an executable path, or None if absent."""
    override = os.environ.get(_env_name(tool))
    name = override or TOOLS.get(tool, tool)
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    for directory in _EXTRA_PATH:
        candidate = Path(directory, name)
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def have_tool(tool: str) -> bool:
    return tool_path(tool) is not None


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    status: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


def _redacted(argv: Sequence[str], secrets: Collection[str]) -> list[str]:
    out = []
    for arg in argv:
        for secret in secrets:
            if secret and secret in arg:
                arg = arg.replace(secret, "<redacted>")
        out.append(arg)
    return out


def run(
    tool: str,
    args: Sequence[str] = (),
    *,
    input: bytes | str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 300,
    secrets: Collection[str] = (),
    cwd: str | None = None,
) -> Completed:
    """Run ``tool args...``; raise CommandError on a non-zero exit when ``check``.

    ``secrets`` are strings replaced by ``<redacted>`` in the log and in any
    error message (a password hash on a command line, say).
    """
    exe = tool_path(tool)
    if exe is None:
        raise ProvisionError(
            f"required tool {tool!r} not found (set {_env_name(tool)} to its path)"
        )
    argv = [exe, *args]
    shown = _redacted([tool, *args], secrets)
    log.debug("running %s", " ".join(shown))
    data = input.encode() if isinstance(input, str) else input
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run(
            argv,
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            env=full_env,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(shown, -1, f"timed out after {timeout} s") from exc
    except OSError as exc:
        raise CommandError(shown, -1, str(exc)) from exc
    stdout = proc.stdout.decode(errors="replace")
    stderr = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise CommandError(shown, proc.returncode, _redacted([stderr], secrets)[0])
    return Completed(shown, proc.returncode, stdout, stderr, proc.stdout)
