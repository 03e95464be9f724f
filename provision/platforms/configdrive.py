"""Wait for a labelled filesystem and read a file from it (config-2, cidata).

Polling for the label is bounded by the caller's deadline and stops as soon
as another source has answered; there is no udev event to wait on in a bare
initramfs or a container.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from provision.platforms.base import Found, NoConfig, Result
from provision.platforms.media import read_from_filesystem
from provision.platforms.settings import Settings
from provision.platforms.systree import find_labelled_device

POLL_INTERVAL = 0.2


def wait_for_label(
    settings: Settings, labels: Sequence[str], seconds: float | None,
    stop: threading.Event | None = None,
) -> tuple[str, str] | None:
    """(label, device) once one of ``labels`` appears, or None after ``seconds`` (None: no
    limit) or ``stop``."""
    stop = stop or threading.Event()
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        hit = find_labelled_device(settings, labels)
        if hit or (deadline is not None and time.monotonic() >= deadline):
            return hit
        pause = POLL_INTERVAL if deadline is None else min(
            POLL_INTERVAL, max(0.0, deadline - time.monotonic()))
        if stop.wait(pause):
            return None


def read_labelled(
    settings: Settings, labels: Sequence[str], path: str, what: str,
    wait: float | None = 0.0, stop: threading.Event | None = None,
) -> Result | None:
    """``path`` from the first filesystem with one of ``labels``.

    None: no such filesystem; NoConfig: it is there but holds no (or empty) ``path``.
    """
    hit = wait_for_label(settings, labels, wait, stop)
    if hit is None:
        return None
    label, device = hit
    data = read_from_filesystem(device, path)
    if data is None:
        return NoConfig(f"{what} {device} (label {label}) has no {path}")
    if not data.strip():
        return NoConfig(f"{what} {device} (label {label}): {path} is empty")
    return Found(data, f"{what} {device} (label {label}) {path}")
