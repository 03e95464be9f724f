"""The fetched and merged config, written once to a private cache file and read back.

Every stage reads the same bytes: the fetch stage writes the final config
here (mode 0600 — it may hold password hashes and credentials), later stages
and re-runs read it instead of fetching again. The write is atomic (temporary
file, fsync, link into place, fsync of the directory) and refuses to replace
a cache holding different bytes unless asked to.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from provision.errors import FetchError

DEFAULT_CACHE_PATH = Path("/run/provision/config.json")


def config_bytes(spec: dict[str, Any]) -> bytes:
    """The canonical serialisation of a final spec dict (stable key order)."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def write_cache(data: bytes, path: str | os.PathLike[str] = DEFAULT_CACHE_PATH, *, replace: bool = False) -> Path:
    """Write ``data`` to the cache at ``path`` (mode 0600) atomically; returns the path.

    If a cache already exists with other bytes, FetchError — unless ``replace``.
    Writing identical bytes again is a no-op.
    """
    target = Path(path)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FetchError(f"cannot create the config cache in {target.parent}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic "create only if absent"
            except FileExistsError:
                if read_cache(target) != data:
                    raise FetchError(
                        f"the config cache {target} already holds a different config; "
                        "remove it to fetch again"
                    ) from None
    except OSError as exc:
        raise FetchError(f"cannot write the config cache {target}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(target.parent)
    return target


def write_config_cache(spec: dict[str, Any], path: str | os.PathLike[str] = DEFAULT_CACHE_PATH) -> Path:
    """Serialise a final spec dict with :func:`config_bytes` and :func:`write_cache` it."""
    return write_cache(config_bytes(spec), path)


def read_cache(path: str | os.PathLike[str] = DEFAULT_CACHE_PATH) -> bytes | None:
    """The cached bytes, or None when there is no cache yet."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FetchError(f"cannot read the config cache {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
