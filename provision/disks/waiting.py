"""Make the kernel see a new table, then wait for the exact nodes and links.

Two worlds: with udevd (a normal initramfs), udev creates /dev nodes and the
/dev/disk/by-* links, and we wait until it has processed each device (pyudev)
and the link we need points at it. Without udevd (containers, a minimal
initramfs, this project's test machine), devtmpfs creates the nodes but
nobody creates links, so we make the nodes (mknod from sysfs' major:minor,
if devtmpfs did not) and the by-partlabel/by-partuuid/by-label/by-uuid links
ourselves, because configs name devices by those links.

Every wait polls a condition against a deadline and fails naming what it
waited for: no blind sleeps, no bare ``udevadm settle``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from provision.disks.devices import SYS_BLOCK, kernel_name, partitions_of, sysfs_dir, udev_running
from provision.errors import ProvisionError
from provision.run import run

DEV = Path("/dev")
POLL_SECONDS = 0.01
# devtmpfs adds a node just after sysfs shows the device; give it this long.
DEVTMPFS_GRACE_SECONDS = 0.25


class DeviceTimeout(ProvisionError):
    """A device or link did not appear in time."""


def device_timeout() -> float:
    """Seconds to wait for a device (PROVISION_DEVICE_TIMEOUT, default 60)."""
    try:
        return float(os.environ.get("PROVISION_DEVICE_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def poll_until(
    condition: Callable[[], bool], timeout: float, what: Callable[[], str]
) -> None:
    """Poll ``condition`` until true; DeviceTimeout naming ``what()`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise DeviceTimeout(f"timed out after {timeout:g} s waiting for {what()}")
        time.sleep(POLL_SECONDS)


def wait_for_block_device(path: str, timeout: float | None = None) -> str:
    """Wait until ``path`` (a node or a by-* link) is a block device; return its real path."""

    def ready() -> bool:
        try:
            return stat.S_ISBLK(os.stat(path).st_mode)
        except OSError:
            return False

    poll_until(ready, device_timeout() if timeout is None else timeout, lambda: path)
    return os.path.realpath(path)


def refresh_partitions(disk: str, geometry: Mapping[int, tuple[int, int]]) -> None:
    """Make the kernel's partition list match the disk's new table.

    ``geometry`` is the table written (number -> (start, size), 512-byte
    units). Partitions the kernel knows but the table no longer has are
    dropped (``partx -d``); then ``partx -u`` adds and resizes the rest, one by
    one with BLKPG, which works even where the kernel has no GPT parser of its
    own (this test machine's kernel has none, so a BLKRRPART re-read finds
    nothing). The explicit range matters: without it partx stops at the number
    of partitions and misses any after a gap. ``blockdev --rereadpt`` is the
    fallback where partx is missing or fails.
    """
    seen = partitions_of(kernel_name(disk))
    stale = [n for n in seen if n not in geometry]
    highest = max([128, *geometry, *seen])
    errors = []
    for number in stale:
        done = run("partx", ["-d", "--nr", f"{number}:{number}", disk], check=False)
        if done.status != 0:
            errors.append(f"partx -d {number}: {done.stderr.strip()}")
    if not errors:
        done = run("partx", ["-u", "--nr", f"1:{highest}", disk], check=False)
        if done.status == 0:
            return
        errors.append(f"partx: {done.stderr.strip() or f'exit status {done.status}'}")
    done = run("blockdev", ["--rereadpt", disk], check=False)
    if done.status == 0:
        return
    errors.append(f"blockdev: {done.stderr.strip() or f'exit status {done.status}'}")
    raise ProvisionError(
        f"the kernel could not re-read the partition table of {disk}: " + "; ".join(errors)
    )


def _sys_int(name: str, attribute: str) -> int | None:
    try:
        return int((SYS_BLOCK / name / attribute).read_text())
    except (OSError, ValueError):
        return None


def wait_for_partitions(
    disk: str,
    geometry: Mapping[int, tuple[int, int]],
    timeout: float | None = None,
    dev_dir: Path = DEV,
) -> dict[int, str]:
    """Wait until the kernel shows exactly the partitions in ``geometry``.

    ``geometry`` maps number -> (start, size) in 512-byte units (sysfs units).
    Returns number -> device node path; nodes are created if nothing else does.
    """
    limit = device_timeout() if timeout is None else timeout
    disk_name = kernel_name(disk)
    deadline = time.monotonic() + limit

    def pending() -> list[str]:
        seen = partitions_of(disk_name)
        out = [f"stale partition {n}" for n in sorted(set(seen) - set(geometry))]
        for number, (start, size) in sorted(geometry.items()):
            name = seen.get(number)
            if name is None:
                out.append(f"partition {number}")
            elif (_sys_int(name, "start"), _sys_int(name, "size")) != (start, size):
                out.append(f"partition {number} with its new size")
        return out

    poll_until(lambda: not pending(), limit, lambda: f"{disk}: {', '.join(pending())}")
    names = partitions_of(disk_name)
    remaining = max(0.0, deadline - time.monotonic())
    return {n: ensure_node(names[n], remaining, dev_dir) for n in sorted(geometry)}


def ensure_node(name: str, timeout: float, dev_dir: Path = DEV) -> str:
    """Return /dev/<name> once it is the right block device, creating it if no one will."""
    majmin = (SYS_BLOCK / name / "dev").read_text().strip()
    major, minor = (int(x) for x in majmin.split(":"))
    rdev = os.makedev(major, minor)
    path = dev_dir / name

    def correct() -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return stat.S_ISBLK(st.st_mode) and st.st_rdev == rdev

    if udev_running():
        poll_until(correct, timeout, lambda: str(path))
        return str(path)
    with contextlib.suppress(DeviceTimeout):
        poll_until(correct, min(timeout, DEVTMPFS_GRACE_SECONDS), lambda: str(path))
    if not correct():
        # No udev and devtmpfs did not make it: create the node ourselves.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.mknod(path, 0o600 | stat.S_IFBLK, rdev)
    return str(path)


def link_device(kind: str, value: str, target: str, dev_dir: Path = DEV) -> Path:
    """Create (or atomically replace) /dev/disk/<kind>/<value> -> target."""
    directory = dev_dir / "disk" / kind
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / value
    relative = os.path.relpath(target, directory)
    scratch = directory / f".{value}.provision-tmp"
    with contextlib.suppress(FileNotFoundError):
        scratch.unlink()
    scratch.symlink_to(relative)
    scratch.replace(link)
    return link


def announce_change(device: str) -> None:
    """Make udev probe ``device`` again (a "change" uevent through sysfs).

    udev probes a block device when it appears and, by an inotify watch it
    sets up once that first event is done, whenever a writer closes it. A
    filesystem made right after its partition appeared can be written and
    closed before the watch exists (seen under QEMU's TCG: mkfs.btrfs just
    after partx added the partition), and udev then never learns its UUID
    or label, so the by-uuid/by-label links never come. The synthetic event
    comes after the write, so udev's probe sees the new filesystem. Without
    udevd there is nobody to tell: the links are made by wait_for_links.
    """
    if udev_running():
        (sysfs_dir(device) / "uevent").write_text("change")


def wait_for_links(
    links: Mapping[str, str], timeout: float | None = None, dev_dir: Path = DEV
) -> None:
    """Make sure each link (kind/value -> device node) exists and points at its device.

    With udevd: wait for udev to have processed the device and made the link.
    Without: create the links ourselves (see the module docstring for why).
    """
    if not links:
        return
    if not udev_running():
        for key, target in links.items():
            kind, _, value = key.partition("/")
            link_device(kind, value, target, dev_dir)
        return
    limit = device_timeout() if timeout is None else timeout
    for key, target in links.items():
        _wait_udev_initialized(target, limit)
        _wait_for_link(dev_dir / "disk" / key, target, limit)


def _wait_for_link(link: Path, target: str, timeout: float) -> None:
    def points_right() -> bool:
        return os.path.realpath(link) == os.path.realpath(target)

    poll_until(points_right, timeout, lambda: f"udev to link {link} to {target}")


def _wait_udev_initialized(node: str, timeout: float) -> None:
    """Wait until udev has processed ``node`` (its database entry exists)."""
    try:
        import pyudev
    except ImportError:  # links are still polled by the caller
        return
    context = pyudev.Context()
    name = kernel_name(node)

    def initialized() -> bool:
        try:
            return bool(pyudev.Devices.from_name(context, "block", name).is_initialized)
        except Exception:  # device not there (yet): keep polling
            return False

    poll_until(initialized, timeout, lambda: f"udev to process {node}")
