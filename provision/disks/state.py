"""Where disk stages leave state for later stages and processes (under /run).

The initramfs runs the disks stage and the mount/files stages in separate
processes, and the target root may not be mounted while disks run, so keys
and crypttab lines for the target, and the list of mounts to undo, wait here.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """PROVISION_STATE_DIR, default /run/provision; created mode 0700."""
    path = Path(os.environ.get("PROVISION_STATE_DIR", "/run/provision"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
