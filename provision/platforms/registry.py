"""Every platform by name. Plain HTTP clouds come from datasources/*.json; the
platforms below need code of their own (local media, tools, races)."""

from __future__ import annotations

import importlib
from typing import cast

from provision.errors import UsageError
from provision.platforms.base import Platform

# name -> module with fetch(ctx); listed modules win over a JSON entry of the same name.
LOCAL_PLATFORMS: dict[str, str] = {
    "applehv": "provision.platforms.applehv",
    "azure": "provision.platforms.azure",
    "azurestack": "provision.platforms.azurestack",
    "bigstep": "provision.platforms.bigstep",
    "cloudsigma": "provision.platforms.cloudsigma",
    "cloudstack": "provision.platforms.cloudstack",
    "file": "provision.platforms.localfile",
    "hyperv": "provision.platforms.hyperv",
    "lxd": "provision.platforms.lxd",
    "maas": "provision.platforms.maas",
    "metal": "provision.platforms.metal",
    "nocloud": "provision.platforms.nocloud",
    "opennebula": "provision.platforms.opennebula",
    "openstack": "provision.platforms.openstack",
    "qemu": "provision.platforms.qemu",
    "smartos": "provision.platforms.smartos",
    "virtualbox": "provision.platforms.virtualbox",
    "vmware": "provision.platforms.vmware",
    "zvm": "provision.platforms.zvm",
}


def platform_names() -> list[str]:
    from provision.platforms.drives import PLATFORMS as DRIVE_PLATFORMS
    from provision.platforms.http_cloud import load_entries

    return sorted({*LOCAL_PLATFORMS, *DRIVE_PLATFORMS, *load_entries()})


def get_platform(name: str) -> Platform:
    from provision.platforms.drives import PLATFORMS as DRIVE_PLATFORMS

    if name in LOCAL_PLATFORMS:
        return cast(Platform, importlib.import_module(LOCAL_PLATFORMS[name]).fetch)
    if name in DRIVE_PLATFORMS:
        from provision.platforms.drives import drive_platform

        return drive_platform(name)
    from provision.platforms.http_cloud import http_platform, load_entries

    if name in load_entries():
        return http_platform(name)
    raise UsageError(f"unknown platform {name!r}; known: {', '.join(platform_names())}")
