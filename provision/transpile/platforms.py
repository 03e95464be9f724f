"""User-data size limits of the platforms, and fitting a config into them.

Each platform caps the user data it passes to the machine. When the JSON is
too large, transpile tries gzip, which every provision datasource undoes by
its magic bytes (see provision.platforms.payload) — delivered as a binary
gzip file where the platform carries bytes, or as base64 text with the
platform's encoding key where it only carries text. What does not fit even
then gets a warning (an error under --strict) saying by how much.
"""

from __future__ import annotations

import base64
import gzip
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    name: str
    max_bytes: int
    measured: str  # "raw": the bytes as uploaded; "base64": after the API's base64 encoding
    gzip: str | None  # "binary", "base64" (text + encoding key), or None (no way to say "gzip")
    delivery: str  # how to pass the compressed output on, for the note


PLATFORMS: dict[str, Limit] = {
    "aws": Limit("aws", 16 * 1024, "raw", "binary",
                 "pass the file as binary user data (aws ec2 run-instances --user-data fileb://FILE)"),
    "gce": Limit("gce", 256 * 1024, "raw", "base64",
                 "set the metadata key user-data to the file and user-data-encoding to gzip+base64"),
    "openstack": Limit("openstack", 65535, "base64", "binary",
                       "pass the file as user data (openstack server create --user-data FILE)"),
    "vmware": Limit("vmware", 64 * 1024, "raw", "base64",
                    "set guestinfo.provision.config.data to the file and "
                    "guestinfo.provision.config.data.encoding to gzip+base64"),
    "azure": Limit("azure", 64 * 1024, "raw", "binary",
                   "pass the file as custom data (az vm create --custom-data FILE)"),
    "digitalocean": Limit("digitalocean", 64 * 1024, "raw", None, ""),
    "hetzner": Limit("hetzner", 32 * 1024, "raw", None, ""),
}


def measured_size(data: bytes, limit: Limit) -> int:
    if limit.measured == "base64":
        return 4 * ((len(data) + 2) // 3)
    return len(data)


def compressed(data: bytes, limit: Limit) -> bytes | None:
    """The gzip form of ``data`` as this platform takes it, or None where it cannot."""
    if limit.gzip is None:
        return None
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    return base64.b64encode(packed) + b"\n" if limit.gzip == "base64" else packed


@dataclass(frozen=True)
class Fit:
    output: bytes  # what -o writes
    compressed: bool
    size: int  # measured size of output
    over_by: int  # bytes over the limit (0: fits)


def fit(data: bytes, limit: Limit) -> Fit:
    """``data`` as is if it fits; else its gzip form if that fits; else ``data`` and by how much it is over."""
    size = measured_size(data, limit)
    if size <= limit.max_bytes:
        return Fit(data, False, size, 0)
    packed = compressed(data, limit)
    if packed is not None:
        packed_size = measured_size(packed, limit)
        if packed_size <= limit.max_bytes:
            return Fit(packed, True, packed_size, 0)
        return Fit(data, False, size, packed_size - limit.max_bytes)
    return Fit(data, False, size, size - limit.max_bytes)


def describe(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size} bytes ({size / 1024:.1f} KiB)"
