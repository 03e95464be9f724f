"""Property: the direct writer and shadow-utils agree on any users/groups config.

Hypothesis builds small passwd sections (names from a pool so they collide
with each other and with the image's accounts, optional ids that may clash,
system accounts, user groups on and off, memberships, removals) and applies
each with both backends to identical roots: either both fail, or both give
the same passwd, shadow, group, gshadow, subuid, subgid and homes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from accounts_fixtures import HASH, config, make_debian_root, snapshot
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from provision.errors import StageError
from provision.stages.base import Target
from provision.stages.users import UsersStage

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="chown and useradd --root need root"),
    pytest.mark.slow,
]

USER_NAMES = ["core", "svc", "olduser", "nobody", "alice", "daemon"]
GROUP_NAMES = ["ops", "core", "sudo", "wheel", "devs"]

groups = st.fixed_dictionaries({"name": st.sampled_from(GROUP_NAMES)}, optional={
    "gid": st.sampled_from([27, 3000, 3001, 1001]),
    "system": st.booleans(),
    "passwordHash": st.just(HASH),
    "shouldExist": st.booleans(),
})
users = st.fixed_dictionaries({"name": st.sampled_from(USER_NAMES)}, optional={
    "uid": st.sampled_from([1000, 1001, 2000, 2001, 70000, 500]),
    "gecos": st.sampled_from(["", "A Person", "x,y,z"]),
    "homeDir": st.sampled_from(["/srv/home", "/home/other"]),
    "noCreateHome": st.booleans(),
    "primaryGroup": st.sampled_from(["ops", "users", "100", "sudo", "5000"]),
    "groups": st.lists(st.sampled_from(["sudo", "wheel", "ops", "adm"]), max_size=3, unique=True),
    "noUserGroup": st.booleans(),
    "shell": st.sampled_from(["/bin/zsh", "/usr/sbin/nologin"]),
    "system": st.booleans(),
    "passwordHash": st.just(HASH),
    "shouldExist": st.booleans(),
})


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({item["name"]: item for item in items}.values())  # keyed lists: one per name


sections = st.fixed_dictionaries({
    "groups": st.lists(groups, max_size=3).map(_unique),
    "users": st.lists(users, max_size=3).map(_unique),
})


def _run(root: Path, passwd: dict[str, Any], backend: str) -> str | None:
    stage = UsersStage(backend)
    try:
        stage.apply(stage.plan(config(passwd), Target(root)), Target(root))
    except StageError as exc:
        return exc.item
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=sections, second=sections)
def test_backends_agree(first: dict[str, Any], second: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    base = Path(tempfile.mkdtemp(prefix="equiv-"))
    try:
        trees = {}
        failures = {}
        for backend in ("direct", "shadow-utils"):
            root = make_debian_root(base / backend)
            failures[backend] = (_run(root, first, backend), _run(root, second, backend))
            trees[backend] = snapshot(root)
        # Both fail on the same item or neither; a failing step may leave different partial work.
        event("outcome: " + ("applied" if failures["direct"] == (None, None) else "failed"))
        assert failures["direct"] == failures["shadow-utils"]
        if failures["direct"] == (None, None):
            direct, tools = trees["direct"], trees["shadow-utils"]
            assert sorted(direct) == sorted(tools)
            for path in direct:
                assert direct[path] == tools[path], path
    finally:
        shutil.rmtree(base)
