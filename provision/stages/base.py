"""The contract every stage follows.

A stage turns the config into a :class:`Plan` (pure data: what would change,
computed without changing anything), and applies that plan once. ``is_empty``
is a cheap check so an empty section never touches udev, disks or the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provision.config.model import Config


@dataclass(frozen=True)
class Target:
    """Where a run applies: the target root and run-wide settings."""

    root: Path
    dry_run: bool = False


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

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.kind != "unchanged"]


class Stage(Protocol):
    name: str

    def is_empty(self, config: Config) -> bool: ...

    def plan(self, config: Config, target: Target) -> Plan: ...

    def apply(self, plan: Plan, target: Target) -> None: ...


class Releasing(Stage, Protocol):
    """A stage whose apply holds something (mounts) that ``release`` gives back.

    Who ran it decides when: ``provision apply`` releases at the end of its
    run, even after a failure; the initramfs keeps the mounts across stage
    processes and releases them in its umount stage.
    """

    def release(self, target: Target) -> None: ...


def apply_item(stage: str, item: str, change: Callable[[], object]) -> None:
    """Apply one item; a failure becomes a StageError naming the stage and the item.

    Each applied item is a crash point for the tests (provision.apply.crashpoint).
    """
    from provision.apply import crashpoint
    from provision.errors import ProvisionError, StageError

    try:
        change()
    except ProvisionError as exc:
        raise StageError(stage, item, str(exc)) from exc
    except OSError as exc:
        raise StageError(stage, item, exc.strerror or str(exc)) from exc
    crashpoint.item_done()


def releases(stage: Stage) -> bool:
    return callable(getattr(stage, "release", None))
