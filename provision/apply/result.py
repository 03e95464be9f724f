"""The result record kept inside the target: was it provisioned, when, how.

Written atomically (mode 0600) at the start of a run, after every stage and
at the end, so even a run killed half way leaves an accurate "running"
record. It holds hashes and outcomes, never contents or secrets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from provision.stages.journal import STATE_DIR, ensure_state_dir
from provision.target.tree import TargetTree

RESULT_PATH = STATE_DIR + "/result.json"
FORMAT = 1

# Stage outcomes.
APPLIED = "applied"  # ran and finished
EMPTY = "empty"  # nothing in the config for it
FAILED = "failed"
NOT_RUN = "not-run"  # an earlier stage failed, or not selected in this run


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StageOutcome:
    name: str
    status: str = NOT_RUN
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    changes: int | None = None
    item: str | None = None  # on failure: which item
    error: str | None = None  # on failure: the cause


@dataclass
class ResultRecord:
    config_sha256: str
    provision_version: str
    platform: str | None = None
    instance_id: str | None = None
    config_digest: str | None = None
    status: str = "running"  # running, succeeded, failed
    started: str = field(default_factory=now)
    finished: str | None = None
    stages: list[StageOutcome] = field(default_factory=list)
    error: str | None = None
    format: int = FORMAT

    def outcome(self, name: str) -> StageOutcome:
        for outcome in self.stages:
            if outcome.name == name:
                return outcome
        outcome = StageOutcome(name)
        self.stages.append(outcome)
        return outcome

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        stages = [StageOutcome(**s) for s in data.get("stages", [])]
        fields = {k: v for k, v in data.items() if k != "stages" and k in cls.__dataclass_fields__}
        return cls(**fields, stages=stages)


def read_result(tree: TargetTree) -> ResultRecord | None:
    raw = tree.read_bytes(RESULT_PATH)
    if raw is None:
        return None
    try:
        return ResultRecord.from_dict(json.loads(raw))
    except (ValueError, TypeError):
        return None


def write_result(tree: TargetTree, record: ResultRecord) -> None:
    ensure_state_dir(tree)
    tree.write_file(RESULT_PATH, [record.to_json().encode()], mode=0o600, uid=0, gid=0)
