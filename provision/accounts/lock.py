"""Locking the account databases the way shadow-utils does.

Two locks, both honoured by useradd, passwd, vipw and friends:
- ``/etc/.pwd.lock`` held with an fcntl write lock (lckpwdf(3); waits up to
  15 seconds);
- ``<file>.lock`` per database, made by hard-linking a file holding our PID
  (atomic on every filesystem). A lock left by a process that no longer
  exists is stale and removed, so a run killed while holding it does not
  block the rerun.

Everything happens relative to the fd of the target's /etc (through
:class:`provision.target.tree.TargetTree`): a lock file that is a symlink,
a FIFO or a device node is refused with an error naming it, never followed
out of the root, never opened where the open would hang.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterable, Iterator

from provision.errors import ProvisionError
from provision.target.tree import TargetTree, kind_phrase, open_regular_at

LCKPWDF_TIMEOUT = 15.0
_PID_BYTES = 32  # a lock file holds a decimal pid; more is not a lock of ours


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


def _holder(dir_fd: int, lock: str, shown: str) -> int:
    """The pid written in an existing lock file (0 when unreadable); refuses non-files."""
    try:
        fd = open_regular_at(dir_fd, lock, shown)
    except FileNotFoundError:
        return 0
    try:
        text = os.read(fd, _PID_BYTES)
    finally:
        os.close(fd)
    try:
        return int(text.strip() or b"0")
    except ValueError:
        return 0


def _lock_file(dir_fd: int, etc: str, name: str) -> str:
    """Take ``<name>.lock`` in the directory ``dir_fd``; returns the lock's name."""
    lock, scratch = f"{name}.lock", f"{name}.{os.getpid()}"
    shown = f"{etc}/{lock}"
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(scratch, dir_fd=dir_fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProvisionError(f"{etc}/{scratch}: is {kind_phrase(st.st_mode)}, not a regular file")
        os.unlink(scratch, dir_fd=dir_fd)  # our pid's leftover: never write through it
    fd = open_regular_at(dir_fd, scratch, f"{etc}/{scratch}", flags=os.O_WRONLY, create_mode=0o600)
    try:
        os.write(fd, f"{os.getpid()}".encode())
    finally:
        os.close(fd)
    try:
        for _attempt in range(2):
            try:
                os.link(scratch, lock, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                return lock
            except FileExistsError:
                st = os.lstat(lock, dir_fd=dir_fd)
                if not stat.S_ISREG(st.st_mode):
                    raise ProvisionError(
                        f"cannot lock {etc}/{name}: {shown} is {kind_phrase(st.st_mode)}"
                    ) from None
                holder = _holder(dir_fd, lock, shown)
                if holder and holder != os.getpid() and _pid_alive(holder):
                    raise ProvisionError(
                        f"{etc}/{name} is locked by process {holder} ({shown})"
                    ) from None
                with contextlib.suppress(FileNotFoundError):  # stale: its owner is gone
                    os.unlink(lock, dir_fd=dir_fd)
        raise ProvisionError(f"cannot lock {etc}/{name}: {shown} keeps reappearing")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch, dir_fd=dir_fd)


def _lckpwdf(dir_fd: int, etc: str) -> int:
    """Open /etc/.pwd.lock (a regular file, created if missing) and wait for its fcntl lock."""
    shown = f"{etc}/.pwd.lock"
    fd = open_regular_at(dir_fd, ".pwd.lock", shown, flags=os.O_WRONLY, create_mode=0o600)
    deadline = time.monotonic() + LCKPWDF_TIMEOUT
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                os.close(fd)
                raise ProvisionError(f"cannot lock {shown}: {exc.strerror}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def locked(tree: TargetTree, etc: str, names: Iterable[str]) -> Iterator[None]:
    """Hold lckpwdf and the per-file locks of ``names`` in the root's ``etc`` (canonical path)."""
    with tree.parent(f"{etc}/.pwd.lock") as (cached_fd, _name):
        dir_fd = os.dup(cached_fd)  # ours for the whole block, whatever the tree's cache does
    held: list[str] = []
    try:
        pwd_fd = _lckpwdf(dir_fd, etc)
        try:
            for name in names:
                held.append(_lock_file(dir_fd, etc, name))
            yield
        finally:
            for lock in reversed(held):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock, dir_fd=dir_fd)
            os.close(pwd_fd)  # closing drops the fcntl lock
    finally:
        os.close(dir_fd)


def remove_stale_scratch(tree: TargetTree, etc: str, names: Iterable[str]) -> list[str]:
    """Remove what a killed shadow-utils tool leaves next to a database (call while locked).

    ``<name>.<pid>`` (a lock being taken) and ``<name>+`` (a new copy being
    written) of a process that is gone, when they are regular files; the
    database itself is untouched.
    """
    entries = tree.list_directory(etc) or []
    wanted = list(names)
    removed = []
    for entry, st in entries:
        if not stat.S_ISREG(st.st_mode):
            continue
        for name in wanted:
            suffix = entry[len(name) + 1:] if entry.startswith(f"{name}.") else ""
            stale_pid = suffix.isdigit() and not _pid_alive(int(suffix))
            if stale_pid or entry == f"{name}+":
                tree.remove(f"{etc}/{entry}")
                removed.append(entry)
                break
    return removed
