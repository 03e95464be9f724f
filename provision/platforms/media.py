"""Read one file from a small local filesystem: a config drive, cidata, a labelled device.

The filesystem is mounted read-only on a private temporary directory and
unmounted straight after. Where the kernel cannot mount it (no vfat/iso9660
driver, as in some containers) the file is read with the userspace tools
for the filesystem type instead: ``xorriso`` for iso9660, ``mcopy`` for vfat.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from provision.errors import CommandError, FetchError
from provision.platforms.localread import read_platform_file
from provision.run import have_tool, run

log = logging.getLogger(__name__)

FS_TYPES = "iso9660,vfat,udf"


def read_from_filesystem(device: str, path: str) -> bytes | None:
    """Bytes of ``path`` on the filesystem at ``device``; None if the file is absent."""
    try:
        return _read_mounted(device, path)
    except CommandError as exc:
        log.info("mounting %s failed (%s); reading it without the kernel", device, exc)
    fstype = _fstype(device)
    if fstype == "iso9660":
        return _read_iso9660(device, path)
    if fstype == "vfat":
        return _read_vfat(device, path)
    raise FetchError(f"cannot mount {device} (filesystem {fstype or 'unknown'})")


def read_files_from_filesystem(device: str, paths: list[str]) -> dict[str, bytes | None]:
    """Several files from one filesystem (one mount); None for each file that is absent."""
    try:
        return _read_mounted_many(device, paths)
    except CommandError as exc:
        log.info("mounting %s failed (%s); reading it without the kernel", device, exc)
    return {path: read_from_filesystem(device, path) for path in paths}


def _read_mounted_many(device: str, paths: list[str]) -> dict[str, bytes | None]:
    with tempfile.TemporaryDirectory(prefix="provision-media-") as mountpoint:
        run("mount", ["-o", "ro", "-t", FS_TYPES, device, mountpoint], timeout=60)
        try:
            found: dict[str, bytes | None] = {}
            for path in paths:
                found[path] = read_platform_file(Path(mountpoint, path.lstrip("/")), device, follow_links=False)
            return found
        finally:
            run("umount", [mountpoint], check=False, timeout=60)


def _read_mounted(device: str, path: str) -> bytes | None:
    with tempfile.TemporaryDirectory(prefix="provision-media-") as mountpoint:
        run("mount", ["-o", "ro", "-t", FS_TYPES, device, mountpoint], timeout=60)
        try:
            return read_platform_file(Path(mountpoint, path.lstrip("/")), device, follow_links=False)
        finally:
            run("umount", [mountpoint], check=False, timeout=60)


def _fstype(device: str) -> str | None:
    if not have_tool("blkid"):
        return None
    probe = run("blkid", ["-p", "-o", "value", "-s", "TYPE", device], check=False, timeout=30)
    return probe.stdout.strip() or None


def _read_iso9660(device: str, path: str) -> bytes | None:
    if not have_tool("xorriso"):
        raise FetchError(f"cannot mount the iso9660 filesystem on {device} and xorriso is missing")
    with tempfile.TemporaryDirectory(prefix="provision-media-") as scratch:
        out = Path(scratch, "file")
        done = run("xorriso", ["-osirrox", "on", "-indev", f"stdio:{device}",
                               "-extract", "/" + path.lstrip("/"), str(out)], check=False, timeout=60)
        if out.is_file() or out.is_symlink():
            return read_platform_file(out, device, follow_links=False)
        if "Cannot determine attributes" in done.stderr:
            return None
        raise CommandError(done.argv, done.status, done.stderr)


def _read_vfat(device: str, path: str) -> bytes | None:
    if not have_tool("mcopy"):
        raise FetchError(f"cannot mount the vfat filesystem on {device} and mcopy is missing")
    done = run("mcopy", ["-n", "-i", device, "::/" + path.lstrip("/"), "-"],
               check=False, timeout=60, env={"MTOOLS_SKIP_CHECK": "1"})
    if done.status == 0:
        return done.stdout_bytes
    if "not found" in done.stderr:
        return None
    raise CommandError(done.argv, done.status, done.stderr)
