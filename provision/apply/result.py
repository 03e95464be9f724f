"""The result record kept inside the target: was it provisioned, when, how.

Written atomically (mode 0600) at the start of a run, after every stage and
at the end, so even a run killed half way leaves an accurate "running"
record. It holds hashes and outcomes, never contents or secrets.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from provision.errors import ProvisionError
from provision.stages.journal import STATE_DIR, ensure_state_dir
from provision.target.tree import TargetMissingError, TargetTree

RESULT_PATH = STATE_DIR + "/result.json"
FORMAT = 1
_RECORD_LIMIT = 1 << 20  # a record is a few KiB; anything larger is not ours

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


class BadResultRecord(ProvisionError):
    """The record exists but is not one: the root's state is unknown (never "not provisioned")."""

    def __init__(self, root: object, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{root}: the result record {RESULT_PATH} {reason}")


def read_result(tree: TargetTree) -> ResultRecord | None:
    """The record, None if there is none; BadResultRecord if it is corrupt or not a regular file."""
    raw = _record_bytes(tree)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadResultRecord(tree.root, "is empty" if not raw.strip() else "is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadResultRecord(tree.root, f"is not a JSON object (a {type(data).__name__})")
    try:
        record = ResultRecord.from_dict(data)
    except (TypeError, ValueError, AttributeError):
        raise BadResultRecord(tree.root, "is not a result record (fields missing or of the wrong type)") from None
    if not isinstance(record.config_sha256, str) or not isinstance(record.status, str) or not all(
        isinstance(s.name, str) and isinstance(s.status, str) for s in record.stages
    ):
        raise BadResultRecord(tree.root, "is not a result record (fields of the wrong type)")
    return record


def _record_bytes(tree: TargetTree) -> bytes | None:
    """The record's bytes; never through a symlink, never from a FIFO or device (no hang)."""
    try:
        with tree.parent(RESULT_PATH) as (dir_fd, name):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except (FileNotFoundError, TargetMissingError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadResultRecord(tree.root, "is a symbolic link") from None
        raise BadResultRecord(tree.root, f"cannot be read: {exc.strerror}") from None
    except ProvisionError as exc:  # a state directory that is not one
        raise BadResultRecord(tree.root, f"cannot be reached: {exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
        raise BadResultRecord(tree.root, f"is {kind}, not a regular file")
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(_RECORD_LIMIT + 1)
    if len(raw) > _RECORD_LIMIT:
        raise BadResultRecord(tree.root, f"is larger than {_RECORD_LIMIT} bytes")
    return raw


def write_result(tree: TargetTree, record: ResultRecord) -> None:
    ensure_state_dir(tree)
    tree.write_file(RESULT_PATH, [record.to_json().encode()], mode=0o600, uid=0, gid=0)
