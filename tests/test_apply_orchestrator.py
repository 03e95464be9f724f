"""The orchestrator: order, outcomes, exactly-once, resume, failure records.

The stages here are small real stages (they append their name to a file in
the root), so every assertion is about what ends up in the target.
"""

from __future__ import annotations

import json
import stat
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from apply_fixtures import config

from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages
from provision.config.model import Config
from provision.errors import ProvisionError, StageError
from provision.stages import stage_order
from provision.stages.base import Action, Plan, StageBase, Step, Target, just
from provision.stages.staging import Staging


@dataclass
class LogStage(StageBase):
    """Appends its name to /log in the root; can be empty or fail."""

    name: str
    empty: bool = False
    fail_with: BaseException | None = None
    planned: list[str] = field(default_factory=list)
    phase: str = "files"

    def is_empty(self, config: Config) -> bool:
        return self.empty

    def make_plan(self, config: Config, target: Target) -> Plan:
        self.planned.append(self.name)
        return Plan(self.name, [Action("append", "/log")])

    def steps(self, plan: Plan, target: Target, staged: Staging) -> AbstractContextManager[list[Step]]:
        return just([Step("/log", lambda: self._append(target))])

    def _append(self, target: Target) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with (target.root / "log").open("a") as f:
            f.write(self.name + "\n")


def request(root: Path, sha: str = "a" * 64, **kw: object) -> ApplyRequest:
    return ApplyRequest(config({}), sha, root, **kw)  # type: ignore[arg-type]


def record(root: Path) -> dict[str, object]:
    return json.loads((root / "etc/.provision/result.json").read_text())  # type: ignore[no-any-return]


def test_runs_in_order_and_records_each_outcome(tmp_path: Path) -> None:
    one, two, three = LogStage("one"), LogStage("two", empty=True), LogStage("three")
    outcome = apply_config(request(tmp_path, platform="aws", instance_id="i-1"), [one, two, three])
    assert (tmp_path / "log").read_text() == "one\nthree\n"
    assert two.planned == []  # an empty stage is never planned
    rec = record(tmp_path)
    assert rec["status"] == "succeeded" and rec["platform"] == "aws" and rec["instance_id"] == "i-1"
    assert [(s["name"], s["status"]) for s in rec["stages"]] == [  # type: ignore[attr-defined, index]
        ("one", "applied"), ("two", "empty"), ("three", "applied")]
    assert not outcome.already_done
    result = tmp_path / "etc/.provision/result.json"
    assert stat.S_IMODE(result.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "etc/.provision").stat().st_mode) == 0o700


def test_same_config_again_is_a_noop_unless_forced(tmp_path: Path) -> None:
    stages = [LogStage("one")]
    apply_config(request(tmp_path), stages)
    assert apply_config(request(tmp_path), stages).already_done
    assert (tmp_path / "log").read_text() == "one\n"
    apply_config(request(tmp_path, force=True), stages)
    assert (tmp_path / "log").read_text() == "one\none\n"
    with pytest.raises(ProvisionError, match=r"already provisioned .* with another config"):
        apply_config(request(tmp_path, sha="b" * 64), stages)
    apply_config(request(tmp_path, sha="b" * 64, force=True), stages)
    assert (tmp_path / "log").read_text() == "one\none\none\n"


def test_failure_is_recorded_and_the_rerun_resumes(tmp_path: Path) -> None:
    failing = LogStage("two", fail_with=StageError("two", "/etc/x", "boom"))
    with pytest.raises(StageError, match="stage two: /etc/x: boom"):
        apply_config(request(tmp_path), [LogStage("one"), failing, LogStage("three")])
    rec = record(tmp_path)
    stages = {s["name"]: s for s in rec["stages"]}  # type: ignore[attr-defined]
    assert rec["status"] == "failed"
    assert stages["two"]["status"] == "failed" and stages["two"]["item"] == "/etc/x"
    assert stages["two"]["error"] == "boom" and stages["three"]["status"] == "not-run"
    assert (tmp_path / "log").read_text() == "one\n"

    lines: list[str] = []
    apply_config(request(tmp_path), [LogStage("one"), LogStage("two"), LogStage("three")], report=lines.append)
    assert (tmp_path / "log").read_text() == "one\ntwo\nthree\n"  # "one" was not applied twice
    assert lines[0] == "one: already applied"
    assert record(tmp_path)["status"] == "succeeded"


def test_os_errors_become_stage_errors(tmp_path: Path) -> None:
    broken = LogStage("one", fail_with=PermissionError(13, "Permission denied", "/x"))
    with pytest.raises(StageError, match="stage one: /log: Permission denied"):
        apply_config(request(tmp_path), [broken])


def test_groups_of_stages_share_one_record(tmp_path: Path) -> None:
    apply_config(request(tmp_path), [LogStage("disks")])
    apply_config(request(tmp_path), [LogStage("files")])
    names = [s["name"] for s in record(tmp_path)["stages"]]  # type: ignore[attr-defined]
    assert names == ["disks", "files"]


def test_state_root_keeps_the_record_elsewhere(tmp_path: Path) -> None:
    root, state = tmp_path / "root", tmp_path / "run"
    root.mkdir()
    state.mkdir()
    apply_config(request(root, state_root=state), [LogStage("disks")])
    assert not (root / "etc/.provision").exists()
    assert record(state)["status"] == "succeeded"


def test_load_stages_knows_the_registry() -> None:
    assert [s.name for s in load_stages(["units", "files"])] == ["files", "units"]  # run order wins
    with pytest.raises(ProvisionError, match="unknown stage 'bogus'"):
        load_stages(["bogus"])
    assert stage_order()[:3] == ["kargs", "disks", "mount"]
