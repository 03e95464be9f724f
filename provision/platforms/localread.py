"""Reading files a platform hands over: seeds, config drives, the image's own configs.

Every such file may be hostile or broken (a config drive is whatever the
hypervisor attached): it is read only if it is a regular file, never past a
size cap, and on removable media never through a symbolic link, so a FIFO
cannot hang the boot, ``/dev/zero`` cannot exhaust memory and a link cannot
pull in a file of the initramfs.
"""

from __future__ import annotations

import os
from pathlib import Path

from provision.errors import FetchError

# As large as any config may be (provision.source.loader.MAX_CONFIG_BYTES).
MAX_PLATFORM_FILE = 16 << 20


def read_platform_file(
    path: str | os.PathLike[str], what: str, *, limit: int = MAX_PLATFORM_FILE, follow_links: bool = True,
) -> bytes | None:
    """The bytes of ``path``; None when it does not exist. ``what`` names it in errors."""
    from provision.source.loader import read_regular_file

    name = os.fspath(path)
    if not follow_links and Path(name).is_symlink():
        raise FetchError(f"{what}: {name} is a symbolic link; refusing to follow it")
    try:
        data = read_regular_file(name, limit + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise FetchError(f"{what}: cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FetchError(f"{what}: {name} is larger than {limit} bytes")
    return data
