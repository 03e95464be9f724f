"""The users stage against real roots, with both account backends.

The shadow-utils path runs the real useradd/usermod/groupadd with --root; the
direct path writes the files itself. Both must give the same databases, homes
and keys.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
from accounts_fixtures import HASH, config, make_bare_root, make_debian_root, snapshot

from provision.errors import ProvisionError, StageError
from provision.stages.base import Target
from provision.stages.users import UsersStage

BACKENDS = ["direct", "shadow-utils"]
KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f core@laptop"
KEY2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/ core@desk"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown and useradd --root need root")


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1700000000 s = day 19675; shadow-utils honours it too.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def apply(root: Path, passwd: dict[str, object], backend: str) -> None:
    stage = UsersStage(backend)
    target = Target(root)
    stage.apply(stage.plan(config(passwd), target), target)


def lines(root: Path, name: str) -> list[str]:
    return (root / "etc" / name).read_text().splitlines()


FULL = {
    "groups": [
        {"name": "ops", "gid": 3000},
        {"name": "svcgrp", "system": True, "passwordHash": HASH},
    ],
    "users": [
        {
            "name": "core",
            "gecos": "Core User",
            "groups": ["sudo", "ops"],
            "passwordHash": HASH,
            "sshAuthorizedKeys": [KEY1, KEY2],
        },
        {"name": "svc", "system": True, "noCreateHome": True, "shell": "/usr/sbin/nologin"},
        {"name": "fixed", "uid": 4242, "primaryGroup": "ops", "homeDir": "/srv/fixed", "noUserGroup": True},
        {"name": "plain", "noUserGroup": True},
    ],
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_creates_accounts_as_useradd_would(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    apply(root, FULL, backend)
    passwd = lines(root, "passwd")
    assert "core:x:1001:1001:Core User:/home/core:/bin/sh" in passwd
    assert "svc:x:997:996::/home/svc:/usr/sbin/nologin" in passwd  # below the lowest system id
    assert "fixed:x:4242:3000::/srv/fixed:/bin/sh" in passwd
    assert "plain:x:4243:100::/home/plain:/bin/sh" in passwd
    shadow = lines(root, "shadow")
    assert f"core:{HASH}:19675:0:99999:7:::" in shadow
    assert "svc:*:19675::::::" in shadow  # no aging for system accounts; no password, not locked
    group = lines(root, "group")
    assert "ops:x:3000:core" in group and "sudo:x:27:core" in group
    assert "core:x:1001:" in group and "svcgrp:x:997:" in group and "svc:x:996:" in group
    gshadow = lines(root, "gshadow")
    assert f"svcgrp:{HASH}::" in gshadow and "ops:!::core" in gshadow and "sudo:*::core" in gshadow
    assert lines(root, "subuid") == ["core:100000:65536", "fixed:165536:65536", "plain:231072:65536"]
    # Modes and owners of the databases were kept.
    for name, mode, gid in (("passwd", 0o644, 0), ("group", 0o644, 0), ("shadow", 0o640, 42), ("gshadow", 0o640, 42)):
        st = os.stat(root / "etc" / name)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, 0, gid), name
    # Home from the TARGET's skeleton, owned by the user.
    home = root / "home/core"
    st = os.stat(home)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 1001, 1001)
    assert (home / ".profile").read_text() == "# profile\n"
    assert os.readlink(home / ".bash_profile") == ".profile"
    settings = home / ".config/app/settings"
    assert stat.S_IMODE(os.stat(settings).st_mode) == 0o600 and os.stat(settings).st_uid == 1001
    assert not (root / "home/svc").exists()
    assert os.stat(root / "srv/fixed").st_uid == 4242


def test_both_backends_give_the_same_tree(tmp_path: Path) -> None:
    trees = []
    for backend in BACKENDS:
        root = make_debian_root(tmp_path / backend)
        apply(root, FULL, backend)
        apply(root, {"users": [{"name": "olduser", "uid": 1500, "shell": "/bin/zsh", "groups": ["adm"]},
                               {"name": "plain", "shouldExist": False}],
                     "groups": [{"name": "ops", "gid": 3100}]}, backend)
        trees.append(snapshot(root))
    assert trees[0].keys() == trees[1].keys()
    for path in trees[0]:
        assert trees[0][path] == trees[1][path], path


@pytest.mark.parametrize("backend", BACKENDS)
def test_modifies_existing_user(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    apply(root, {"users": [{"name": "olduser", "uid": 1500, "gecos": "Renamed", "shell": "/bin/zsh",
                            "groups": ["adm", "sudo"], "passwordHash": HASH}]}, backend)
    assert "olduser:x:1500:1000:Renamed:/home/olduser:/bin/zsh" in lines(root, "passwd")
    group = lines(root, "group")
    assert "adm:x:4:olduser" in group and "sudo:x:27:olduser" in group
    assert "wheel:x:10:" in group  # left the groups not listed
    assert "wheel:*::" in lines(root, "gshadow")
    assert any(line.startswith(f"olduser:{HASH}:19675:") for line in lines(root, "shadow"))
    # usermod -u moves the home's files to the new uid.
    assert os.stat(root / "home/olduser/notes").st_uid == 1500


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_users_get_no_home_created(tmp_path: Path, backend: str) -> None:
    """As usermod: changing an existing user never creates its home (Ignition does the same)."""
    root = make_debian_root(tmp_path)
    shutil.rmtree(root / "home/olduser")
    apply(root, {"users": [{"name": "nobody", "shell": "/bin/false"}, {"name": "olduser", "gecos": "x"}]}, backend)
    assert "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" in lines(root, "passwd")
    assert not (root / "nonexistent").exists()
    assert not (root / "home/olduser").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_should_exist_false_removes(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    apply(root, {"users": [{"name": "olduser", "shouldExist": False}],
                 "groups": [{"name": "adm", "shouldExist": False}]}, backend)
    for name in ("passwd", "shadow"):
        assert not any(line.startswith("olduser:") for line in lines(root, name))
    group = lines(root, "group")
    assert not any(line.startswith(("olduser:", "adm:")) for line in group)  # private group went too
    assert "wheel:x:10:" in group
    assert (root / "home/olduser/notes").exists()  # home is kept


@pytest.mark.parametrize("backend", BACKENDS)
def test_bare_image(tmp_path: Path, backend: str) -> None:
    """No login.defs, shadow or skeleton: built-in defaults, shadow files created with tight modes."""
    root = make_bare_root(tmp_path)
    apply(root, {"users": [{"name": "alice", "passwordHash": HASH}], "groups": [{"name": "g1"}]}, backend)
    assert lines(root, "passwd")[-1] == "alice:x:1000:100::/home/alice:/bin/bash"
    assert lines(root, "shadow") == [f"alice:{HASH}:19675::::::"]
    assert lines(root, "gshadow") == ["g1:!::"]
    for name in ("shadow", "gshadow"):
        st = os.stat(root / "etc" / name)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    assert sorted(os.listdir(root / "home/alice")) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_mail_spool_when_the_image_asks_for_it(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    (root / "etc/default/useradd").write_text("SHELL=/bin/sh\nCREATE_MAIL_SPOOL=yes\n")
    with (root / "etc/group").open("a") as f:
        f.write("mail:x:8:\n")
    with (root / "etc/gshadow").open("a") as f:
        f.write("mail:*::\n")
    (root / "var/mail").mkdir(parents=True)
    apply(root, {"users": [{"name": "core"}]}, backend)
    st = os.stat(root / "var/mail/core")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size) == (0o660, 1001, 8, 0)


def test_shadow_group_mode_for_created_files(tmp_path: Path) -> None:
    root = make_bare_root(tmp_path)
    (root / "etc/group").write_text("root:x:0:\nshadow:x:42:\nusers:x:100:\n")
    apply(root, {"users": [{"name": "bob"}]}, "direct")
    st = os.stat(root / "etc/shadow")
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, 42)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ssh_keys_and_sshd_dropin(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1, KEY2]}]}, backend)
    keys = root / "home/core/.ssh/authorized_keys.d/provision"
    assert keys.read_text() == f"{KEY1}\n{KEY2}\n"
    for path, mode in ((keys, 0o600), (keys.parent, 0o700), (keys.parent.parent, 0o700)):
        st = os.stat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, 1001, 1001), path
    dropin = root / "etc/ssh/sshd_config.d/40-provision.conf"
    assert dropin.read_text().splitlines()[-1] == (
        "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 .ssh/authorized_keys.d/provision"
    )
    # A second apply with fewer keys rewrites the file: no duplicates, no leftovers.
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY2, KEY2]}]}, backend)
    assert keys.read_text() == f"{KEY2}\n{KEY2}\n"


def test_sshd_without_include_gets_setting_at_top(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path)
    original = "AuthorizedKeysFile .ssh/authorized_keys\nPermitRootLogin no\n"
    (root / "etc/ssh/sshd_config").write_text(original)
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1]}]}, "direct")
    text = (root / "etc/ssh/sshd_config").read_text()
    first = next(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    assert first == "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/provision"
    assert text.endswith(original)
    assert not (root / "etc/ssh/sshd_config.d/40-provision.conf").exists()
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1]}]}, "direct")
    assert (root / "etc/ssh/sshd_config").read_text() == text  # not inserted twice


def test_sshd_setting_before_include_wins_so_top_is_used(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path)
    (root / "etc/ssh/sshd_config.d/10-image.conf").write_text("AuthorizedKeysFile .ssh/keys\n")
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1]}]}, "direct")
    text = (root / "etc/ssh/sshd_config").read_text()
    assert "AuthorizedKeysFile .ssh/keys .ssh/authorized_keys.d/provision" in text.splitlines()


def test_sshd_relative_include_and_a_later_dropin(tmp_path: Path) -> None:
    """A drop-in read after ours would lose (first value wins): ours carries its files too."""
    root = make_debian_root(tmp_path)
    (root / "etc/ssh/sshd_config").write_text("Include sshd_config.d/*.conf\n")
    (root / "etc/ssh/sshd_config.d/60-image.conf").write_text("AuthorizedKeysFile .ssh/image_keys\n")
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1]}]}, "direct")
    dropin = (root / "etc/ssh/sshd_config.d/40-provision.conf").read_text()
    assert "AuthorizedKeysFile .ssh/image_keys .ssh/authorized_keys.d/provision" in dropin.splitlines()
    assert (root / "etc/ssh/sshd_config").read_text() == "Include sshd_config.d/*.conf\n"


def test_sshd_already_reading_our_file_is_left_alone(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path)
    text = "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/provision\n"
    (root / "etc/ssh/sshd_config").write_text(text)
    apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1]}]}, "direct")
    assert (root / "etc/ssh/sshd_config").read_text() == text
    assert not os.listdir(root / "etc/ssh/sshd_config.d")


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_apply_changes_nothing_and_plan_says_so(tmp_path: Path, backend: str) -> None:
    root = make_debian_root(tmp_path)
    apply(root, FULL, backend)
    before = snapshot(root, skip_backups=False)
    plan = UsersStage(backend).plan(config(FULL), Target(root))
    assert plan.changes == [], plan.changes
    apply(root, FULL, backend)
    assert snapshot(root, skip_backups=False) == before


def test_plan_lists_changes_without_touching(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path)
    before = snapshot(root, skip_backups=False)
    plan = UsersStage().plan(config(FULL), Target(root))
    kinds = {(a.kind, a.item) for a in plan.actions}
    assert ("create", "group ops") in kinds and ("create", "user core") in kinds
    assert ("create", "ssh keys of core") in kinds
    assert ("create", "/etc/ssh/sshd_config.d/40-provision.conf") in kinds
    assert snapshot(root, skip_backups=False) == before
    assert all(HASH not in a.detail for a in plan.actions)


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_stay_out_of_logs_and_errors(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_debian_root(tmp_path)
    caplog.set_level(logging.DEBUG)
    apply(root, {"users": [{"name": "core", "passwordHash": HASH}]}, backend)
    with pytest.raises(StageError) as info:
        apply(root, {"users": [{"name": "bad", "groups": ["nosuchgroup"], "passwordHash": HASH}]}, backend)
    assert "bad" in str(info.value) and "nosuchgroup" in str(info.value)
    assert HASH not in caplog.text and HASH not in str(info.value)
    assert "bZqbbUTbcyw" not in caplog.text  # not even part of it


def test_field_that_would_corrupt_the_database_is_refused(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path)
    before = snapshot(root)
    with pytest.raises(StageError, match="gecos contains"):
        apply(root, {"users": [{"name": "x", "gecos": "a:b"}]}, "direct")
    with pytest.raises(StageError) as info:
        apply(root, {"users": [{"name": "x", "passwordHash": "abc:def"}]}, "direct")
    assert "abc" not in str(info.value)
    assert snapshot(root) == before


def test_hostile_etc_symlink_stays_inside_root(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "passwd").write_text("hostonly:x:0:0::/:/bin/sh\n")
    root = tmp_path / "root"
    make_debian_root(root)
    real_etc = root / "realetc"
    (root / "etc").rename(real_etc)
    (root / "etc").symlink_to(str(outside))  # absolute: means <root>/<outside path> inside the root
    inside = root / str(outside).lstrip("/")
    inside.parent.mkdir(parents=True)
    real_etc.rename(inside)
    apply(root, {"users": [{"name": "core"}]}, "direct")
    assert (outside / "passwd").read_text() == "hostonly:x:0:0::/:/bin/sh\n"
    assert (outside / "passwd").exists() and len(os.listdir(outside)) == 1
    assert any(line.startswith("core:") for line in (inside / "passwd").read_text().splitlines())


def test_direct_writer_is_the_default_even_with_shadow_utils_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.accounts import shadow_utils
    from provision.accounts.backend import select_backend
    from provision.target.tree import TargetTree

    assert shadow_utils.available()  # installed here: the default must still not use it
    monkeypatch.delenv("PROVISION_ACCOUNTS_BACKEND", raising=False)
    with TargetTree(tmp_path) as tree:
        assert select_backend(tree).name == "direct"
        monkeypatch.setenv("PROVISION_ACCOUNTS_BACKEND", "shadow-utils")
        assert select_backend(tree).name == "shadow-utils"
        monkeypatch.setenv("PROVISION_TOOL_USERADD", str(tmp_path / "missing-useradd"))
        with pytest.raises(ProvisionError, match="missing: useradd"):
            select_backend(tree)


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_written_accounts_are_repaired(tmp_path: Path, backend: str) -> None:
    """As a kill inside useradd/userdel could leave them: rows in some files, not others."""
    root = make_debian_root(tmp_path)
    with (root / "etc/passwd").open("a") as f:
        f.write("core:x:1001:1001::/home/core:/bin/sh\n")  # no shadow row yet
    with (root / "etc/group").open("a") as f:
        f.write("core:x:1001:\nops:x:3000:gone\n")  # no gshadow rows; "gone" half removed
    with (root / "etc/shadow").open("a") as f:
        f.write("gone:!:19000::::::\n")
    apply(root, {"users": [{"name": "core", "passwordHash": HASH}, {"name": "gone", "shouldExist": False}],
                 "groups": [{"name": "ops"}]}, backend)
    assert "core:x:1001:1001::/home/core:/bin/sh" in lines(root, "passwd")  # hash not in passwd
    assert f"core:{HASH}:19675:0:99999:7:::" in lines(root, "shadow")
    assert not any(line.startswith("gone:") for line in lines(root, "shadow"))
    assert "ops:x:3000:" in lines(root, "group") and "ops:!::" in lines(root, "gshadow")


@pytest.mark.parametrize("backend", BACKENDS)
def test_memberships_written_to_group_but_not_gshadow_are_repaired(tmp_path: Path, backend: str) -> None:
    """useradd/usermod -G write group, then gshadow: a kill in between leaves them disagreeing."""
    root = make_debian_root(tmp_path)
    apply(root, {"users": [{"name": "core", "groups": ["sudo", "adm"]}]}, backend)
    gshadow = (root / "etc/gshadow").read_text()
    # Killed after group was written: gshadow lacks "sudo" and still has a dropped membership.
    (root / "etc/gshadow").write_text(gshadow.replace("sudo:*::core", "sudo:*::")
                                      .replace("users:*::", "users:*::core"))
    apply(root, {"users": [{"name": "core", "groups": ["sudo", "adm"]}]}, backend)
    assert (root / "etc/gshadow").read_text() == gshadow


def _count_and_kill(monkeypatch: pytest.MonkeyPatch, kill_at: int | None) -> list[int]:
    """Patch every write point (tree writes, commands); os._exit at call ``kill_at``."""
    from provision.accounts import shadow_utils
    from provision.target.tree import TargetTree

    calls = [0]

    def wrap(original):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[0] += 1
            if calls[0] == kill_at:
                os._exit(0)  # like SIGKILL: no finally blocks, no lock release
            return original(*args, **kwargs)
        return wrapper

    for name in ("write_file", "make_directory", "symlink", "remove"):
        monkeypatch.setattr(TargetTree, name, wrap(getattr(TargetTree, name)))
    monkeypatch.setattr(shadow_utils, "run", wrap(shadow_utils.run))
    return calls


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_at_any_write_converges_on_rerun(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = make_debian_root(tmp_path / "reference")
    with monkeypatch.context() as patch:
        calls = _count_and_kill(patch, None)
        apply(reference, FULL, backend)
    expected = snapshot(reference)
    assert calls[0] > 10
    for kill_at in range(1, calls[0] + 1):
        root = make_debian_root(tmp_path / f"kill{kill_at}")
        pid = os.fork()
        if pid == 0:
            try:
                with monkeypatch.context() as patch:
                    _count_and_kill(patch, kill_at)
                    apply(root, FULL, backend)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        apply(root, FULL, backend)
        got = snapshot(root)
        assert got == expected, (kill_at, set(got) ^ set(expected),
                                 [p for p in got if p in expected and got[p] != expected[p]])


DRIVER = """
import json, sys
sys.path.insert(0, "tests")
from pathlib import Path
from test_stage_users import apply
apply(Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3])
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_at_random_moments_converges(tmp_path: Path, backend: str) -> None:
    """SIGKILL to the whole process group: shadow-utils tools die mid-write too."""
    import json
    import random
    import signal
    import subprocess
    import sys
    import time

    reference = make_debian_root(tmp_path / "reference")
    apply(reference, FULL, backend)
    expected = snapshot(reference)
    rng = random.Random(int(os.environ.get("PROVISION_TEST_SEED", "5")))
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    killed = 0
    for attempt in range(10):
        root = make_debian_root(tmp_path / f"kill{attempt}")
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(root), json.dumps(FULL), backend],
                                cwd=Path(__file__).parent.parent, env=env, start_new_session=True)
        time.sleep(rng.uniform(0.15, 0.6))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        # A tool in the middle of a system call dies when it returns: wait for the whole group.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        apply(root, FULL, backend)
        got = snapshot(root)
        differing = [(p, got[p][4], expected[p][4]) for p in got if p in expected and got[p] != expected[p]]
        assert got == expected, (attempt, set(got) ^ set(expected), differing)
    assert killed > 0
