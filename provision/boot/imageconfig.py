"""What the fetch stages add around the fetched config, for images built for Ignition.

- the image's base configs (``base.d``, ``base.platform.d/<platform>``, see
  :mod:`provision.platforms.system`) merged under the fetched config before
  it is cached, and their remote sources counted by the offline pass;
- the platform's object-store credentials activated for the stage's process
  (:mod:`provision.fetch.cloudauth`), for referenced configs and file contents.

Kept apart from :mod:`provision.boot.phases` so the phases stay a list of steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from provision.errors import ConfigError
from provision.platforms.settings import Settings


def with_base_configs(settings: Settings, platform: str, spec: dict[str, Any],
                      report: Callable[[str], None]) -> dict[str, Any]:
    """``spec`` merged over the image's base configs, validated again; ``spec`` if none."""
    from provision.config.pipeline import parse_config
    from provision.platforms.system import base_config, under_base

    base, files = base_config(settings, platform)
    if base is None:
        return spec
    merged = parse_config(json.dumps(under_base(spec, base)).encode(),
                          "config merged over base configs")
    if not merged.ok or merged.spec is None:
        raise ConfigError([d for d in merged.diagnostics if d.is_error] or merged.diagnostics)
    report(f"merged over {len(files)} base configs from the image")
    return merged.spec


def base_remote_sources(settings: Settings, platform: str) -> list[str]:
    """Sources in the image's base configs that need the network."""
    from provision.boot.remote import remote_sources
    from provision.platforms.system import base_config

    return remote_sources(base_config(settings, platform)[0] or {})


def use_platform_credentials(settings: Settings, platform: str) -> None:
    """s3/gs/Azure blob sources in this process use the instance's credentials, if any."""
    from provision.fetch import cloudauth

    cloudauth.activate(platform, settings.metadata_url)
