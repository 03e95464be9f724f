"""Hyper-V: the config from the host's key-value pairs (KVP), as Ignition reads them.

The host sets KVP items on the VM (``Msvm_KvpExchangeDataItem``, pool 0 — the
"external" pool); Hyper-V's KVP daemon (``hv_kvp_daemon``, from hyperv-daemons
or linux-cloud-tools) writes them to ``/var/lib/hyperv/.kvp_pool_0``: records
of a 512-byte key and a 2048-byte value, each NUL-padded UTF-8. Keys, first
found wins:

- ``provision.config`` — ours;
- ``ignition.config`` — Ignition's, the whole config;
- ``ignition.config.0``, ``ignition.config.1``, … — Ignition's split form for
  configs longer than one value (2048 bytes), joined in order.

The daemon must run before provision does (in the initramfs: ship it with
the image's initramfs and start it early); we wait for the pool file up to
the fetch limit. Ignition reads the KVP device itself instead of the pool
file; that is not done here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.payload import decode_payload

POOL = "/var/lib/hyperv/.kvp_pool_0"
KEY_SIZE = 512
VALUE_SIZE = 2048
RECORD_SIZE = KEY_SIZE + VALUE_SIZE
SINGLE_KEYS = ("provision.config", "ignition.config")
SPLIT_PREFIX = "ignition.config."
POLL_INTERVAL = 0.2


def read_pool(path: Path) -> dict[str, str]:
    """key -> value for every record of a KVP pool file (later records win)."""
    from provision.platforms.localread import read_platform_file

    data = read_platform_file(path, "hyperv")
    if data is None:
        raise FetchError(f"hyperv: {path} does not exist")
    if len(data) % RECORD_SIZE:
        raise FetchError(f"hyperv: {path} is {len(data)} bytes, not whole {RECORD_SIZE}-byte records")
    return dict(_records(data))


def _records(data: bytes) -> Iterator[tuple[str, str]]:
    for offset in range(0, len(data), RECORD_SIZE):
        key = data[offset:offset + KEY_SIZE].split(b"\0", 1)[0].decode("utf-8", "replace")
        value = data[offset + KEY_SIZE:offset + RECORD_SIZE].split(b"\0", 1)[0]
        if key:
            yield key, value.decode("utf-8", "replace")


def config_from_pairs(pairs: dict[str, str]) -> tuple[str, str] | None:
    """(key it came from, config text), or None if no key holds a config."""
    for key in SINGLE_KEYS:
        if pairs.get(key):
            return key, pairs[key]
    parts: list[str] = []
    while (part := pairs.get(f"{SPLIT_PREFIX}{len(parts)}")) is not None:
        parts.append(part)
    if parts:
        return f"{SPLIT_PREFIX}0..{len(parts) - 1}", "".join(parts)
    return None


def _wait_for_pool(ctx: Context) -> Path | None:
    path = ctx.settings.host_path(POOL)
    limit = ctx.settings.fetch_timeout
    deadline = None if limit is None else time.monotonic() + limit
    while not path.exists():
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(POLL_INTERVAL)
    return path


def fetch(ctx: Context) -> Result:
    path = _wait_for_pool(ctx)
    if path is None:
        raise FetchError(f"hyperv: no KVP pool {POOL} within {ctx.settings.fetch_wait_text}; "
                         "hv_kvp_daemon must run in the initramfs before provision")
    try:
        pairs = read_pool(path)
    except OSError as exc:
        raise FetchError(f"hyperv: cannot read {POOL}: {exc.strerror}") from None
    found = config_from_pairs(pairs)
    if found is None:
        return NoConfig(f"hyperv: no {' / '.join(SINGLE_KEYS)} / {SPLIT_PREFIX}N key in {POOL}")
    key, text = found
    origin = f"hyperv KVP {key}"
    return Found(decode_payload(text.encode(), None, origin), origin)
