"""Locking the account databases the way shadow-utils does.

Two locks, both honoured by useradd, passwd, vipw and friends:
- ``/etc/.pwd.lock`` held with an fcntl write lock (lckpwdf(3); waits up to
  15 seconds);
- ``<file>.lock`` per database, made by hard-linking a file holding our PID
  (atomic on every filesystem). A lock left by a process that no longer
  exists is stale and removed, so a run killed while holding it does not
  block the rerun.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from provision.errors import ProvisionError

LCKPWDF_TIMEOUT = 15.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead too; it only waits to be reaped
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            return stat_file.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _lock_file(path: Path) -> Path:
    lock = path.with_name(path.name + ".lock")
    scratch = path.with_name(f"{path.name}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, f"{os.getpid()}".encode())
    finally:
        os.close(fd)
    try:
        for _attempt in range(2):
            try:
                os.link(scratch, lock)
                return lock
            except FileExistsError:
                try:
                    holder = int(lock.read_text().strip() or "0")
                except (OSError, ValueError):
                    holder = 0
                if holder and holder != os.getpid() and _pid_alive(holder):
                    raise ProvisionError(
                        f"{path} is locked by process {holder} ({lock})"
                    ) from None
                lock.unlink(missing_ok=True)  # stale: its owner is gone
        raise ProvisionError(f"cannot lock {path}: {lock} keeps reappearing")
    finally:
        scratch.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(etc: Path, names: Iterable[str]) -> Iterator[None]:
    """Hold lckpwdf and the per-file locks of ``etc``/``names`` (``etc`` resolved in the root)."""
    fd = os.open(etc / ".pwd.lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    held: list[Path] = []
    try:
        deadline = time.monotonic() + LCKPWDF_TIMEOUT
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                    raise ProvisionError(f"cannot lock {etc / '.pwd.lock'}: {exc.strerror}") from None
                time.sleep(0.1)
        for name in names:
            held.append(_lock_file(etc / name))
        yield
    finally:
        for lock in reversed(held):
            lock.unlink(missing_ok=True)
        os.close(fd)  # closing drops the fcntl lock


def remove_stale_scratch(etc: Path, names: Iterable[str]) -> list[str]:
    """Remove what a killed shadow-utils tool leaves next to a database (call while locked).

    ``<name>.<pid>`` (a lock being taken) and ``<name>+`` (a new copy being
    written) of a process that is gone; the database itself is untouched.
    """
    removed = []
    for name in names:
        for entry in etc.glob(f"{name}.*"):
            suffix = entry.name[len(name) + 1:]
            if suffix.isdigit() and not _pid_alive(int(suffix)) and not entry.is_symlink():
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        plus = etc / f"{name}+"
        if plus.is_file() and not plus.is_symlink():
            plus.unlink()
            removed.append(plus.name)
    return removed
