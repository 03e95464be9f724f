"""Run the stages in order against a target root, exactly once.

Before the first stage changes anything, the needs of every stage that will
run (remote file contents, LUKS key files, container image archives) are
fetched, verified and staged inside the target (:mod:`provision.stages.staging`);
a failure there fails the run with nothing changed. Then each stage plans
and applies in turn, reading fetched bytes only from the staging.

A run is recorded in the target (:mod:`provision.apply.result`). The same
config applied again to the same stages is a no-op that says so, unless
forced. A run that was interrupted or failed resumes: stages already applied
for this config are kept, the rest run again (each stage converges, see
:mod:`provision.stages.journal`). The first failing stage stops the run and is
recorded with its item and cause; later stages are marked not run.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision import __version__
from provision.apply.lock import run_lock
from provision.apply.result import (
    APPLIED,
    EMPTY,
    FAILED,
    NOT_RUN,
    BadResultRecord,
    ResultRecord,
    now,
    read_result,
    write_result,
)
from provision.config.model import Config
from provision.errors import ProvisionError, StageError
from provision.instance.data import InstanceData
from provision.stages import STAGE_MODULES, load_stage, stage_order
from provision.stages.base import Plan, RootFacts, Stage, Target, releases
from provision.stages.journal import config_digest
from provision.stages.staging import Staging, verify_only
from provision.target.tree import TargetTree

log = logging.getLogger(__name__)

DONE = (APPLIED, EMPTY)


def load_stages(names: Sequence[str] | None = None) -> list[Stage]:
    """The registered stages in run order (only ``names`` if given)."""
    order = stage_order()
    wanted = list(order) if names is None else list(names)
    unknown = [n for n in wanted if n not in order]
    if unknown:
        raise ProvisionError(
            f"unknown stage {unknown[0]!r}; stages are: {', '.join(order)}"
        )
    modules = dict(STAGE_MODULES)
    stages = []
    for name in order:
        if name not in wanted:
            continue
        if importlib.util.find_spec(modules[name]) is None:
            raise ProvisionError(f"stage {name!r} is not available in this build")
        stages.append(load_stage(name))
    return stages


@dataclass(frozen=True)
class ApplyRequest:
    config: Config
    config_sha256: str  # of the config as given (the bytes a user can sha256sum)
    root: Path
    platform: str | None = None
    instance_id: str | None = None
    force: bool = False
    # Where the result record lives (its etc/.provision/); default: the target root.
    # The disks group runs before the root is mounted and can keep its record elsewhere.
    state_root: Path | None = None
    # Stages a later process runs (the initramfs's later phases): their needs
    # are fetched and verified (not kept) before this run changes anything.
    verify_later: tuple[Stage, ...] = ()
    # What the platform said about this instance (provision.instance), for the
    # stages that act on it (default user's keys, hostname, growing the root).
    instance: InstanceData | None = None
    # The image read from the root device when ``root`` is not the image yet
    # (the boot's disks phase); see provision.stages.base.RootFacts.
    image: RootFacts | None = None

    @property
    def record_root(self) -> Path:
        return self.state_root or self.root

    @property
    def target(self) -> Target:
        return Target(self.root, self.instance, self.image)


@dataclass
class ApplyOutcome:
    record: ResultRecord
    already_done: bool = False
    plans: list[Plan] = field(default_factory=list)
    error: StageError | None = None


def _same_config(previous: ResultRecord | None, request: ApplyRequest) -> bool:
    return previous is not None and previous.config_sha256 == request.config_sha256


def _stage_error(stage: str, exc: BaseException) -> StageError:
    if isinstance(exc, StageError):
        return exc
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return StageError(stage, "-", f"{exc.strerror or exc}{where}")
    return StageError(stage, "-", str(exc))


def apply_config(
    request: ApplyRequest,
    stages: Sequence[Stage],
    *,
    report: Callable[[str], None] = lambda line: None,
    release: bool = False,
) -> ApplyOutcome:
    """Apply ``stages`` (in the given order) and record the outcome in the target.

    With ``release``, what the stages hold (mounts) is given back when the run
    ends, failed or not, before the final record is written. Raises
    StageError after recording when a stage fails. Runs on one root are
    serialised by the root's run lock (:mod:`provision.apply.lock`).
    """
    with run_lock(request.record_root, report=report):
        return _apply_locked(request, stages, report, release)


def _previous_record(request: ApplyRequest) -> ResultRecord | None:
    try:
        with TargetTree(request.record_root) as tree:
            return read_result(tree)
    except BadResultRecord as exc:
        if not request.force:
            raise ProvisionError(
                f"{exc}; whether this root was provisioned is unknown, so nothing was changed "
                "(use --force to apply anyway; the record is then replaced)"
            ) from None
        log.warning("%s; replacing it (--force)", exc)
        return None


def _apply_locked(
    request: ApplyRequest, stages: Sequence[Stage], report: Callable[[str], None], release: bool,
) -> ApplyOutcome:
    target = request.target
    previous = _previous_record(request)
    names = [s.name for s in stages]
    same = _same_config(previous, request)
    if previous is not None and not same and previous.status == "succeeded" and not request.force:
        raise ProvisionError(
            f"{request.root} was already provisioned at {previous.finished or previous.started} "
            f"with another config (sha256 {previous.config_sha256[:12]}...); "
            "use --force to apply this one on top"
        )
    if (
        same and previous is not None and not request.force
        and all(previous.outcome(n).status in DONE for n in names)
    ):
        return ApplyOutcome(previous, already_done=True)

    record = ResultRecord(
        config_sha256=request.config_sha256,
        provision_version=__version__,
        platform=request.platform,
        instance_id=request.instance_id,
        config_digest=config_digest(request.config),
    )
    if same and previous is not None:
        # Resuming (or running another group of stages) for the same config.
        record.started = previous.started
        record.stages = previous.stages
    for name in names:
        record.outcome(name)
    _write(request.record_root, record)

    outcome = ApplyOutcome(record)
    held: list[Stage] = []
    pending = [s for s in stages if not (same and not request.force and record.outcome(s.name).status in DONE)]
    with Staging(request.config, request.root) as staged:
        if _prefetch(request, pending, staged, record, outcome, report):
            try:
                _run_stages(request, stages, record, outcome, held, report, same, staged)
            finally:
                if release:
                    for stage in reversed(held):
                        stage.release(target)  # type: ignore[attr-defined]
    if outcome.error is not None:
        _write(request.record_root, record)
        raise outcome.error
    record.status = "succeeded" if all(s.status in DONE for s in record.stages) else "running"
    record.error = None
    record.finished = now()
    _write(request.record_root, record)
    return outcome


def _run_stages(
    request: ApplyRequest,
    stages: Sequence[Stage],
    record: ResultRecord,
    outcome: ApplyOutcome,
    held: list[Stage],
    report: Callable[[str], None],
    same: bool,
    staged: Staging,
) -> None:
    """Run the stages; a failure is recorded in ``record`` and ``outcome.error``."""
    target = request.target
    for index, stage in enumerate(stages):
        result = record.outcome(stage.name)
        if same and not request.force and result.status in DONE:
            report(f"{stage.name}: already {result.status}")
            continue
        result.started = now()
        started = time.monotonic()
        try:
            if stage.is_empty(request.config):
                result.status = EMPTY
                result.changes = 0
            else:
                plan = stage.plan(request.config, target)
                if releases(stage):
                    held.append(stage)
                stage.apply(plan, target, staged)
                outcome.plans.append(plan)
                result.status = APPLIED
                result.changes = len(plan.changes)
        except (ProvisionError, OSError) as exc:
            _record_failure(record, outcome, stage, stages[index + 1:], exc)
            result.seconds = round(time.monotonic() - started, 3)
            return
        result.item = result.error = None
        result.finished = now()
        result.seconds = round(time.monotonic() - started, 3)
        report(f"{stage.name}: {result.status} ({result.changes} changes, {result.seconds:.3f} s)")
        _write(request.record_root, record)


def _prefetch(
    request: ApplyRequest,
    pending: Sequence[Stage],
    staged: Staging,
    record: ResultRecord,
    outcome: ApplyOutcome,
    report: Callable[[str], None],
) -> bool:
    """Fetch and verify what every pending stage needs; False (failure recorded) if one fails.

    Runs before the first stage applies, so a failed fetch leaves users,
    partitions and files as they were.
    """
    config = request.config
    target = request.target
    work = [s for s in pending if not s.is_empty(config)]
    later = [s for s in request.verify_later if not s.is_empty(config)]
    if not work:
        return True
    stage = work[0]
    try:
        count = 0
        for stage in work:
            needs = stage.needs(config, target)
            staged.fetch_all(stage.name, needs)
            count += len(needs)
        if any(s.phase == "disks" for s in work):  # something is about to be partitioned
            for stage in later:
                verify_only(config, stage.name, stage.needs(config, target))
    except (ProvisionError, OSError) as exc:
        _record_failure(record, outcome, stage, [s for s in pending if s is not stage], exc)
        return False
    if count:
        report(f"fetched and verified {count} resource(s) before changing anything")
    return True


def _record_failure(
    record: ResultRecord, outcome: ApplyOutcome, stage: Stage, not_run: Sequence[Stage], exc: BaseException,
) -> None:
    error = _stage_error(stage.name, exc)
    result = record.outcome(stage.name)
    result.status = FAILED
    result.item, result.error = error.item, error.cause
    result.finished = now()
    for later in not_run:
        record.outcome(later.name).status = NOT_RUN
    record.status = FAILED
    record.error = str(error)
    record.finished = now()
    error.__cause__ = exc
    outcome.error = error


def plan_config(config: Config, root: Path, stages: Sequence[Stage]) -> list[Plan]:
    """Every non-empty stage's plan, computed without changing the target.

    A stage's plan assumes the stages before it have run; for stages that
    build on each other (files owned by a user the config creates) the plan
    says so in the action's detail instead of failing.
    """
    target = Target(root)
    plans = []
    for stage in stages:
        if stage.is_empty(config):
            continue
        try:
            plans.append(stage.plan(config, target))
        except (ProvisionError, OSError) as exc:
            raise _stage_error(stage.name, exc) from exc
    return plans


def _write(root: Path, record: ResultRecord) -> None:
    try:
        with TargetTree(root) as tree:
            write_result(tree, record)
    except OSError as exc:  # a read-only or full target, say
        raise ProvisionError(f"cannot record the run's result in {root}: {exc.strerror or exc}") from exc
