"""NoCloud (cloud-init's): user-data with meta-data, vendor-data and network-config.

Where the seed is, first found wins:

1. a filesystem labelled ``cidata``/``CIDATA`` (iso9660 or vfat);
2. the seed named by ``ds=nocloud;s=SEED`` (or ``nocloud-net``, or
   ``seedfrom=``) on the kernel command line: ``file:///dir/`` (a directory
   in the initramfs), ``http(s)://host/dir/``. As in cloud-init the file
   names are appended to SEED (a ``%s`` in SEED is replaced by them), so
   SEED normally ends in ``/``; we add the ``/`` when it is missing.

``user-data`` is the config; a filesystem without it means no config, a
seed URL without it (404) is an error, since the command line named it.
``meta-data``, ``vendor-data`` and ``network-config`` are optional and kept
raw in the fetch result (:attr:`Found.extras`, written to the run
directory) for the stages that use them; ``i=`` (instance-id) and ``h=``
(local-hostname) on the command line override meta-data's keys, as in
cloud-init.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NeedNetwork, NoConfig, Result
from provision.platforms.detect import CIDATA_LABELS
from provision.platforms.localread import read_platform_file
from provision.platforms.payload import decode_payload
from provision.platforms.systree import find_labelled_device
from provision.platforms.urls import fetch_config_url, scheme_of

USER_DATA = "user-data"
EXTRAS = ("meta-data", "vendor-data", "network-config")
MAX_SEED_FILE = 16 << 20


def seed_url(seed: str, name: str) -> str:
    """The URL of ``name`` in the seed ``seed`` (cloud-init's rules, plus a forgiven '/')."""
    if "%s" in seed:
        return seed.replace("%s", name)
    if seed.endswith("/" + USER_DATA):  # an older spelling: the user-data URL itself
        seed = seed[: -len(USER_DATA)]
    return seed.rstrip("/") + "/" + name


def seed_user_data_url(seed: str) -> str:
    return seed_url(seed, USER_DATA)


def _with_kernel_meta_data(ctx: Context, extras: dict[str, bytes]) -> dict[str, bytes]:
    """meta-data with the command line's instance-id / local-hostname laid over it."""
    overrides = {k: v for k, v in ctx.settings.kernel.nocloud
                 if k in ("instance-id", "local-hostname")}
    if not overrides:
        return extras
    import yaml

    try:
        current = yaml.safe_load(extras.get("meta-data", b"") or b"") or {}
    except yaml.YAMLError:
        raise FetchError("nocloud: meta-data is not YAML") from None
    if not isinstance(current, dict):
        raise FetchError("nocloud: meta-data is not a YAML mapping")
    current.update(overrides)
    return {**extras, "meta-data": yaml.safe_dump(current, sort_keys=True).encode()}


def _found(ctx: Context, user_data: bytes, origin: str, extras: Mapping[str, bytes | None]) -> Found:
    kept = {name: data for name, data in extras.items() if data is not None}
    return Found(decode_payload(user_data, None, origin), origin,
                 _with_kernel_meta_data(ctx, kept))


def _from_cidata(ctx: Context) -> Result | None:
    from provision.platforms.media import read_files_from_filesystem

    hit = find_labelled_device(ctx.settings, CIDATA_LABELS)
    if hit is None:
        return None
    label, device = hit
    files = read_files_from_filesystem(device, [USER_DATA, *EXTRAS])
    origin = f"cidata {device} (label {label})"
    user_data = files.pop(USER_DATA)
    if user_data is None:
        return NoConfig(f"{origin} has no {USER_DATA}")
    if not user_data.strip():
        return NoConfig(f"{origin}: {USER_DATA} is empty")
    return _found(ctx, user_data, f"{origin} {USER_DATA}", files)


def _from_directory(ctx: Context, seed: str) -> Result:
    directory = ctx.settings.host_path(seed[len("file://"):] if seed.startswith("file://") else seed)
    files: dict[str, bytes | None] = {}
    for name in (USER_DATA, *EXTRAS):
        path = Path(seed_url(str(directory), name))
        files[name] = read_platform_file(path, "nocloud seed", limit=MAX_SEED_FILE)
    user_data = files.pop(USER_DATA)
    if user_data is None:
        raise FetchError(f"nocloud seed {directory} has no {USER_DATA}")
    return _found(ctx, user_data, f"nocloud seed {seed_url(str(directory), USER_DATA)}", files)


def _from_url(ctx: Context, seed: str) -> Result:
    result = fetch_config_url(ctx, seed_url(seed, USER_DATA), "nocloud seed")
    if not isinstance(result, Found):
        return result
    files: dict[str, bytes | None] = {}
    if scheme_of(seed) in ("http", "https"):
        for name in EXTRAS:
            reply = ctx.client.get(seed_url(seed, name), limit=MAX_SEED_FILE)
            files[name] = reply.body if reply.found else None
    return _found(ctx, result.data, result.source, files)


def fetch(ctx: Context) -> Result:
    local = _from_cidata(ctx)
    if isinstance(local, Found):
        return local
    seed = ctx.settings.kernel.nocloud_seed
    if seed:
        scheme = scheme_of(seed)
        if scheme in ("file", "") and (seed.startswith("file://") or seed.startswith("/")):
            return _from_directory(ctx, seed)
        if ctx.offline and scheme != "data":
            return NeedNetwork(f"nocloud: the seed {scheme}:// needs the network")
        return _from_url(ctx, seed)
    return local or NoConfig("nocloud: no cidata filesystem and no ds=nocloud;s= seed")
