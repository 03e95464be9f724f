"""One run at a time per root: an exclusive flock on a file inside the root.

Two ``provision apply`` (or ``run``) processes on one root would both read
"not done yet" and both apply: an append doubled, a uid changed under the
first, a "succeeded" record for a tree the other is still changing. The
lock is taken before the result record is read and held until the final
record is written, so the second process waits and then finds the work done
(or refuses after :data:`DEFAULT_WAIT` seconds, naming the holder).

The lock file is :data:`LOCK_PATH` in the root's state directory, opened
without following a symlink and only if it is a regular file: a root that
plants a FIFO, a device or a link to a file outside cannot make the engine
hang or lock something else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from provision.errors import ProvisionError
from provision.stages.journal import STATE_DIR, ensure_state_dir
from provision.target.tree import TargetTree

LOCK_PATH = STATE_DIR + "/lock"
WAIT_ENV = "PROVISION_LOCK_WAIT"  # seconds to wait for another run (tests shorten it)
DEFAULT_WAIT = 300.0


def lock_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, "") or DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT


def _open_lock_file(root: Path) -> int:
    try:
        with TargetTree(root) as tree:
            ensure_state_dir(tree, journal=False)
            with tree.parent(LOCK_PATH, create=True) as (dir_fd, name):
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProvisionError(f"{root}: the lock file {LOCK_PATH} is a symbolic link; remove it") from None
        raise ProvisionError(f"{root}: cannot open the lock file {LOCK_PATH}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ProvisionError(f"{root}: the lock file {LOCK_PATH} is not a regular file; remove it")
    return fd


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return f" (pid {text})"
    return ""


@contextlib.contextmanager
def run_lock(
    root: Path, *, wait: float | None = None, report: Callable[[str], None] = lambda line: None,
) -> Iterator[None]:
    """Hold the root's run lock for the block; wait up to ``wait`` seconds for another run."""
    wait = lock_wait() if wait is None else wait
    fd = _open_lock_file(root)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ProvisionError(
                        f"{root}: another provision run{_holder(fd)} is applying to this root; "
                        f"gave up waiting after {wait:g} s"
                    ) from None
                if not told:
                    report(f"waiting for another provision run{_holder(fd)} on {root}")
                    told = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
