"""Safe, atomic operations on a target root.

Every path is resolved component by component from a file descriptor of the
root (``openat`` style, ``O_NOFOLLOW`` at each step). A symlink met on the
way is read and spliced into the remaining path by hand: an absolute target
restarts at the root, ``..`` never climbs above it. So a hostile tree (``/etc``
a link to the host's ``/etc``, ``../../..``, loops) cannot make us touch
anything outside the root, and a link swapped into a parent while we work is
caught by ``O_NOFOLLOW`` instead of followed.

The last component of a path is never followed when writing: writing a file
where a symlink is replaces the link (as ``rename`` does), it never writes
through it.

Every file the engine opens inside the root is opened by
:func:`open_regular_at`: only a regular file, never through a final symlink,
never blocking. A FIFO would hang the open, a device node such as
``/dev/zero`` would never end a read (and opening one can have effects), so
both are refused with an error naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from provision.errors import ProvisionError

# Same limit as the kernel's (MAXSYMLINKS): more is a loop.
MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20
_DIR_CACHE_SIZE = 256


class TargetPathError(ProvisionError):
    """A path inside the target cannot be resolved or used as asked."""


class TargetMissingError(TargetPathError):
    """A directory on the way to a path does not exist."""


@dataclass(frozen=True)
class NodeState:
    """What is at a path (not following a final symlink)."""

    kind: str  # "file", "directory", "link", "other"
    mode: int  # permission bits including setuid/setgid/sticky
    uid: int
    gid: int
    size: int
    inode: tuple[int, int]
    link_target: str | None = None


def _kind(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if stat.S_ISLNK(st.st_mode):
        return "link"
    return "other"


def kind_phrase(mode: int) -> str:
    """What a node is, for a message: "a FIFO", "a device node", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    return "not a regular file"


