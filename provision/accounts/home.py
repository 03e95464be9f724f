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

from provision.target.tree import NodeState, TargetMissingError, TargetTree, split_path, temp_name


def _copy_skeleton(tree: TargetTree, skel: str, dest: str, uid: int, gid: int) -> None:
    """Copy the skeleton directory ``skel`` (canonical in-root path) to ``dest``.

    Listed and read through the tree: symlinks are copied as links, never
    followed; FIFOs, sockets and device nodes are skipped (never opened).
    """
    times: list[tuple[str, os.stat_result]] = []
    pending = [(skel, dest)]
    while pending:
        source_dir, dest_dir = pending.pop()
        for name, st in tree.list_directory(source_dir) or []:
            source, path = f"{source_dir}/{name}", f"{dest_dir}/{name}"
            if stat.S_ISDIR(st.st_mode):
                tree.make_directory(path, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid)
                pending.append((source, path))
            elif stat.S_ISLNK(st.st_mode):
                link = tree.state(source)
                if link is None or link.link_target is None:
                    continue  # gone meanwhile
                tree.symlink(path, link.link_target, uid=uid, gid=gid)
            elif stat.S_ISREG(st.st_mode):
                data = tree.read_bytes(source, follow=False) or b""
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
        _copy_skeleton(tree, skel_dir, scratch, uid, gid)
    with tree.parent(home, create=True) as (fd, final):
        os.rename(temp_name(name), final, src_dir_fd=fd, dst_dir_fd=fd)
        os.fsync(fd)
    return True


def chown_tree(
    tree: TargetTree, home: str, old: tuple[int, int], new: tuple[int, int]
) -> None:
    """Give what ``old`` (uid, gid) owned under ``home`` to ``new``, as usermod -u/-g does.

    Walked through the tree without following any symlink (links themselves
    are re-owned, as ``chown -h`` does).
    """
    state = tree.state(home)
    if state is None or state.kind != "directory":
        return
    top = tree.resolve(home)
    pending = [top]
    while pending:
        directory = pending.pop()
        if directory == top:
            _rechown(tree, top, tree.state(top), old, new)
        for name, st in tree.list_directory(directory) or []:
            path = f"{directory}/{name}"
            if stat.S_ISDIR(st.st_mode):
                pending.append(path)
            _rechown(tree, path, st, old, new)


def _rechown(
    tree: TargetTree, path: str, st: os.stat_result | NodeState | None,
    old: tuple[int, int], new: tuple[int, int],
) -> None:
    if st is None:
        return
    have = (st.st_uid, st.st_gid) if isinstance(st, os.stat_result) else (st.uid, st.gid)
    uid = new[0] if have[0] == old[0] else have[0]
    gid = new[1] if have[1] == old[1] else have[1]
    if (uid, gid) != have:
        tree.chown(path, uid, gid)


def adopt_mount_directories(
    tree: TargetTree, home: str, uid: int, gid: int, made: list[str]
) -> bool:
    """Give the user the directories the mount stage made at or below ``home``; True if any changed.

    A filesystem mounted at, say, ~/.ssh/foo/bar makes ~, ~/.ssh and ~/.ssh/foo
    (root's, 0755) before the user exists, so the home would not be the
    user's. As Ignition does, each becomes the user's with mode 0700; the
    mount point itself is reached through the mount, so it is the mounted
    filesystem's root that changes, not the directory beneath it.
    """
    try:
        top = tree.resolve(home)
    except TargetMissingError:
        return False
    changed = False
    for path in made:
        if path != top and not path.startswith(top.rstrip("/") + "/"):
            continue
        state = tree.state(path)
        if state is None or state.kind != "directory":
            continue
        if (state.uid, state.gid, state.mode) != (uid, gid, 0o700):
            tree.set_owner_mode(path, mode=0o700, uid=uid, gid=gid)
            changed = True
    return changed
