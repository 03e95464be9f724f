"""The stages, listed once in run order, and the contract they share.

Each stage module exposes a ``STAGE`` object deriving from
:class:`provision.stages.base.StageBase` (read its docstring to add one: a
name, a boot phase, what to fetch, a plan, and the steps). To add a stage,
write the module and add one line below, where it belongs in run order.

The package owns everything a stage needs to be applied safely:
:mod:`~provision.stages.staging` (fetch and verify before anything changes),
:mod:`~provision.stages.journal` (pre-images, so a killed run converges) and
:mod:`~provision.stages.crashpoint` (the test seam that kills a run). The
orchestrator (:mod:`provision.apply`) runs the stages; the initramfs
(:mod:`provision.boot.phases`) runs them phase by phase.
"""

from __future__ import annotations

import importlib

from provision.stages.base import PHASES, Stage

# Run order. A duplicate name is an error (checked by stage_order()).
STAGE_MODULES: tuple[tuple[str, str], ...] = (
    ("kargs", "provision.stages.kargs"),
    ("disks", "provision.stages.disks"),
    ("mount", "provision.stages.mount"),
    ("grow", "provision.stages.grow"),
    ("users", "provision.stages.users"),
    ("instance", "provision.stages.instance"),
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
    if stage.name != name:
        raise RuntimeError(f"{module} registers stage {stage.name!r} under the name {name!r}")
    if stage.phase not in PHASES:
        raise RuntimeError(f"stage {name!r} declares phase {stage.phase!r}; phases are {', '.join(PHASES)}")
    return stage


def stages_in_phase(phase: str) -> list[str]:
    """The names of the stages a boot phase runs, in run order."""
    return [name for name in stage_order() if load_stage(name).phase == phase]
