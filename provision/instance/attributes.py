"""The instance's attributes for the booted system, as Afterburn's /run/metadata/afterburn.

``/run/metadata/provision``: ``KEY=VALUE`` lines a unit reads with
``EnvironmentFile=``, e.g. ``PROVISION_INSTANCE_ID=i-0123``. Written by the
fetch phase in the initramfs; /run is carried over the switch to the real
root, so the booted system sees it. Only attributes the platform gave are
written; values are single-line and shell-safe (anything else is left out).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from provision.instance.data import InstanceData

# The variables, in file order.
VARIABLES = (
    ("PROVISION_PLATFORM", "platform"),
    ("PROVISION_INSTANCE_ID", "instance_id"),
    ("PROVISION_HOSTNAME", "local_hostname"),
    ("PROVISION_REGION", "region"),
    ("PROVISION_AVAILABILITY_ZONE", "zone"),
    ("PROVISION_IPV4_PRIVATE", "ipv4_private"),
    ("PROVISION_IPV4_PUBLIC", "ipv4_public"),
)
# Values systemd's EnvironmentFile= and a shell's `.` read alike, unquoted.
_SAFE = re.compile(r"^[A-Za-z0-9._:@/+-]{1,255}$")


def attributes_path(run_dir: Path) -> Path:
    """/run/metadata/provision for the run directory /run/provision."""
    return run_dir.parent / "metadata" / "provision"


def render(instance: InstanceData) -> str:
    lines = []
    for variable, attribute in VARIABLES:
        value = getattr(instance, attribute)
        if isinstance(value, str) and _SAFE.match(value):
            lines.append(f"{variable}={value}\n")
    return "".join(lines)


def write_attributes(run_dir: Path, instance: InstanceData) -> Path:
    """Write the file (0644: readable by the services that use it) atomically."""
    path = attributes_path(run_dir)
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render(instance))
    os.replace(tmp, path)
    return path
