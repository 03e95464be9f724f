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

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

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
from provision.accounts.home import ensure_home
from provision.accounts.repair import UserIntent, repair
from provision.accounts.ssh import (
    KEYS_FILE,
    apply_sshd_change,
    keys_text,
    sshd_change,
    write_authorized_keys,
)
from provision.apply import crashpoint
from provision.apply.journal import StageJournal, config_digest
from provision.config.model import Config, Group, Passwd, User
from provision.errors import ProvisionError, StageError
from provision.stages.base import Action, Plan, Target
from provision.target.tree import TargetTree

NAME = "users"
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


class UsersStage:
    name = NAME

    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend  # "direct" or "shadow-utils"; None: the default (see accounts.backend)

    def is_empty(self, config: Config) -> bool:
        return not config.passwd.users and not config.passwd.groups

    def plan(self, config: Config, target: Target) -> Plan:
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

    def apply(self, plan: Plan, target: Target) -> None:
        if target.dry_run:
            return
        data: UsersPlan = plan.data
        passwd = data.passwd
        check_fields(passwd)
        with TargetTree(target.root) as tree:
            etc = tree.resolve("/etc")
            created = self._created_by_config(tree, etc, data)
            ensure_database_files(tree, etc)
            backend = select_backend(tree, self.backend)
            intents = [
                UserIntent(u.name, u.should_exist, u.system, u.name in created,
                           user_group=not u.no_user_group and u.primary_group is None)
                for u in passwd.users
            ]
            try:
                repaired = repair(tree, intents, [g.name for g in passwd.groups if g.should_exist])
            except (ProvisionError, OSError) as exc:
                raise StageError(NAME, "account databases", _cause(exc)) from None
            for line in repaired:
                log.warning("users: repaired %s left by an interrupted run", line)

            def step(item: str, compute: Callable[[AccountDatabase], Edit | None]) -> None:
                try:
                    edit = compute(AccountDatabase.load(tree, etc))
                    if edit is not None:
                        _perform(backend, edit)
                        crashpoint.item_done()
                except StageError:
                    raise
                except (ProvisionError, OSError) as exc:
                    raise StageError(NAME, item, _cause(exc)) from None

            def for_group(group: Group) -> Callable[[AccountDatabase], Edit | None]:
                return lambda db: group_edit(group, db)

            def for_user(user: User) -> Callable[[AccountDatabase], Edit | None]:
                return lambda db: user_edit(user, db)

            for group in passwd.groups:
                if group.should_exist:
                    step(f"group {group.name}", for_group(group))
            for user in passwd.users:
                step(f"user {user.name}", for_user(user))
            for group in passwd.groups:
                if not group.should_exist:
                    step(f"group {group.name}", for_group(group))
            self._homes_and_keys(tree, etc, passwd, created)

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
    def _homes_and_keys(tree: TargetTree, etc: str, passwd: Passwd, created: set[str]) -> None:
        defaults = load_defaults(tree, etc)
        db = AccountDatabase.load(tree, etc)
        wants_keys = False
        for user in passwd.users:
            if not user.should_exist:
                continue
            account = _account(db, user.name)
            if account is None:
                raise StageError(NAME, f"user {user.name}", "missing from /etc/passwd after creation")
            try:
                # Homes come with new users, as with useradd --create-home (also
                # after a run killed between useradd and the home); existing
                # users are left as they are, and "no home" markers never made.
                no_home = account.home.rstrip("/") in ("", defaults.nonexistent.rstrip("/"))
                wants_home = user.name in created and not user.no_create_home and not no_home
                if wants_home and ensure_home(
                    tree, account.home, account.uid, account.gid, defaults.home_mode, defaults.skel
                ):
                    crashpoint.item_done()
                if user.ssh_authorized_keys:
                    wants_keys = True
                    if write_authorized_keys(tree, account.home, account.uid, account.gid,
                                             user.ssh_authorized_keys):
                        crashpoint.item_done()
            except (ProvisionError, OSError) as exc:
                raise StageError(NAME, f"user {user.name}", _cause(exc)) from None
        if wants_keys:
            try:
                change = sshd_change(tree)
                if change is not None:
                    apply_sshd_change(tree, change)
                    crashpoint.item_done()
            except (ProvisionError, OSError) as exc:
                raise StageError(NAME, "sshd configuration", _cause(exc)) from None


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


STAGE = UsersStage()
