"""The stages, listed once in run order.

Each stage module exposes a ``STAGE`` object following :class:`provision.stages.base.Stage`.
The initramfs runs them in groups (see provision.stages.base.GROUPS): the
``disks`` group before the root is mounted, ``mount``/``files``/``umount`` after.
"""

from __future__ import annotations

import importlib

from provision.stages.base import Stage

# Run order. A duplicate name is an error (checked by stage_order()).
STAGE_MODULES: tuple[tuple[str, str], ...] = (
    ("kargs", "provision.stages.kargs"),
    ("disks", "provision.stages.disks"),
    ("mount", "provision.stages.mount"),
    ("users", "provision.stages.users"),
    ("files", "provision.stages.files"),
    ("network", "provision.stages.network"),
    ("units", "provision.stages.units"),
    ("containers", "provision.stages.containers"),
)


def stage_order() -> list[str]:
    names = [name for name, _ in STAGE_MODULES]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate stage names: {sorted(duplicates)}")
    return names


def load_stage(name: str) -> Stage:
    module = dict(STAGE_MODULES)[name]
    stage: Stage = importlib.import_module(module).STAGE
    return stage
