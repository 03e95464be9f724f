"""The contract every stage follows, and the one skeleton that applies it.

A stage is a small class deriving from :class:`StageBase`, registered once
in :data:`provision.stages.STAGE_MODULES`. It declares:

``name``
    Its name in plans, results and ``--stages``.
``phase``
    The boot phase that runs it (one of :data:`PHASES`): ``disks`` before the
    root is mounted, ``mount`` to mount it, ``files`` for everything written
    inside it. ``provision apply`` runs every stage in one process; at boot
    each phase is its own step, so a stage without a phase the initramfs runs
    would be silently skipped there (tests/test_stage_contract.py refuses it).
``is_empty(config)``
    A cheap check: an empty section never touches udev, disks or the network.
``needs(config, target)``
    Every resource (remote file, key file, image archive) the stage will
    write, as :class:`~provision.stages.staging.Need`\\ s, from the config
    alone (the target may not be mounted yet): the orchestrator fetches and
    verifies the needs of ALL the run's stages before the first stage
    changes anything. A need may be left out only when the target already
    holds it, verified by hash (a preload archive in place).
``make_plan(config, target)``
    What would change, as pure data (:class:`Plan`, shown by ``provision
    plan``), computed without changing anything; refuses conflicts here.
``steps(plan, target, staged)``
    A context manager yielding the stage's :class:`Step`\\ s in order. It
    holds what the steps share (an open :class:`~provision.target.tree.TargetTree`,
    a journal of pre-images recorded before the first step, see
    :mod:`provision.stages.journal`) and cleans up on failure. Each step's
    ``change`` makes one item's final state (so applying it twice equals
    applying it once) and reads fetched bytes only from ``staged``.

The skeleton (:meth:`StageBase.apply`) does the rest the same way for every
stage: stage the needs when the caller has not, run each step, turn a
failure into a :class:`~provision.errors.StageError` naming the stage and
the item, and count a crash point after each changed item (the test seam of
:mod:`provision.stages.crashpoint`, with which tests prove a killed run
converges on rerun).

A stage that holds something after applying (the mount stage's mounts) also
has ``release(target)``, called by whoever ran it: ``provision apply`` at the
end of its run, the initramfs in its umount step.

A new stage, in outline (then one line in ``STAGE_MODULES``)::

    class MotdStage(StageBase):
        name = "motd"
        phase = "files"

        def is_empty(self, config):
            return config.motd is None

        def needs(self, config, target):  # fetched before ANY stage changes anything
            return [Need("motd", "/etc/motd", config.motd)]

        def make_plan(self, config, target):
            return Plan(self.name, [Action("replace", "/etc/motd")])

        @contextlib.contextmanager
        def steps(self, plan, target, staged):
            with TargetTree(target.root) as tree:
                def write():
                    with staged.open(self.name, "motd") as handle:
                        tree.write_file("/etc/motd", copy_chunks(handle), mode=0o644, uid=0, gid=0)
                yield [Step("/etc/motd", write)]

Never fetch inside ``steps`` (declare it in ``needs``), never catch and
re-wrap errors per item (the skeleton does), never loop over items calling
the crash point yourself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from provision.config.model import Config

if TYPE_CHECKING:
    from provision.instance.data import InstanceData
    from provision.stages.staging import Need, Staging

# The boot phases that run engine stages, in boot order (see provision.boot.phases).
PHASES = ("disks", "mount", "files")


@dataclass(frozen=True)
class RootFacts:
    """What was read from the image's root filesystem before it was mounted.

    At boot the disks phase plans against the run directory, not the image
    (the root is mounted only by the mount phase); what a plan must know about
    the image is read from the root device beforehand (read-only, unmounted
    again before any disk changes, :mod:`provision.boot.rootpeek`).
    """

    where: str  # for messages: "root device LABEL=root (/dev/vda2)"
    systemd: int | None = None  # the image's systemd version; None: not found
    unreadable: str | None = None  # why the root could not be read, when it could not


@dataclass(frozen=True)
class Target:
    """Where a run applies: the target root, and what the platform said about the instance."""

    root: Path
    # From the platform's metadata (the boot's fetch phase); None outside a boot.
    instance: InstanceData | None = None
    # The image as read before the root was mounted (the boot's disks phase,
    # whose ``root`` is the run directory); None: ``root`` is the image itself.
    image: RootFacts | None = None


@dataclass(frozen=True)
class Action:
    """One line of a plan: ``kind`` is create, replace, append, delete, unchanged, ..."""

    kind: str
    item: str
    detail: str = ""


@dataclass
class Plan:
    stage: str
    actions: list[Action] = field(default_factory=list)
    # Stage-private data computed while planning and consumed by apply.
    data: Any = None
    # The config it was planned from (its needs are staged from it); set by StageBase.plan.
    config: Config | None = field(default=None, repr=False)

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.kind != "unchanged"]


class Step(NamedTuple):
    """One item of a stage: ``change`` makes its final state.

    ``change`` returns False when it found nothing to do (no crash point is
    counted then); anything else counts as a change.
    """

    item: str
    change: Callable[[], object]


class Stage(Protocol):
    """What the orchestrator and the boot phases use (StageBase implements it)."""

    name: str
    phase: str

    def is_empty(self, config: Config) -> bool: ...

    def needs(self, config: Config, target: Target) -> Sequence[Need]: ...

    def plan(self, config: Config, target: Target) -> Plan: ...

    def apply(self, plan: Plan, target: Target, staged: Staging | None = None) -> None: ...


class StageBase:
    """The skeleton: subclasses give name, phase, is_empty, make_plan, steps (and needs)."""

    name: str
    phase: str

    def is_empty(self, config: Config) -> bool:
        raise NotImplementedError

    def needs(self, config: Config, target: Target) -> Sequence[Need]:
        return ()

    def make_plan(self, config: Config, target: Target) -> Plan:
        raise NotImplementedError

    def steps(
        self, plan: Plan, target: Target, staged: Staging
    ) -> contextlib.AbstractContextManager[Iterable[Step]]:
        raise NotImplementedError

    def plan(self, config: Config, target: Target) -> Plan:
        plan = self.make_plan(config, target)
        plan.config = config
        return plan

    def apply(self, plan: Plan, target: Target, staged: Staging | None = None) -> None:
        """Stage the needs (unless the caller did), then apply each step in order."""
        with contextlib.ExitStack() as stack:
            if staged is None:
                from provision.stages.staging import Staging

                assert plan.config is not None, "a plan made by StageBase.plan"
                staged = stack.enter_context(Staging(plan.config, target.root))
                staged.fetch_all(self.name, self.needs(plan.config, target))
            with self.steps(plan, target, staged) as steps:
                for step in steps:
                    apply_step(self.name, step)


def apply_step(stage: str, step: Step) -> None:
    """Apply one item; a failure becomes a StageError naming the stage and the item."""
    from provision.errors import ProvisionError, StageError
    from provision.stages import crashpoint

    try:
        changed = step.change()
    except StageError:
        raise
    except ProvisionError as exc:
        raise StageError(stage, step.item, str(exc)) from exc
    except OSError as exc:
        raise StageError(stage, step.item, exc.strerror or str(exc)) from exc
    if changed is not False:
        crashpoint.item_done()


@contextlib.contextmanager
def just(steps: Iterable[Step]) -> Iterator[Iterable[Step]]:
    """``steps`` for a stage whose steps share nothing that needs opening or cleaning up."""
    yield steps


def releases(stage: Stage) -> bool:
    return callable(getattr(stage, "release", None))