def open_regular_at(
    dir_fd: int, name: str, shown: str, *, flags: int = os.O_RDONLY, create_mode: int | None = None
) -> int:
    """Open the regular file ``name`` in ``dir_fd``; the one way files in a target are opened.

    Never follows a symlink at ``name`` and never opens anything but a regular
    file: the node is looked at (lstat) before it is opened, opened with
    O_NOFOLLOW|O_NONBLOCK|O_NOCTTY, and checked again to be the same regular
    file, so a FIFO swapped in between cannot make the open hang. With
    ``create_mode`` a missing file is created (O_EXCL, so never through a
    link). Raises FileNotFoundError when nothing is there, TargetPathError
    (naming ``shown``) for anything that is not a regular file.
    """
    base = flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    for _attempt in range(3):
        try:
            before = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            if create_mode is None:
                raise
            try:
                fd = os.open(name, base | os.O_CREAT | os.O_EXCL, create_mode, dir_fd=dir_fd)
            except FileExistsError:
                continue  # made by someone else meanwhile: look again
            before = os.fstat(fd)
        else:
            if not stat.S_ISREG(before.st_mode):
                raise TargetPathError(f"{shown}: is {kind_phrase(before.st_mode)}, not a regular file")
            try:
                fd = os.open(name, base, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise TargetPathError(f"{shown}: is a symbolic link, not a regular file") from None
                raise
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (
            before.st_dev, before.st_ino
        ):
            os.close(fd)
            raise TargetPathError(f"{shown}: changed while it was opened")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd
    raise TargetPathError(f"{shown}: keeps appearing and disappearing")


def temp_name(name: str) -> str:
    """A deterministic scratch name next to ``name``.

    Deterministic so a rerun after a crash reuses (and so removes) the
    leftover of the killed run instead of leaving a stray file behind.
    """
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return f".provision-{digest}.tmp"


def split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


class TargetTree:
    """A target root opened for safe resolution; use as a context manager."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        try:
            self._root_fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        except OSError as exc:
            raise TargetPathError(f"target root {self.root}: {exc.strerror}") from exc
        self.created_dirs: set[str] = set()
        # Parent path components -> open fd of that directory (see parent()), every
        # prefix of those keys, fds retired by an invalidation, and how many
        # parent() blocks are open (retired fds are closed when none is).
        self._dir_cache: dict[tuple[str, ...], int] = {}
        self._cached_prefixes: set[tuple[str, ...]] = set()
        self._retired: list[int] = []
        self._busy = 0
        # Parent keys known not to exist (cleared by anything that may create one).
        self._missing: set[tuple[str, ...] | None] = set()
        # Deferred durability (see deferred()): file renames waiting for one syncfs.
        self._deferred = False
        self._pending: list[tuple[str, str]] = []  # (path, scratch name beside it)
        self._pending_paths: set[str] = set()
        # Called after each committed rename: the crash-test seam hooks in here.
        self.on_commit: Callable[[], None] | None = None

    def close(self) -> None:
        self._discard_pending()
        self._invalidate()
        for fd in self._retired:
            os.close(fd)
        self._retired.clear()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __enter__(self) -> TargetTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host_path(self, path: str) -> Path:
        """Where a resolved in-root path lives on the host (for messages and tests only)."""
        return self.root / path.lstrip("/")

    # ---- resolution -------------------------------------------------------

    def _walk(
        self, components: list[str], *, create: bool, follow_last: bool, shown: str
    ) -> tuple[int, list[str], str | None]:
        """Walk ``components`` from the root; return (dir fd, canonical dir path, last name).

        With ``follow_last`` the final component is resolved too (a directory
        is entered, a symlink spliced); otherwise it is returned unresolved as
        the name to operate on inside the returned directory.
        """
        fds = [os.dup(self._root_fd)]
        names: list[str] = []
        pending = list(reversed(components))
        links = 0
        last: str | None = None
        try:
            while pending:
                comp = pending.pop()
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if len(fds) > 1:
                        os.close(fds.pop())
                        names.pop()
                    continue
                is_last = not any(p not in ("", ".") for p in pending)
                cur = fds[-1]
                if is_last and not follow_last:
                    last = comp
                    break
                try:
                    fd = os.open(comp, _DIR_FLAGS, dir_fd=cur)
                except FileNotFoundError:
                    if is_last:  # follow_last on a missing final component
                        last = comp
                        break
                    if not create:
                        raise TargetMissingError(
                            f"{shown}: {'/' + '/'.join([*names, comp])} does not exist"
                        ) from None
                    fd = self._make_parent(cur, comp, "/" + "/".join([*names, comp]))
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise TargetPathError(f"{shown}: {exc.strerror}") from exc
                    st = os.lstat(comp, dir_fd=cur)
                    if not stat.S_ISLNK(st.st_mode):
                        if is_last:
                            last = comp
                            break
                        raise TargetPathError(
                            f"{shown}: {'/' + '/'.join([*names, comp])} is not a directory"
                        ) from None
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise TargetPathError(
                            f"{shown}: too many levels of symbolic links"
                        ) from None
                    target = os.readlink(comp, dir_fd=cur)
                    if target.startswith("/"):
                        while len(fds) > 1:
                            os.close(fds.pop())
                        names.clear()
                    pending.extend(reversed(target.split("/")))
                    continue
                fds.append(fd)
                names.append(comp)
            result = fds.pop()
            return result, names, last
        finally:
            for fd in fds:
                os.close(fd)

    def _make_parent(self, dir_fd: int, name: str, shown: str) -> int:
        """Create a missing parent directory: 0755 root:root, as Ignition does."""
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        except FileExistsError:
            pass
        else:
            self.created_dirs.add(shown)
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        if shown in self.created_dirs:
            os.fchown(fd, 0, 0)
            os.fchmod(fd, 0o755)
        return fd

    @contextlib.contextmanager
    def parent(self, path: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """(fd of the resolved parent directory, final name) for operating on ``path``."""
        components = split_path(path)
        if not components:
            raise TargetPathError(f"{path}: is the root itself")
        # Paths without ".." reuse the parent's fd from an earlier walk.
        key = None if ".." in components else tuple(components[:-1])
        if create:
            self._missing.clear()
        elif key in self._missing:
            raise TargetMissingError(f"{path}: a parent directory does not exist")
        cached = self._dir_cache.get(key) if key is not None else None
        self._busy += 1
        owned: int | None = None
        try:
            if cached is not None:
                yield cached, components[-1]
                return
            try:
                fd, _names, last = self._walk(components, create=create, follow_last=False, shown=path)
            except TargetMissingError:
                if key is not None:
                    self._missing.add(key)  # planning asks about many paths under one new dir
                raise
            if key is not None and last is not None:
                self._remember(key, fd)
            else:
                owned = fd
            if last is None:  # path ended in "..": it names a directory, not an entry
                raise TargetPathError(f"{path}: does not name a file")
            yield fd, last
        finally:
            if owned is not None:
                os.close(owned)
            self._busy -= 1
            if not self._busy and self._retired:
                for old in self._retired:
                    os.close(old)
                self._retired.clear()

    def _remember(self, key: tuple[str, ...], fd: int) -> None:
        if len(self._dir_cache) >= _DIR_CACHE_SIZE:
            self._invalidate()
        self._dir_cache[key] = fd
        for n in range(1, len(key) + 1):
            self._cached_prefixes.add(key[:n])

    def _invalidate(self) -> None:
        """Forget cached directory fds (closed once no caller is using one)."""
        self._retired.extend(self._dir_cache.values())
        self._dir_cache = {}
        self._cached_prefixes = set()

    def _replacing(self, path: str) -> None:
        """About to replace the node at ``path``: cached walks through it are stale."""
        if tuple(split_path(path)) in self._cached_prefixes:
            self._invalidate()

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The canonical in-root path ``path`` refers to (it need not exist)."""
        fd, names, last = self._walk(
            split_path(path), create=False, follow_last=follow_last, shown=path
        )
        os.close(fd)
        return "/" + "/".join(names + ([last] if last else []))

    def state(self, path: str) -> NodeState | None:
        """What is at ``path`` now, or None; missing parents mean None too."""
        self._settle()
        try:
            with self.parent(path) as (fd, name):
                st = os.lstat(name, dir_fd=fd)
                target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
        except FileNotFoundError:
            return None
        except TargetMissingError:
            return None
        return NodeState(
            _kind(st), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size,
            (st.st_dev, st.st_ino), target,
        )

    def open_read(self, path: str, *, follow: bool = True) -> BinaryIO | None:
        """Open an existing regular file for reading; None when nothing is there.

        A final symlink is followed inside the root (``follow=False``: refused);
        anything but a regular file is an error naming the path.
        """
        self._settle()
        try:
            fd, _names, last = self._walk(
                split_path(path), create=False, follow_last=follow, shown=path
            )
        except TargetMissingError:
            return None
        try:
            if last is None:
                raise TargetPathError(f"{path}: is a directory, not a regular file")
            try:
                file_fd = open_regular_at(fd, last, path)
            except FileNotFoundError:
                return None
            return os.fdopen(file_fd, "rb")
        finally:
            os.close(fd)

    def read_bytes(self, path: str, *, follow: bool = True, dangling_ok: bool = True) -> bytes | None:
        """The contents of the regular file at ``path``, or None when there is none.

        With ``dangling_ok=False`` a symlink whose target does not exist is an
        error naming both (for files whose absence would be taken as "empty",
        such as the account databases).
        """
        handle = self.open_read(path, follow=follow)
        if handle is None:
            if not dangling_ok:
                state = self.state(path)
                if state is not None and state.kind == "link":
                    raise TargetPathError(
                        f"{path}: symbolic link to {state.link_target}, which does not exist in the target"
                    )
            return None
        with handle:
            return handle.read()

    def list_directory(self, path: str) -> list[tuple[str, os.stat_result]] | None:
        """The entries of the directory at ``path`` (followed inside the root), each lstat-ed.

        Sorted by name; None when there is no directory there. Nothing in it is opened.
        """
        self._settle()
        try:
            fd, _names, last = self._walk(split_path(path), create=False, follow_last=True, shown=path)
        except TargetMissingError:
            return None
        try:
            if last is not None:  # missing, or not a directory
                return None
            entries = []
            for name in sorted(os.listdir(fd)):
                with contextlib.suppress(FileNotFoundError):
                    entries.append((name, os.lstat(name, dir_fd=fd)))
            return entries
        finally:
            os.close(fd)

    def chown(self, path: str, uid: int, gid: int) -> None:
        """Change the owner of the node at ``path`` itself (a final symlink is not followed)."""
        self._settle()
        with self.parent(path) as (dir_fd, name):
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    # ---- changes ----------------------------------------------------------

    def _clear(self, dir_fd: int, name: str) -> None:
        """Remove whatever node is at ``name`` (a directory with its contents)."""
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
        # Cached walks may have gone through it (the caller's own fd stays open until
        # its parent() block ends).
        self._invalidate()

    @staticmethod
    def _discard(dir_fd: int, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)

    # ---- durability -------------------------------------------------------

    def _fsync(self, fd: int) -> None:
        if not self._deferred:
            os.fsync(fd)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Batch durability: one ``syncfs`` per run of file writes instead of two fsyncs each.

        Inside, :meth:`write_file` writes its scratch file and queues the
        rename; before any other operation, and on exit, the queue is
        committed: syncfs (every scratch file's data is on disk), the
        renames, syncfs again. So a crash still leaves each file old or new,
        never partial. On an exception the queued scratch files are removed.
        """
        self._deferred = True
        try:
            yield
            self._settle()
            _syncfs(self._root_fd)
        except BaseException:
            self._discard_pending()
            raise
        finally:
            self._deferred = False

    def _settle(self) -> None:
        """Commit queued writes (called before anything that may depend on them)."""
        if not self._pending:
            return
        _syncfs(self._root_fd)
        pending, self._pending = self._pending, []
        self._pending_paths.clear()
        for path, tmp in pending:
            self._replacing(path)
            with self.parent(path) as (dir_fd, name):
                self._install(dir_fd, tmp, name)
            if self.on_commit is not None:
                self.on_commit()
        _syncfs(self._root_fd)

    def _discard_pending(self) -> None:
        pending, self._pending = self._pending, []
        self._pending_paths.clear()
        for path, tmp in pending:
            with contextlib.suppress(OSError, TargetPathError), self.parent(path) as (dir_fd, _name):
                self._discard(dir_fd, tmp)

    def _install(self, dir_fd: int, tmp: str, name: str) -> None:
        """Rename ``tmp`` over ``name`` (clearing a directory first) and make it durable."""
        try:
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            self._clear(dir_fd, name)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        self._fsync(dir_fd)

    def write_file(
        self, path: str, chunks: Iterator[bytes] | list[bytes], *, mode: int, uid: int, gid: int
    ) -> None:
        """Atomically replace ``path`` with a regular file holding ``chunks``.

        Written to a scratch file in the same directory, owned and chmod-ed,
        fsync-ed, then renamed over the path: a crash leaves the old node or
        the new file, never a partial one.
        """
        if path in self._pending_paths:  # written twice in one batch: commit the first
            self._settle()
        with self.parent(path, create=True) as (dir_fd, name):
            tmp = temp_name(name)
            self._discard(dir_fd, tmp)
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600, dir_fd=dir_fd,
            )
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                # chown before chmod: chown clears setuid/setgid bits.
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                self._fsync(fd)
            except BaseException:
                os.close(fd)
                self._discard(dir_fd, tmp)
                raise
            os.close(fd)
            if self._deferred:
                self._pending.append((path, tmp))
                self._pending_paths.add(path)
            else:
                self._replacing(path)
                self._install(dir_fd, tmp, name)

    def make_directory(
        self, path: str, *, mode: int, uid: int, gid: int, replace: bool = False
    ) -> None:
        """Ensure a directory at ``path``; ``replace`` removes a non-directory first."""
        self._settle()
        with self.parent(path, create=True) as (dir_fd, name):
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                if not replace:
                    raise TargetPathError(f"{path}: a non-directory is in the way")
                self._clear(dir_fd, name)
                st = None
            if st is None:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                self._fsync(fd)
            finally:
                os.close(fd)
            self._fsync(dir_fd)

    def set_owner_mode(self, path: str, *, mode: int, uid: int, gid: int) -> None:
        """chown/chmod an existing file or directory without following a final link."""
        self._settle()
        with self.parent(path) as (dir_fd, name):
            st = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            else:
                fd = open_regular_at(dir_fd, name, path)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                self._fsync(fd)
            finally:
                os.close(fd)

    def symlink(self, path: str, target: str, *, uid: int, gid: int) -> None:
        """Atomically make ``path`` a symlink to ``target`` (stored verbatim)."""
        self._settle()
        with self.parent(path, create=True) as (dir_fd, name):
            tmp = temp_name(name)
            self._discard(dir_fd, tmp)
            os.symlink(target, tmp, dir_fd=dir_fd)
            os.chown(tmp, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
            self._replacing(path)
            self._install(dir_fd, tmp, name)

    def hardlink(self, path: str, target: str) -> None:
        """Atomically make ``path`` another name of the node at ``target`` (inside the root)."""
        self._settle()
        with self.parent(target) as (src_fd, src_name):
            try:
                os.lstat(src_name, dir_fd=src_fd)
            except FileNotFoundError:
                raise TargetPathError(f"{path}: hard link target {target} does not exist") from None
            with self.parent(path, create=True) as (dir_fd, name):
                tmp = temp_name(name)
                self._discard(dir_fd, tmp)
                try:
                    os.link(
                        src_name, tmp, src_dir_fd=src_fd, dst_dir_fd=dir_fd, follow_symlinks=False
                    )
                except OSError as exc:
                    raise TargetPathError(
                        f"{path}: cannot hard-link to {target}: {exc.strerror}"
                    ) from exc
                self._replacing(path)
                self._install(dir_fd, tmp, name)
                # rename() of two names of one inode does nothing: drop the scratch name.
                self._discard(dir_fd, tmp)

    def remove(self, path: str) -> bool:
        """Remove the node at ``path`` if there is one; True if something was removed."""
        self._settle()
        try:
            with self.parent(path) as (dir_fd, name):
                try:
                    os.lstat(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    return False
                self._clear(dir_fd, name)
                self._fsync(dir_fd)
                return True
        except TargetMissingError:
            return False


_libc_syncfs: Any = None


def _syncfs(fd: int) -> None:
    """Flush the filesystem holding ``fd`` (syncfs(2)); os.sync() where it is unavailable."""
    global _libc_syncfs
    if _libc_syncfs is None:
        try:
            import ctypes

            _libc_syncfs = ctypes.CDLL(None, use_errno=True).syncfs
        except (ImportError, OSError, AttributeError):  # an initramfs may lack ctypes/libffi
            _libc_syncfs = False
    if _libc_syncfs is False or _libc_syncfs(fd) != 0:
        os.sync()


def copy_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    """Read an open file in chunks (used to stream fetched contents into a write)."""
    while chunk := handle.read(_COPY_CHUNK):
        yield chunk
