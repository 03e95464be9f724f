"""Does the running kernel offer a block-layer feature (now, or as a loadable module)?

Checked while planning, so a config needing RAID or LUKS on a kernel without
md or dm-crypt fails before any disk is written, not halfway through.
"""

from __future__ import annotations

import os
from pathlib import Path


def _module_known(name: str) -> bool:
    """``name`` (e.g. "dm-crypt") is a built-in or loadable module of this kernel."""
    base = Path("/lib/modules", os.uname().release)
    wanted = {f"{name}.ko", f"{name.replace('-', '_')}.ko"}
    for index in ("modules.builtin", "modules.dep"):
        try:
            text = (base / index).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            module = line.split(":", 1)[0].rsplit("/", 1)[-1]
            if module.split(".ko", 1)[0] + ".ko" in wanted:
                return True
    return False


def _proc_lists(path: str, word: str) -> bool:
    try:
        return word in Path(path).read_text()
    except OSError:
        return False


def has_device_mapper() -> bool:
    return _proc_lists("/proc/misc", "device-mapper") or _module_known("dm-mod")


def has_dm_crypt() -> bool:
    return has_device_mapper() and (
        _proc_lists("/proc/crypto", "xts") or _module_known("dm-crypt") or
        _proc_lists("/proc/misc", "device-mapper")
    )


def has_md() -> bool:
    return Path("/proc/mdstat").exists() or _module_known("md-mod")
