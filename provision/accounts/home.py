"""Home directories: created from the target's skeleton, atomically.

A new home is assembled under a scratch name next to its final place (skel
files copied with their modes and times, everything owned by the user) and
renamed into place at the end, so a run killed half-way never leaves a home
with half a skeleton; the rerun removes the scratch directory and starts over.
Both account backends use this (``useradd`` runs with ``--no-create-home``)
so the result does not depend on which one ran.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provision.target.tree import TargetMissingError, TargetTree, split_path, temp_name


def _copy_skeleton(tree: TargetTree, skel: Path, dest: str, uid: int, gid: int) -> None:
    times: list[tuple[str, os.stat_result]] = []
    for current, dirs, files in os.walk(skel):  # never follows symlinked directories
        rel = os.path.relpath(current, skel)
        base = dest if rel == "." else f"{dest}/{rel}"
        for name in sorted(dirs + files):
            source = os.path.join(current, name)
            st = os.lstat(source)
            path = f"{base}/{name}"
            if stat.S_ISDIR(st.st_mode):
                tree.make_directory(path, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid)
            elif stat.S_ISLNK(st.st_mode):
                tree.symlink(path, os.readlink(source), uid=uid, gid=gid)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as handle:
                    data = handle.read()
                tree.write_file(path, [data], mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid)
            else:
                continue  # devices and fifos have no place in a home
            times.append((path, st))
    # Last, deepest first: writing into a directory changes its mtime.
    for path, st in sorted(times, key=lambda item: -item[0].count("/")):
        with tree.parent(path) as (fd, name):
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=fd, follow_symlinks=False)


def ensure_home(
    tree: TargetTree, home: str, uid: int, gid: int, mode: int, skel: str
) -> bool:
    """Create ``home`` with the skeleton unless something is already there; True if created."""
    if not split_path(home) or tree.state(home) is not None:
        return False
    parent_path, _, name = home.rstrip("/").rpartition("/")
    scratch = f"{parent_path}/{temp_name(name)}"
    tree.remove(scratch)  # leftover of a killed run
    tree.make_directory(scratch, mode=mode, uid=uid, gid=gid)
    try:
        skel_dir = tree.resolve(skel)
    except TargetMissingError:
        skel_dir = None
    skel_state = tree.state(skel_dir) if skel_dir else None
    if skel_dir and skel_state is not None and skel_state.kind == "directory":
        _copy_skeleton(tree, tree.host_path(skel_dir), scratch, uid, gid)
    with tree.parent(home, create=True) as (fd, final):
        os.rename(temp_name(name), final, src_dir_fd=fd, dst_dir_fd=fd)
        os.fsync(fd)
    return True


def chown_tree(
    tree: TargetTree, home: str, old: tuple[int, int], new: tuple[int, int]
) -> None:
    """Give what ``old`` (uid, gid) owned under ``home`` to ``new``, as usermod -u/-g does."""
    state = tree.state(home)
    if state is None:
        return
    resolved = tree.resolve(home)
    top = tree.host_path(resolved)
    if not top.is_dir() or top.is_symlink():
        return
    for current, dirs, files in os.walk(top):
        for entry in [current, *(os.path.join(current, n) for n in dirs + files)]:
            st = os.lstat(entry)
            uid = new[0] if st.st_uid == old[0] else st.st_uid
            gid = new[1] if st.st_gid == old[1] else st.st_gid
            if (uid, gid) != (st.st_uid, st.st_gid):
                os.chown(entry, uid, gid, follow_symlinks=False)
