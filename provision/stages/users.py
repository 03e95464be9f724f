"""The users stage: groups, users, home directories and SSH keys in the target root.

Ignition's passwd semantics. Order: groups are created or changed, then
users, then groups with shouldExist=false are removed (after the users that
might have them as primary group). Every change is recomputed against the
databases as they are at that moment, so a rerun after a kill at any point
only does what is still missing. Then home directories (from the target's
skeleton), ``~/.ssh/authorized_keys.d/provision`` and the sshd setting that
makes sshd read it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from provision.accounts.backend import AccountsBackend, select_backend
from provision.accounts.database import AccountDatabase, ensure_database_files
from provision.accounts.defaults import load_defaults
from provision.accounts.edits import (
    Delete,
    Edit,
    GroupEdit,
    NewGroup,
    NewUser,
    UserEdit,
    describe,
    group_edit,
    user_edit,
)
from provision.accounts.home import adopt_mount_directories, ensure_home
from provision.accounts.repair import UserIntent, repair
from provision.accounts.ssh import (
    KEYS_FILE,
    apply_sshd_change,
    keys_text,
    sshd_change,
    write_authorized_keys,
)
from provision.config.model import Config, Group, Passwd, User
from provision.disks.mounting import made_directories
from provision.errors import ProvisionError, StageError
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.journal import StageJournal, config_digest
from provision.stages.staging import Staging
from provision.target.tree import TargetTree

NAME = "users"
_T = TypeVar("_T")
log = logging.getLogger(__name__)


def _bad_field(value: str | None, extra: str = "") -> bool:
    return value is not None and any(c in value for c in ":\n" + extra)


def check_fields(passwd: Passwd) -> None:
    """Reject values that would corrupt a colon-separated database (before touching anything)."""
    for group in passwd.groups:
        if _bad_field(group.name, ","):
            raise StageError(NAME, f"group {group.name!r}", "name contains ':', ',' or a newline")
        if _bad_field(group.password_hash):
            raise StageError(NAME, f"group {group.name}", "password hash contains ':' or a newline")
    for user in passwd.users:
        item = f"user {user.name}"
        if _bad_field(user.name, ","):
            raise StageError(NAME, f"user {user.name!r}", "name contains ':', ',' or a newline")
        for label, value in (("gecos", user.gecos), ("homeDir", user.home_dir),
                             ("shell", user.shell), ("primaryGroup", user.primary_group)):
            if _bad_field(value):
                raise StageError(NAME, item, f"{label} contains ':' or a newline")
        if any(_bad_field(g, ",") for g in user.groups):
            raise StageError(NAME, item, "a group name contains ':', ',' or a newline")
        if _bad_field(user.password_hash):
            raise StageError(NAME, item, "password hash contains ':' or a newline")
        if any(c in key.strip() for key in user.ssh_authorized_keys for c in "\n\r\0"):
            raise StageError(NAME, item, "an SSH key contains a line break or NUL")


@dataclass(frozen=True)
class UsersPlan:
    config: Config = field(repr=False)
    passwd: Passwd = field(repr=False)  # holds password hashes


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int
    home: str


def _account(db: AccountDatabase, name: str) -> _Account | None:
    row = db.table("passwd").get(name)
    if row is None or not (row[2].isdigit() and row[3].isdigit()):
        return None
    return _Account(int(row[2]), int(row[3]), row[5])


def _perform(backend: AccountsBackend, edit: Edit) -> None:
    match edit:
        case NewGroup():
            backend.add_group(edit)
        case GroupEdit():
            backend.edit_group(edit)
        case NewUser():
            backend.add_user(edit)
        case UserEdit():
            backend.edit_user(edit)
        case Delete(kind="user", name=name):
            backend.delete_user(name)
        case Delete(name=name):
            backend.delete_group(name)


class UsersStage(StageBase):
    name = NAME
    phase = "files"

    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend  # "direct" or "shadow-utils"; None: the default (see accounts.backend)

    def is_empty(self, config: Config) -> bool:
        return not config.passwd.users and not config.passwd.groups

    def make_plan(self, config: Config, target: Target) -> Plan:
        passwd = config.passwd
        check_fields(passwd)
        actions: list[Action] = []
        with TargetTree(target.root) as tree:
            db = AccountDatabase.load(tree, tree.resolve("/etc"))
            edits: list[Edit | None] = [group_edit(g, db) for g in passwd.groups if g.should_exist]
            edits += [user_edit(u, db) for u in passwd.users]
            edits += [group_edit(g, db) for g in passwd.groups if not g.should_exist]
            for edit in edits:
                if edit is not None:
                    actions.append(Action(*describe(edit)))
            for user in passwd.users:
                if user.should_exist and user.ssh_authorized_keys:
                    actions.append(self._keys_action(tree, db, user))
            if any(u.should_exist and u.ssh_authorized_keys for u in passwd.users):
                change = sshd_change(tree)
                if change is not None:
                    actions.append(Action("replace" if tree.state(change.path) else "create",
                                          change.path, "sshd reads ~/" + KEYS_FILE))
        named = {a.item for a in actions}
        for user in passwd.users:
            if f"user {user.name}" not in named and user.should_exist:
                actions.append(Action("unchanged", f"user {user.name}"))
        return Plan(NAME, actions, data=UsersPlan(config, passwd))

    @staticmethod
    def _keys_action(tree: TargetTree, db: AccountDatabase, user: User) -> Action:
        item = f"ssh keys of {user.name}"
        account = _account(db, user.name)
        if account is None:
            return Action("create", item, f"{len(user.ssh_authorized_keys)} key(s)")
        existing = tree.read_bytes(f"{account.home}/{KEYS_FILE}")
        if existing is None:
            return Action("create", item, f"{len(user.ssh_authorized_keys)} key(s)")
        same = existing == keys_text(user.ssh_authorized_keys)
        return Action("unchanged" if same else "replace", item)

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[Iterator[Step]]:
        data: UsersPlan = plan.data
        check_fields(data.passwd)
        with TargetTree(target.root) as tree:
            etc = tree.resolve("/etc")
            created = self._created_by_config(tree, etc, data)
            ensure_database_files(tree, etc)
            backend = select_backend(tree, self.backend)
            intents = [
                UserIntent(u.name, u.should_exist, u.system, u.name in created,
                           user_group=not u.no_user_group and u.primary_group is None)
                for u in data.passwd.users
            ]
            try:
                repaired = repair(tree, intents, [g.name for g in data.passwd.groups if g.should_exist])
            except (ProvisionError, OSError) as exc:
                raise StageError(NAME, "account databases", _cause(exc)) from None
            for line in repaired:
                log.warning("users: repaired %s left by an interrupted run", line)
            made = made_directories(target.root.resolve())
            yield self._steps(tree, etc, backend, data.passwd, created, made)

    def _steps(
        self, tree: TargetTree, etc: str, backend: AccountsBackend, passwd: Passwd, created: set[str],
        made: list[str],
    ) -> Iterator[Step]:
        """Groups, users, removed groups, then homes and keys; each edit computed when it runs."""

        def edit(compute: Callable[[AccountDatabase], Edit | None]) -> Callable[[], bool]:
            def change() -> bool:
                found = compute(AccountDatabase.load(tree, etc))
                if found is None:
                    return False
                _guarded(lambda: _perform(backend, found))
                return True
            return change

        def for_group(group: Group) -> Callable[[AccountDatabase], Edit | None]:
            return lambda db: group_edit(group, db)

        def for_user(user: User) -> Callable[[AccountDatabase], Edit | None]:
            return lambda db: user_edit(user, db)

        for group in passwd.groups:
            if group.should_exist:
                yield Step(f"group {group.name}", edit(for_group(group)))
        for user in passwd.users:
            yield Step(f"user {user.name}", edit(for_user(user)))
        for group in passwd.groups:
            if not group.should_exist:
                yield Step(f"group {group.name}", edit(for_group(group)))
        yield from self._homes_and_keys(tree, etc, passwd, created, made)

    @staticmethod
    def _created_by_config(tree: TargetTree, etc: str, data: UsersPlan) -> set[str]:
        """Users this config creates, remembered across a crash (journal of the pre-image).

        Before the first change the names of the config's users that already
        exist are recorded; a rerun of the same config reads that record, so
        a user whose useradd was killed half-way is still known as ours.
        """
        journal = StageJournal(tree, NAME, config_digest(data.config))
        recorded = journal.load()
        if recorded is None:
            db = AccountDatabase.load(tree, etc)
            existing = sorted(u.name for u in data.passwd.users if db.table("passwd").get(u.name))
            recorded = {"existing_users": existing}
            journal.record(recorded, {})
        existing_users = set(recorded.get("existing_users") or [])
        return {u.name for u in data.passwd.users if u.should_exist and u.name not in existing_users}

    @staticmethod
    def _homes_and_keys(
        tree: TargetTree, etc: str, passwd: Passwd, created: set[str], made: list[str],
    ) -> Iterator[Step]:
        defaults = load_defaults(tree, etc)
        wanted = [u for u in passwd.users if u.should_exist]
        for user in wanted:
            # Homes come with new users, as with useradd --create-home (also
            # after a run killed between useradd and the home); existing
            # users are left as they are, and "no home" markers never made.
            # Directories the mount stage made in a home become the user's
            # (new or existing user, as Ignition does).
            def home(user: User = user) -> bool:
                account = _existing_account(tree, etc, user)
                no_home = account.home.rstrip("/") in ("", defaults.nonexistent.rstrip("/"))
                if user.no_create_home or no_home:
                    return False
                made_home = user.name in created and _guarded(lambda: ensure_home(
                    tree, account.home, account.uid, account.gid, defaults.home_mode, defaults.skel))
                adopted = _guarded(lambda: adopt_mount_directories(
                    tree, account.home, account.uid, account.gid, made))
                return made_home or adopted

            def keys(user: User = user) -> bool:
                account = _existing_account(tree, etc, user)
                return _guarded(lambda: write_authorized_keys(
                    tree, account.home, account.uid, account.gid, user.ssh_authorized_keys))

            yield Step(f"user {user.name}", home)
            if user.ssh_authorized_keys:
                yield Step(f"user {user.name}", keys)
        if any(u.ssh_authorized_keys for u in wanted):
            def sshd() -> bool:
                change = sshd_change(tree)
                if change is None:
                    return False
                _guarded(lambda: apply_sshd_change(tree, change))
                return True

            yield Step("sshd configuration", sshd)


def _existing_account(tree: TargetTree, etc: str, user: User) -> _Account:
    account = _account(AccountDatabase.load(tree, etc), user.name)
    if account is None:
        raise StageError(NAME, f"user {user.name}", "missing from /etc/passwd after creation")
    return account


def _guarded(change: Callable[[], _T]) -> _T:
    """Run ``change``; an OSError keeps its file name in the message (``_cause``)."""
    try:
        return change()
    except OSError as exc:
        raise ProvisionError(_cause(exc)) from None


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


STAGE = UsersStage()
