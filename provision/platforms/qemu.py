"""QEMU: the config passed with ``-fw_cfg name=opt/org.provision/config,file=CONFIG``
(or Ignition's ``opt/com.coreos/config``, so existing VM definitions work; ours wins).

The guest sees it as /sys/firmware/qemu_fw_cfg/by_name/opt/org.provision/config/
{size,raw} once the ``qemu_fw_cfg`` module is loaded (we load it if the
directory is missing). Each read of ``raw`` costs time proportional to its
offset, so the whole entry is read in as few large reads as possible. No entry
means no config.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from provision.errors import CommandError, FetchError, ProvisionError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.detect import FW_CFG_NAMES, FW_CFG_ROOT
from provision.platforms.payload import decode_payload
from provision.run import run

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 64 * 1024 * 1024


def _load_module(ctx: Context) -> None:
    if ctx.settings.host_path(FW_CFG_ROOT).is_dir():
        return
    try:
        run("modprobe", ["qemu_fw_cfg"], timeout=30)
    except (CommandError, ProvisionError) as exc:
        log.warning("qemu: cannot load qemu_fw_cfg: %s", exc)


def read_raw(raw_path: str, size: int, name: str) -> bytes:
    fd = os.open(raw_path, os.O_RDONLY)
    try:
        parts = []
        remaining = size
        while remaining > 0:
            chunk = os.read(fd, remaining)  # one read for the lot, unless the kernel splits it
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(parts)
    if len(data) != size:
        raise FetchError(f"qemu: fw_cfg {name} is {size} bytes but {len(data)} were read")
    return data


def fetch(ctx: Context) -> Result:
    _load_module(ctx)
    for name in FW_CFG_NAMES:
        entry = ctx.settings.host_path(f"{FW_CFG_ROOT}/by_name/{name}")
        if (entry / "size").exists():
            return _read_entry(entry, name)
    return NoConfig(f"qemu: no fw_cfg entry {' or '.join(FW_CFG_NAMES)}")


def _read_entry(entry: Path, name: str) -> Result:
    try:
        size_text = (entry / "size").read_text().strip()
    except OSError as exc:
        raise FetchError(f"qemu: cannot read {entry}/size: {exc.strerror}") from None
    try:
        size = int(size_text)
    except ValueError:
        raise FetchError(f"qemu: {entry}/size holds {size_text!r}, not a number") from None
    if size > MAX_CONFIG_BYTES:
        raise FetchError(f"qemu: fw_cfg {name} is {size} bytes; the limit is "
                         f"{MAX_CONFIG_BYTES}")
    if size == 0:
        return NoConfig(f"qemu: fw_cfg {name} is empty")
    try:
        data = read_raw(str(entry / "raw"), size, name)
    except OSError as exc:
        raise FetchError(f"qemu: cannot read {entry}/raw: {exc.strerror}") from None
    origin = f"qemu fw_cfg {name}"
    return Found(decode_payload(data, None, origin), origin)
