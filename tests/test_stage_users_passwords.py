"""What lands in shadow's password field, from every input format, with both backends.

An empty field lets anyone log in without a password: ``passwordHash: ""``
must lock the account ("!") instead, for new and existing users and groups;
a new user without a password gets "*" (no password, but key login works
even on an sshd without PAM), as Ignition does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from accounts_fixtures import HASH, make_bare_root, make_debian_root

from provision.config.pipeline import parse_config
from provision.stages.base import Target
from provision.stages.users import UsersStage

BACKENDS = ("direct", "shadow-utils")


def _own(passwd: dict[str, object]) -> bytes:
    return json.dumps({"provision": {"version": "1.0.0"}, "passwd": passwd}).encode()


def _ignition(passwd: dict[str, object]) -> bytes:
    return json.dumps({"ignition": {"version": "3.4.0"}, "passwd": passwd}).encode()


EMPTY_HASH_CONFIGS = {
    "own spec": _own({
        "users": [{"name": "newbie", "passwordHash": ""}, {"name": "olduser", "passwordHash": ""}],
        "groups": [{"name": "newgrp", "passwordHash": ""}, {"name": "wheel", "passwordHash": ""}],
    }),
    "ignition": _ignition({
        "users": [{"name": "newbie", "passwordHash": ""}, {"name": "olduser", "passwordHash": ""}],
        "groups": [{"name": "newgrp", "passwordHash": ""}, {"name": "wheel", "passwordHash": ""}],
    }),
    "human yaml": b"""variant: provision
version: 1.0.0
passwd:
  users:
    - name: newbie
      password_hash: ""
    - name: olduser
      password_hash: ""
  groups:
    - name: newgrp
      password_hash: ""
    - name: wheel
      password_hash: ""
""",
}
# cloud-config has no group passwords; passwd: "" with lock_passwd: false asks for an empty one.
CLOUD_CONFIG = b"""#cloud-config
users:
  - name: newbie
    passwd: ""
    lock_passwd: false
  - name: olduser
    hashed_passwd: ""
    lock_passwd: false
"""


def _apply(root: Path, data: bytes, backend: str) -> None:
    parsed = parse_config(data, "config")
    assert parsed.ok, [d.message for d in parsed.diagnostics]
    assert parsed.config is not None
    stage = UsersStage(backend)
    stage.apply(stage.plan(parsed.config, Target(root)), Target(root))


def _field(root: Path, database: str, name: str) -> str:
    for line in (root / "etc" / database).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")[1]
    raise AssertionError(f"{name} not in {database}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", sorted(EMPTY_HASH_CONFIGS))
def test_empty_hash_locks_new_and_existing_accounts(tmp_path: Path, backend: str, fmt: str) -> None:
    root = make_debian_root(tmp_path)
    assert _field(root, "shadow", "olduser").startswith("$6$")  # has a password before
    _apply(root, EMPTY_HASH_CONFIGS[fmt], backend)
    assert _field(root, "shadow", "newbie") == "!"
    assert _field(root, "shadow", "olduser") == "!"
    assert _field(root, "gshadow", "newgrp") == "!"
    assert _field(root, "gshadow", "wheel") == "!"
    before = (root / "etc/shadow").read_bytes()
    _apply(root, EMPTY_HASH_CONFIGS[fmt], backend)  # a rerun sees nothing to change
    assert (root / "etc/shadow").read_bytes() == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_cloud_config_empty_passwd_locks(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    _apply(root, CLOUD_CONFIG, backend)
    assert _field(root, "shadow", "newbie") == "!"
    assert _field(root, "shadow", "olduser") == "!"


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_hash_on_an_image_without_shadow_file(tmp_path: Path, backend: str) -> None:
    root = make_bare_root(tmp_path)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nold::1000:100::/home/old:/bin/sh\n")
    _apply(root, _own({"users": [{"name": "old", "passwordHash": ""}, {"name": "new", "passwordHash": ""}]}),
           backend)
    # The image had no shadow file: one is made, and neither user is left without a password field.
    assert _field(root, "shadow", "old") == "!" and _field(root, "shadow", "new") == "!"
    assert _field(root, "passwd", "old") == "x" and _field(root, "passwd", "new") == "x"


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_user_without_password_gets_star_not_locked(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    _apply(root, _own({"users": [{"name": "keyonly"}, {"name": "sysd", "system": True},
                                 {"name": "hashed", "passwordHash": HASH}]}), backend)
    assert _field(root, "shadow", "keyonly") == "*"
    assert _field(root, "shadow", "sysd") == "*"
    assert _field(root, "shadow", "hashed") == HASH
    # An existing user's password is left alone when the config gives none.
    assert _field(root, "shadow", "olduser").startswith("$6$old$")


@pytest.mark.parametrize("backend", BACKENDS)
def test_explicit_lock_markers_are_kept(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    _apply(root, _own({"users": [{"name": "a", "passwordHash": "!"}, {"name": "b", "passwordHash": "*"},
                                 {"name": "c", "passwordHash": "!" + HASH}]}), backend)
    assert [_field(root, "shadow", n) for n in "abc"] == ["!", "*", "!" + HASH]


def test_no_database_file_ever_has_an_empty_password_field(tmp_path: Path) -> None:
    """The property behind all of the above, over every account the fixtures and configs make."""
    for backend in BACKENDS:
        for fmt, data in EMPTY_HASH_CONFIGS.items():
            root = make_debian_root(tmp_path / backend / fmt.replace(" ", "-"))
            _apply(root, data, backend)
            for database in ("shadow", "gshadow"):
                for line in (root / "etc" / database).read_text().splitlines():
                    assert line.split(":")[1], (backend, fmt, database, line)
