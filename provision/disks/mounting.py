"""Mount the configured filesystems under the target root, and undo it.

Mounts go shallowest first (``/var`` before ``/var/lib``), each mount point
resolved inside the root (symlinks in the target cannot lead outside it).
What was mounted is recorded in the state directory so a later process (the
initramfs umount step) can undo it; unmounting goes deepest first and keeps
going past a failure, reporting all of them. The record also names the
directories made for mount points, so the users stage can give the ones in a
user's home to that user (as Ignition does).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from provision.config import model
from provision.disks.state import state_dir
from provision.errors import ProvisionError
from provision.run import run

log = logging.getLogger(__name__)

_NOT_MOUNTED = ("swap", "none")


@dataclass(frozen=True)
class MountEntry:
    """One mount: ``device`` (as configured) on ``path`` (inside the target root)."""

    device: str
    path: str
    fstype: str | None
    options: tuple[str, ...] = ()

    @property
    def depth(self) -> int:
        return len(PurePosixPath(self.path).parts)


def plan_mounts(filesystems: Iterable[model.Filesystem]) -> list[MountEntry]:
    """Every filesystem and subvolume with a path, shallowest first (stable)."""
    entries = []
    for fs in filesystems:
        if fs.format in _NOT_MOUNTED:
            continue
        if fs.path is not None:
            entries.append(MountEntry(fs.device, fs.path, fs.format, fs.mount_options))
        for sub in fs.subvolumes:
            if sub.path is not None:
                options = (f"subvol={sub.name}", *sub.mount_options)
                entries.append(MountEntry(fs.device, sub.path, fs.format or "btrfs", options))
    return sorted(entries, key=lambda e: e.depth)


def _record_file() -> Path:
    return state_dir() / "mounts.json"


def _read_records() -> list[dict[str, Any]]:
    try:
        data = json.loads(_record_file().read_text())
    except (OSError, ValueError):
        return []
    return [r for r in data if isinstance(r, dict)]


def _write_records(records: Sequence[dict[str, Any]]) -> None:
    path = _record_file()
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(list(records)))
    scratch.replace(path)


def mount_point(root: Path, path: str, made: list[str] | None = None) -> Path:
    """Create the mount point for ``path`` safely inside ``root``; return its host path.

    Like ``mkdir -p`` run chrooted: each component is resolved inside the
    root (a symlink to /x means <root>/x) and created when missing; the
    in-root paths of those created are appended to ``made``.
    """
    from provision.target.tree import TargetTree

    resolved = "/"
    with TargetTree(root) as tree:
        for component in PurePosixPath(path).parts[1:]:
            resolved = tree.resolve(posixpath.join(resolved, component))
            if resolved == "/":
                continue
            state = tree.state(resolved)
            if state is None:
                tree.make_directory(resolved, mode=0o755, uid=0, gid=0)
                if made is not None:
                    made.append(resolved)
            elif state.kind != "directory":
                raise ProvisionError(f"cannot mount on {path} in {root}: a {state.kind} is in the way")
    if resolved == "/" and PurePosixPath(path) != PurePosixPath("/"):
        # e.g. /tmp0 -> / in the target: mounting there would cover the whole root
        raise ProvisionError(f"cannot mount on {path} in {root}: it leads to the root itself")
    return root / resolved.lstrip("/")


def mount_one(entry: MountEntry, device: str, root: Path) -> Path:
    made: list[str] = []
    point = mount_point(root, entry.path, made)
    args = []
    if entry.fstype:
        args += ["-t", entry.fstype]
    if entry.options:
        args += ["-o", ",".join(entry.options)]
    run("mount", [*args, device, str(point)])
    records = _read_records()
    records.append({"root": str(root), "point": str(point), "made": made})
    _write_records(records)
    return point


def made_directories(root: Path) -> list[str]:
    """In-root paths of the directories mounting under ``root`` created (while still mounted)."""
    made = []
    for record in _read_records():
        if record.get("root") == str(root) and isinstance(record.get("made"), list):
            made += [path for path in record["made"] if isinstance(path, str)]
    return made


def _mounted_points() -> set[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[4].replace("\\040", " ") for line in lines if len(line.split()) > 4}


def unmount_all(root: Path) -> list[str]:
    """Unmount everything provision mounted under ``root``, deepest first.

    Returns the mount points unmounted; raises after trying all if any failed.
    """
    records = _read_records()
    mine = [r for r in records if r.get("root") == str(root)]
    others = [r for r in records if r.get("root") != str(root)]
    done, failures = [], []
    mounted = _mounted_points()
    for record in reversed(mine):
        point = record["point"]
        if point not in mounted:
            continue
        result = run("umount", [point], check=False)
        if result.status == 0:
            done.append(point)
            mounted = _mounted_points()
        else:
            failures.append(f"{point}: {result.stderr.strip()}")
    if failures:
        still = [r for r in mine if r["point"] in _mounted_points()]
        _write_records(others + still)
        raise ProvisionError("could not unmount " + "; ".join(failures))
    _write_records(others)
    return done
