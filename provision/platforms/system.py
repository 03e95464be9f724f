"""Configs the image itself carries: base configs and a built-in user config.

The same conventions as Ignition, so an image built for Ignition keeps
working, plus provision's own directories. System config directories, highest
priority first (runtime, local, vendor), each looked at for Ignition's and
for provision's files:

    /run/ignition     /etc/ignition     /usr/lib/ignition
    /run/provision    /etc/provision    /usr/lib/provision

- **Base configs**: every file in ``base.d/`` and then in
  ``base.platform.d/<platform>/`` is merged, in file-name order, *under* the
  user's config (the user's config wins where both set something). Across the
  three levels a file name is taken from the highest-priority directory that
  has it, as Ignition does, so ``/etc/ignition/base.d/10-x.ign`` overrides the
  vendor's file of the same name. Ignition's directories are merged first,
  provision's over them. ``<platform>`` is the platform's name in each
  convention (``gcp`` for Ignition, ``gce`` for provision).
- **User config**: ``user.ign`` (Ignition) or ``user.json``/``user.yaml``
  (provision) in the first directory that has one is the config when the
  kernel command line names none, before the platform is asked.

Files are read below the settings' sys root (``--sys-root``), so tests point
it at a fake tree. A base config may be any format provision reads; it must
be valid on its own and cannot reference other configs (Ignition does not
fetch them either).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, FetchError
from provision.platforms.base import Found
from provision.platforms.settings import Settings

log = logging.getLogger(__name__)

LEVELS = ("/run", "/etc", "/usr/lib")
IGNITION_USER_FILES = ("user.ign",)
PROVISION_USER_FILES = ("user.json", "user.yaml", "user.yml")
MAX_SYSTEM_CONFIG_BYTES = 16 << 20

# Our platform name -> Ignition's, where they differ (for base.platform.d).
IGNITION_PLATFORM_IDS = {"gce": "gcp", "oracle": "oraclecloud", "alibaba": "aliyun"}


def _ignition_platform_id(platform: str, settings: Settings) -> str:
    if settings.kernel.ignition_platform:
        return settings.kernel.ignition_platform
    return IGNITION_PLATFORM_IDS.get(platform, platform)


def _dirs(settings: Settings, tool: str) -> list[Path]:
    return [settings.host_path(f"{level}/{tool}") for level in LEVELS]


def _read(path: Path) -> bytes:
    from provision.platforms.localread import read_platform_file

    data = read_platform_file(path, "system config", limit=MAX_SYSTEM_CONFIG_BYTES)
    if data is None:
        raise FetchError(f"cannot read {path}: it disappeared")
    return data


def user_config(settings: Settings) -> Found | None:
    """The image's built-in user config (user.ign / user.json / user.yaml), first found wins."""
    for level in LEVELS:
        for tool, names in (("provision", PROVISION_USER_FILES), ("ignition", IGNITION_USER_FILES)):
            for name in names:
                path = settings.host_path(f"{level}/{tool}/{name}")
                if path.is_file():
                    log.info("user config from the image: %s", path)
                    return Found(_read(path), f"system config {level}/{tool}/{name}")
    return None


def _fragments(dirs: list[Path]) -> Iterator[Path]:
    """The files of one base directory across the levels, highest level claiming a name."""
    chosen: dict[str, Path] = {}
    for directory in dirs:
        try:
            entries = sorted(directory.iterdir())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise FetchError(f"cannot list {directory}: {exc.strerror}") from None
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            chosen.setdefault(entry.name, entry)
    for name in sorted(chosen):
        yield chosen[name]


def base_config_files(settings: Settings, platform: str) -> list[Path]:
    """Every base config file that applies, in merge order (earliest is lowest)."""
    files: list[Path] = []
    for tool, platform_name in (("ignition", _ignition_platform_id(platform, settings)),
                                ("provision", platform)):
        files += _fragments([d / "base.d" for d in _dirs(settings, tool)])
        if platform_name and "/" not in platform_name and not platform_name.startswith("."):
            files += _fragments([d / "base.platform.d" / platform_name
                                 for d in _dirs(settings, tool)])
    return files


def _parse_base(path: Path) -> dict[str, Any]:
    from provision.config.pipeline import parse_config

    parsed = parse_config(_read(path), str(path))
    if not parsed.ok or parsed.spec is None:
        raise ConfigError([d for d in parsed.diagnostics if d.is_error] or parsed.diagnostics)
    meta = parsed.spec.get("provision")
    if isinstance(meta, dict) and meta.get("config"):
        raise FetchError(f"base config {path}: references other configs "
                         "(provision.config / ignition.config); base configs cannot")
    return parsed.spec


def base_config(settings: Settings, platform: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The merged base configs (None if there are none) and the files they came from."""
    from provision.config.merge import merge_specs

    merged: dict[str, Any] | None = None
    used: list[str] = []
    for path in base_config_files(settings, platform):
        spec = _parse_base(path)
        merged = spec if merged is None else merge_specs(merged, spec)
        used.append(str(path))
    return merged, used


def under_base(spec: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """``spec`` merged over ``base`` (the user's config wins), as Ignition does."""
    if base is None:
        return spec
    from provision.config.merge import merge_specs

    merged = merge_specs(base, spec)
    # The user's config decides the spec version the result is read as.
    if isinstance(spec.get("provision"), dict) and "version" in spec["provision"]:
        merged.setdefault("provision", {})["version"] = spec["provision"]["version"]
    return merged
