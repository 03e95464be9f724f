"""The units stage: systemd units, drop-ins, enable/disable and masks.

Units and drop-ins are written under /etc/systemd/system (0644 root:root,
always replaced, as Ignition does). ``enabled`` is recorded twice so the
first boot starts the unit however the image boots: as a preset line in
:data:`PRESET_PATH` (``enable foo.service``, ``enable foo@.service bar`` for
instances) and as the links its [Install] section implies
(:mod:`provision.target.unit_links`), exactly those ``systemctl enable``
makes. ``enabled: false`` removes those links; ``mask`` links the unit to
/dev/null and ``mask: false`` removes such a link. Every change is a
computed final state written atomically, so a rerun after a crash converges.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

from provision.config.model import Config, Unit
from provision.errors import ProvisionError, StageError
from provision.stages import crashpoint
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.staging import Staging
from provision.target.tree import TargetTree
from provision.target.unit_links import SEARCH_PATH, UNIT_DIR, UnitName, enable_links

log = logging.getLogger(__name__)

NAME = "units"
PRESET_PATH = "/etc/systemd/system-preset/20-provision.preset"
UNIT_MODE = 0o644


@dataclass(frozen=True)
class Write:
    path: str
    text: str


@dataclass(frozen=True)
class Link:
    path: str
    target: str


@dataclass
class UnitsPlan:
    writes: list[Write] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def preset_text(units: tuple[Unit, ...]) -> str | None:
    """The preset file: one line per enabled/disabled unit; instances grouped per template."""
    lines: dict[tuple[str, str], list[str]] = {}
    for unit in units:
        if unit.enabled is None:
            continue
        verb = "enable" if unit.enabled else "disable"
        name = UnitName.parse(unit.name)
        instances = lines.setdefault((verb, name.template), [])
        if name.instance:
            instances.append(name.instance)
    if not lines:
        return None
    out = []
    for (verb, template), instances in lines.items():
        out.append(" ".join([verb, template, *dict.fromkeys(instances)]))
    return "\n".join(out) + "\n"


def _check_name(unit: str, name: str) -> None:
    """Unit and drop-in names are file names: never a path (validation says so too)."""
    if "/" in name or name in ("", ".", "..") or "\0" in name:
        raise StageError(NAME, unit, f"{name!r} is not a valid file name")


class _Reader:
    """Unit files as the target will have them once this stage's writes are done."""

    def __init__(self, tree: TargetTree, written: dict[str, str], masked: set[str]) -> None:
        self.tree = tree
        self.written = written
        self.masked = masked

    def __call__(self, name: str) -> tuple[str, str] | None:
        for directory in SEARCH_PATH:
            path = f"{directory}/{name}"
            if path in self.written:
                return path, self.written[path]
            if directory == UNIT_DIR and name in self.masked:
                return None
            try:
                data = self.tree.read_bytes(path)
            except ProvisionError as exc:  # a FIFO, device or directory: named, never opened
                log.warning("units: %s; not used as a unit file", exc)
                data = None
            if data is not None:
                return path, data.decode("utf-8", "replace")
        return None


def _text_action(tree: TargetTree, path: str, text: str) -> str:
    state = tree.state(path)
    if state is None:
        return "create"
    same_meta = state.kind == "file" and state.mode == UNIT_MODE and (state.uid, state.gid) == (0, 0)
    if same_meta and tree.read_bytes(path) == text.encode():
        return "unchanged"
    return "replace"


def _link_action(tree: TargetTree, path: str, target: str) -> str:
    state = tree.state(path)
    if state is None:
        return "create"
    if state.kind == "link" and state.link_target == target:
        return "unchanged"
    return "replace"


class UnitsStage(StageBase):
    name = NAME
    phase = "files"

    def is_empty(self, config: Config) -> bool:
        return not config.systemd.units

    def make_plan(self, config: Config, target: Target) -> Plan:
        data = UnitsPlan()
        actions: list[Action] = []
        units = config.systemd.units
        with TargetTree(target.root) as tree:
            try:
                self._plan_files(tree, units, data, actions)
                self._plan_links(tree, units, data, actions)
            except ProvisionError as exc:
                if isinstance(exc, StageError):
                    raise
                raise StageError(NAME, "-", str(exc)) from exc
        for warning in data.warnings:
            log.warning("units: %s", warning)
        return Plan(NAME, actions, data)

    @staticmethod
    def _plan_files(tree: TargetTree, units: tuple[Unit, ...], data: UnitsPlan, actions: list[Action]) -> None:
        for unit in units:
            _check_name(unit.name, unit.name)
            path = f"{UNIT_DIR}/{unit.name}"
            for dropin in unit.dropins:
                _check_name(unit.name, dropin.name)
                if dropin.contents is None:
                    continue
                dropin_path = f"{path}.d/{dropin.name}"
                data.writes.append(Write(dropin_path, dropin.contents))
                actions.append(Action(_text_action(tree, dropin_path, dropin.contents), dropin_path, "drop-in"))
            if unit.mask:
                data.links.append(Link(path, "/dev/null"))
                actions.append(Action(_link_action(tree, path, "/dev/null"), path, "mask"))
                continue
            if unit.contents is not None:
                data.writes.append(Write(path, unit.contents))
                actions.append(Action(_text_action(tree, path, unit.contents), path, "unit"))
            if unit.mask is False and unit.contents is None:  # new contents replace a mask anyway
                state = tree.state(path)
                if state is not None and state.kind == "link" and state.link_target == "/dev/null":
                    data.removals.append(path)
                    actions.append(Action("delete", path, "unmask"))
        preset = preset_text(units)
        if preset is not None:
            data.writes.append(Write(PRESET_PATH, preset))
            actions.append(Action(_text_action(tree, PRESET_PATH, preset), PRESET_PATH, "preset"))

    @staticmethod
    def _plan_links(tree: TargetTree, units: tuple[Unit, ...], data: UnitsPlan, actions: list[Action]) -> None:
        written = {w.path: w.text for w in data.writes}
        masked = {u.name for u in units if u.mask}
        reader = _Reader(tree, written, masked)
        wanted: dict[str, str] = {}
        unwanted: list[str] = []
        for unit in units:
            if unit.enabled is None:
                continue
            if unit.enabled and unit.mask:
                data.warnings.append(f"{unit.name}: masked, so not linked although enabled")
                continue
            links, warnings = enable_links(unit.name, reader)
            data.warnings.extend(warnings)
            for link in links:
                if unit.enabled:
                    wanted[link.path] = link.target
                else:
                    unwanted.append(link.path)
        for path, target in wanted.items():
            data.links.append(Link(path, target))
            actions.append(Action(_link_action(tree, path, target), path, "enable"))
        for path in dict.fromkeys(unwanted):
            if path in wanted:
                continue
            state = tree.state(path)
            if state is not None and state.kind == "link":
                data.removals.append(path)
                actions.append(Action("delete", path, "disable"))

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[list[Step]]:
        data: UnitsPlan = plan.data
        with TargetTree(target.root) as tree, tree.deferred():
            tree.on_commit = crashpoint.item_done
            steps = [Step(w.path, partial(tree.write_file, w.path, [w.text.encode()], mode=UNIT_MODE,
                                          uid=0, gid=0)) for w in data.writes]
            steps += [Step(link.path, partial(tree.symlink, link.path, link.target, uid=0, gid=0))
                      for link in data.links]
            steps += [Step(path, partial(tree.remove, path)) for path in data.removals]
            yield steps


STAGE = UnitsStage()
