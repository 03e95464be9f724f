"""The image's own settings: what provision does without being asked, on this image.

Read from the target root (the image being provisioned), so the image
builder, not the initramfs, decides: every ``*.json`` in
``/usr/lib/provision/image.d/`` in name order (the distribution's), then
``/etc/provision/image.json`` (the image builder's); later files override
earlier ones key by key, ``default_user`` as a whole. docs/embedding.md
describes the keys. No file: no default user, no growing, the platform's
hostname used when the config names none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError

IMAGE_DIR = "usr/lib/provision/image.d"
IMAGE_FILE = "etc/provision/image.json"

_USER_KEYS = {"name", "gecos", "groups", "shell", "sudo", "lock_passwd", "homedir"}
_KEYS = {"default_user", "platform_ssh_keys", "hostname_from_metadata", "grow_root"}


@dataclass(frozen=True)
class DefaultUser:
    """cloud-init's ``default_user`` (system_info), the same keys."""

    name: str
    gecos: str | None = None
    groups: tuple[str, ...] = ()
    shell: str | None = None
    homedir: str | None = None
    sudo: tuple[str, ...] = ()
    lock_passwd: bool = True


@dataclass(frozen=True)
class ImageSettings:
    default_user: DefaultUser | None = None
    # Put the platform's SSH keys on the default user (cloud-init: allow_public_ssh_keys).
    platform_ssh_keys: bool = True
    # Take the hostname from metadata when the config sets none.
    hostname_from_metadata: bool = True
    # Grow the root partition and filesystem to fill the disk (cloud-init's growpart).
    grow_root: bool = False
    sources: tuple[str, ...] = ()


def _files(root: Path) -> list[Path]:
    directory = root / IMAGE_DIR
    found = sorted(directory.glob("*.json")) if directory.is_dir() else []
    single = root / IMAGE_FILE
    return [*found, single] if single.is_file() else found


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProvisionError(f"{where}: a list of names, or one comma-separated string")
    return tuple(value)


def _default_user(value: Any, where: str) -> DefaultUser | None:
    if value is None or value is False:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise ProvisionError(f"{where}: default_user needs a name")
    unknown = set(value) - _USER_KEYS
    if unknown:
        raise ProvisionError(f"{where}: default_user: unknown keys {', '.join(sorted(unknown))}")
    sudo = value.get("sudo") or ()
    sudo = (sudo,) if isinstance(sudo, str) else sudo
    if not isinstance(sudo, (list, tuple)) or not all(isinstance(r, str) for r in sudo):
        raise ProvisionError(f"{where}: default_user.sudo: a sudoers rule or a list of them")
    lock = value.get("lock_passwd", True)
    if not isinstance(lock, bool):
        raise ProvisionError(f"{where}: default_user.lock_passwd: true or false")
    return DefaultUser(
        name=value["name"], gecos=value.get("gecos"), shell=value.get("shell"),
        homedir=value.get("homedir"),
        groups=_names(value.get("groups") or [], f"{where}: default_user.groups"),
        sudo=tuple(sudo), lock_passwd=lock,
    )


def read_image_settings(root: Path) -> ImageSettings:
    """The merged settings of the image at ``root``; a malformed file is a clear error."""
    merged: dict[str, Any] = {}
    sources = []
    for path in _files(root):
        shown = "/" + str(path.relative_to(root))
        try:
            value = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ProvisionError(f"image settings {shown}: {exc}") from None
        if not isinstance(value, dict):
            raise ProvisionError(f"image settings {shown}: a JSON object")
        unknown = set(value) - _KEYS
        if unknown:
            raise ProvisionError(f"image settings {shown}: unknown keys {', '.join(sorted(unknown))}")
        for key in value:
            if key != "default_user" and not isinstance(value[key], bool):
                raise ProvisionError(f"image settings {shown}: {key} must be true or false")
        _default_user(value.get("default_user"), f"image settings {shown}")  # checked per file
        merged.update(value)
        sources.append(shown)
    return ImageSettings(
        default_user=_default_user(merged.get("default_user"), "image settings"),
        platform_ssh_keys=merged.get("platform_ssh_keys", True),
        hostname_from_metadata=merged.get("hostname_from_metadata", True),
        grow_root=merged.get("grow_root", False),
        sources=tuple(sources),
    )
