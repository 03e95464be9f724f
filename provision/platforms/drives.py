"""Platforms whose config comes on a labelled drive, described as data.

Each entry lists the drives to look for (labels, the user-data file, raw
extras to keep) in order of preference; the first that appears wins. They
are local, so the offline pass answers, waiting for a drive up to the fetch
limit (``provision.fetch.wait=``) as Ignition does. What happens when none
appears is the platform's: Ignition gives up quietly on Proxmox VE and IBM
Cloud (no config) and waits for good on the others (here: an error at the
limit).

- ``kubevirt``: ``cidata`` ``/user-data`` or ``config-2``
  ``/openstack/latest/user_data`` (KubeVirt attaches either);
- ``proxmoxve``: ``cidata``; Proxmox always writes a generated
  ``#cloud-config`` as user-data, so, like Ignition, a ``vendor-data`` that
  is not cloud-config (an Ignition or provision config given with
  ``cicustom``) is the config, else ``user-data`` is;
- ``nutanix``, ``powervs``: ``config-2`` ``/openstack/latest/user_data``;
- ``ibmcloud``: ``cidata`` ``/user-data``;
- ``rbxcloud`` (cloud-init's Rootbox): ``CLOUDMD``/``cloudmd`` ``user.data``
  with ``cloud.json`` kept.

Extras keep cloud-init's names (``meta-data``, ``vendor-data``,
``network-config``) for cloud-init formats, the platform's own file names
(``network_data.json``, ``cloud.json``) for its own formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.configdrive import wait_for_label
from provision.platforms.payload import decode_payload

CIDATA = ("cidata", "CIDATA")
CONFIG_2 = ("config-2", "CONFIG-2")
CLOUD_CONFIG_HEADER = b"#cloud-config"


@dataclass(frozen=True)
class Drive:
    labels: tuple[str, ...]
    user_data: str
    extras: dict[str, str] = field(default_factory=dict)  # kept name -> path on the drive
    # Proxmox: a vendor-data that is not cloud-config is the config (see the module doc).
    vendor_config: str | None = None


@dataclass(frozen=True)
class DrivePlatform:
    name: str
    drives: tuple[Drive, ...]
    required: bool  # no drive within the limit: an error (else: no config)


_CIDATA_EXTRAS = {"meta-data": "meta-data", "vendor-data": "vendor-data",
                  "network-config": "network-config"}
# OpenStack's formats, kept under their own names (not cloud-init's meta-data/network-config).
_CONFIG_2_EXTRAS = {"meta_data.json": "openstack/latest/meta_data.json",
                    "network_data.json": "openstack/latest/network_data.json",
                    "vendor_data.json": "openstack/latest/vendor_data.json"}

PLATFORMS = {
    p.name: p for p in (
        DrivePlatform("kubevirt", (Drive(CIDATA, "user-data", _CIDATA_EXTRAS),
                                   Drive(CONFIG_2, "openstack/latest/user_data",
                                         _CONFIG_2_EXTRAS)), required=True),
        DrivePlatform("proxmoxve", (Drive(CIDATA, "user-data", _CIDATA_EXTRAS,
                                          vendor_config="vendor-data"),), required=False),
        DrivePlatform("nutanix", (Drive(CONFIG_2, "openstack/latest/user_data",
                                        _CONFIG_2_EXTRAS),), required=True),
        DrivePlatform("powervs", (Drive(CONFIG_2, "openstack/latest/user_data",
                                        _CONFIG_2_EXTRAS),), required=True),
        DrivePlatform("ibmcloud", (Drive(CIDATA, "user-data", _CIDATA_EXTRAS),), required=False),
        DrivePlatform("rbxcloud", (Drive(("CLOUDMD", "cloudmd"), "user.data",
                                         {"cloud.json": "cloud.json"}),), required=False),
    )
}


def _read(ctx: Context, platform: DrivePlatform, drive: Drive, label: str, device: str) -> Result:
    from provision.platforms.media import read_files_from_filesystem

    paths = [drive.user_data, *drive.extras.values()]
    if drive.vendor_config and drive.vendor_config not in paths:
        paths.append(drive.vendor_config)
    files = read_files_from_filesystem(device, paths)
    origin = f"{platform.name}: {device} (label {label})"
    extras = {name: data for name, path in drive.extras.items()
              if (data := files.get(path)) is not None}
    if drive.vendor_config:
        vendor = files.get(drive.vendor_config)
        if vendor and vendor.strip() and not vendor.lstrip().startswith(CLOUD_CONFIG_HEADER):
            where = f"{origin} {drive.vendor_config}"
            return Found(decode_payload(vendor, None, where), where, extras)
    data = files.get(drive.user_data)
    if data is None or not data.strip():
        return NoConfig(f"{origin} has no {drive.user_data}" if data is None
                        else f"{origin}: {drive.user_data} is empty")
    where = f"{origin} {drive.user_data}"
    return Found(decode_payload(data, None, where), where, extras)


def fetch_platform(platform: DrivePlatform, ctx: Context) -> Result:
    labels = tuple(label for drive in platform.drives for label in drive.labels)
    hit = wait_for_label(ctx.settings, labels, ctx.settings.fetch_timeout)
    if hit is None:
        wanted = " or ".join(f"'{label}'" for label in labels)
        if platform.required:
            raise FetchError(f"{platform.name}: no drive labelled {wanted} appeared within "
                             f"{ctx.settings.fetch_wait_text}")
        return NoConfig(f"{platform.name}: no drive labelled {wanted} appeared within "
                        f"{ctx.settings.fetch_wait_text}")
    label, device = hit
    drive = next(d for d in platform.drives if label in d.labels)
    return _read(ctx, platform, drive, label, device)


def drive_platform(name: str) -> DrivePlatformFetch:
    return DrivePlatformFetch(PLATFORMS[name])


@dataclass(frozen=True)
class DrivePlatformFetch:
    platform: DrivePlatform

    def __call__(self, ctx: Context) -> Result:
        return fetch_platform(self.platform, ctx)
