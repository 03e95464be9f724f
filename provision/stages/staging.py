"""Staging: every resource the stages write, fetched and verified before any stage changes anything.

The orchestrator asks each stage of the run for its :class:`Need`\\ s (pure
functions of the config), fetches them all into one :class:`Staging`, and
only then lets the first stage apply. A 404, a hash mismatch or a corrupt
gzip stream therefore fails the run before users, partitions or files are
touched.

Where the bytes wait:

- in memory, while the resource is small (:data:`SMALL_BYTES`) and all the
  small ones together stay under the run's budget (:data:`MEMORY_BUDGET`),
  so a config of a thousand tiny files costs no extra file system work;
- otherwise in a file of a private directory (:data:`STAGING_DIR`, 0700,
  files 0600) inside the TARGET root's file system, never the host's (or
  the initramfs's) TMPDIR, which in an initramfs is RAM.

Resources are streamed (decompressed and verified on the fly by
:mod:`provision.fetch.resource`), so memory is bounded by the budget plus a
few chunks whatever the config's shape: thousands of gzip ``data:`` URLs
are inflated one at a time into staging files, not all at once in memory.
The directory is emptied when a run starts and removed when it ends; its
descriptor is held open, so a filesystem mounted over ``/etc`` by the mount
stage does not hide what was staged.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from provision.config.model import Config, Resource
from provision.errors import ProvisionError, StageError
from provision.stages.journal import STATE_DIR, ensure_state_dir
from provision.target.tree import TargetTree

if TYPE_CHECKING:
    from provision.fetch.http import HttpClient

STAGING_DIR = STATE_DIR + "/staging"
SMALL_BYTES = 64 << 10  # a resource up to this size may stay in memory ...
MEMORY_BUDGET = 8 << 20  # ... while all in-memory resources together stay under this

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Need(NamedTuple):
    """One resource a stage writes: fetched and verified before any stage applies.

    ``key`` is how the stage asks for it again at apply time (unique within the
    stage); ``item`` names it in an error (a path, "LUKS volume root").
    """

    key: str
    item: str
    resource: Resource


class _Spill:
    """A sink that keeps bytes in memory up to a limit, then moves them to a staging file."""

    def __init__(self, staging: Staging, limit: int) -> None:
        self.staging = staging
        self.limit = limit
        self.buffer = bytearray()
        self.fd: int | None = None
        self.name: str | None = None

    def write(self, data: bytes, /) -> int:
        if self.fd is None and len(self.buffer) + len(data) <= self.limit:
            self.buffer += data
            return len(data)
        if self.fd is None:
            self.name, self.fd = self.staging._new_file()
            _write_all(self.fd, bytes(self.buffer))
            self.buffer = bytearray()
        _write_all(self.fd, data)
        return len(data)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Staging:
    """The run's staged resources; use as a context manager (removes what it staged)."""

    def __init__(self, config: Config, root: Path | str, *,
                 budget: int = MEMORY_BUDGET, small: int = SMALL_BYTES) -> None:
        self.config = config
        self.root = root
        self.budget = budget
        self.small = small
        self.in_memory = 0  # bytes of staged resources held in memory
        self._memory: dict[tuple[str, str], bytes] = {}
        self._files: dict[tuple[str, str], str] = {}
        self._dir_fd = -1
        self._counter = 0
        self._client: HttpClient | None = None

    # ---- life cycle ----------------------------------------------------

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._memory.clear()
        if self._dir_fd >= 0:
            _empty_directory(self._dir_fd)
            os.close(self._dir_fd)
            self._dir_fd = -1
            with contextlib.suppress(OSError, ProvisionError), TargetTree(self.root) as tree:
                tree.remove(STAGING_DIR)
        self._files.clear()

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            from provision.fetch.settings import client_for_config

            self._client = client_for_config(self.config)
        return self._client

    def _directory(self) -> int:
        """The staging directory's descriptor, made (emptied of leftovers) on first use."""
        if self._dir_fd < 0:
            with TargetTree(self.root) as tree:
                ensure_state_dir(tree)
                state = tree.state(STAGING_DIR)
                if state is not None:
                    tree.remove(STAGING_DIR)  # leftovers of a killed run
                tree.make_directory(STAGING_DIR, mode=0o700, uid=0, gid=0)
                with tree.parent(STAGING_DIR) as (parent_fd, name):
                    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            if not stat.S_ISDIR(os.fstat(fd).st_mode):  # O_DIRECTORY already says so
                os.close(fd)
                raise ProvisionError(f"{STAGING_DIR} in the target is not a directory")
            self._dir_fd = fd
        return self._dir_fd

    def _new_file(self) -> tuple[str, int]:
        directory = self._directory()
        self._counter += 1
        name = f"{self._counter}.part"
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=directory)
        return name, fd

    # ---- fetching ------------------------------------------------------

    def fetch(self, stage: str, need: Need) -> None:
        """Fetch and verify one resource; a failure is a StageError naming the stage and item."""
        from provision.fetch.resource import fetch_to_file

        if (stage, need.key) in self._memory or (stage, need.key) in self._files:
            return
        if need.resource.source is None:  # no source: empty contents
            self._memory[(stage, need.key)] = b""
            return
        limit = min(self.small, self.budget - self.in_memory)
        sink = _Spill(self, max(limit, 0))
        try:
            fetch_to_file(need.resource, sink, self.client)
        except ProvisionError as exc:
            self._forget(sink)
            raise StageError(stage, need.item, str(exc)) from None
        except OSError as exc:
            self._forget(sink)
            raise StageError(stage, need.item, f"cannot stage it in the target: {exc.strerror or exc}") from None
        except BaseException:
            self._forget(sink)
            raise
        sink.close()
        if sink.name is None:
            data = bytes(sink.buffer)
            self._memory[(stage, need.key)] = data
            self.in_memory += len(data)
        else:
            self._files[(stage, need.key)] = sink.name

    def fetch_all(self, stage: str, needs: Iterable[Need]) -> None:
        for need in needs:
            self.fetch(stage, need)

    def _forget(self, sink: _Spill) -> None:
        sink.close()
        if sink.name is not None:
            with contextlib.suppress(OSError):
                os.unlink(sink.name, dir_fd=self._dir_fd)

    # ---- reading -------------------------------------------------------

    def open(self, stage: str, key: str) -> IO[bytes]:
        """The staged bytes of ``key`` as a file object at offset 0 (the caller closes it)."""
        data = self._memory.get((stage, key))
        if data is not None:
            return io.BytesIO(data)
        name = self._files.get((stage, key))
        if name is None:
            raise KeyError(f"{stage}: {key} was not staged (missing from the stage's needs)")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir_fd)
        return os.fdopen(fd, "rb")

    def __contains__(self, stage_key: tuple[str, str]) -> bool:
        return stage_key in self._memory or stage_key in self._files


def _empty_directory(dir_fd: int) -> None:
    for name in os.listdir(dir_fd):
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)


def verify_only(config: Config, stage: str, needs: Iterable[Need]) -> None:
    """Fetch and verify ``needs`` without keeping them (for stages a later process runs).

    At boot the disks phase runs before the root is mounted: the files
    phase's contents cannot be staged in the root yet, but a 404 or a bad
    hash must still stop the boot before a partition table is written. The
    bytes stream through the hash and are dropped, so memory stays flat.
    """
    from provision.fetch.resource import fetch_to_file
    from provision.fetch.settings import client_for_config

    needs = [n for n in needs if n.resource.source is not None]
    if not needs:
        return
    client = client_for_config(config)
    try:
        for need in needs:
            try:
                fetch_to_file(need.resource, _Discard(), client)
            except ProvisionError as exc:
                raise StageError(stage, need.item, str(exc)) from None
    finally:
        client.close()


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)
