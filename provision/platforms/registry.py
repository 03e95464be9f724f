"""Every platform by name. Plain HTTP clouds come from datasources/*.json; the
platforms below need code of their own (local media, tools, races)."""

from __future__ import annotations

import importlib
from typing import cast

from provision.errors import UsageError
from provision.platforms.base import Platform

# name -> module with fetch(ctx); listed modules win over a JSON entry of the same name.
LOCAL_PLATFORMS: dict[str, str] = {
    "azure": "provision.platforms.azure",
    "file": "provision.platforms.localfile",
    "metal": "provision.platforms.metal",
    "nocloud": "provision.platforms.nocloud",
    "openstack": "provision.platforms.openstack",
    "qemu": "provision.platforms.qemu",
    "vmware": "provision.platforms.vmware",
}


def platform_names() -> list[str]:
    from provision.platforms.http_cloud import load_entries

    return sorted({*LOCAL_PLATFORMS, *load_entries()})


def get_platform(name: str) -> Platform:
    if name in LOCAL_PLATFORMS:
        return cast(Platform, importlib.import_module(LOCAL_PLATFORMS[name]).fetch)
    from provision.platforms.http_cloud import http_platform, load_entries

    if name in load_entries():
        return http_platform(name)
    raise UsageError(f"unknown platform {name!r}; known: {', '.join(platform_names())}")
