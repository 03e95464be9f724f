"""What has to change in the account databases, as data both backends consume.

Computed by comparing the config's users and groups with the root's current
databases: a missing account becomes an Add, an existing one an Edit carrying
only the fields that differ (None = leave alone), shouldExist=false a Delete.
Nothing here holds a secret in its repr: password hashes are masked.

What lands in the password field is decided here, once, for both backends
(:func:`stored_password`): an empty ``passwordHash`` locks the account
(``!``), never an empty field (which would let anyone log in without a
password); a new user given no password gets ``*`` (no password, not
locked: key login works even on an sshd without PAM), as Ignition does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.accounts.database import AccountDatabase
from provision.accounts.tables import split_list
from provision.config import model

LOCKED = "!"  # an account locked by the config ("passwordHash": "")
NO_PASSWORD = "*"  # no password login, key login still allowed


def stored_password(password_hash: str | None, *, new_user: bool = False) -> str | None:
    """The password field written for ``password_hash``: "" locks, None leaves alone (a new user: "*")."""
    if password_hash is None:
        return NO_PASSWORD if new_user else None
    return password_hash or LOCKED


@dataclass(frozen=True)
class NewGroup:
    name: str
    gid: int | None = None
    system: bool = False
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class GroupEdit:
    name: str
    gid: int | None = None
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class NewUser:
    name: str
    uid: int | None = None
    gecos: str | None = None
    home: str | None = None
    primary_group: str | None = None
    groups: tuple[str, ...] = ()
    user_group: bool = True  # False: noUserGroup
    no_log_init: bool = False
    shell: str | None = None
    system: bool = False
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class UserEdit:
    name: str
    uid: int | None = None
    gecos: str | None = None
    home: str | None = None
    primary_group: str | None = None
    groups: tuple[str, ...] | None = None  # the exact supplementary set
    shell: str | None = None
    password_hash: str | None = field(default=None, repr=False)

    def fields(self) -> list[str]:
        names = ["uid", "gecos", "home", "primary_group", "groups", "shell"]
        changed = [n for n in names if getattr(self, n) is not None]
        return [*changed, "password"] if self.password_hash is not None else changed


@dataclass(frozen=True)
class Delete:
    kind: str  # "user" or "group"
    name: str


Edit = NewGroup | GroupEdit | NewUser | UserEdit | Delete


def current_password(db: AccountDatabase, kind: str, name: str) -> str | None:
    """The stored hash: shadow/gshadow when present, else passwd/group."""
    secret_kind = "shadow" if kind == "passwd" else "gshadow"
    row = db.table(secret_kind).get(name)
    if row is not None:
        return row[1]
    row = db.table(kind).get(name)
    return row[1] if row is not None else None


def supplementary_groups(db: AccountDatabase, user: str) -> set[str]:
    return {row[0] for row in db.table("group").rows() if user in split_list(row[3])}


def resolve_gid(db: AccountDatabase, group: str) -> int | None:
    if group.isdigit():
        return int(group)
    row = db.table("group").get(group)
    return int(row[2]) if row and row[2].isdigit() else None


def existing_gid(db: AccountDatabase, group: str) -> int | None:
    """The gid of an existing group given by name or number (useradd -g/-G refuse others)."""
    for row in db.table("group").rows():
        if (row[0] == group or row[2] == group) and row[2].isdigit():
            return int(row[2])
    return None


def group_edit(group: model.Group, db: AccountDatabase) -> Edit | None:
    row = db.table("group").get(group.name)
    if not group.should_exist:
        return Delete("group", group.name) if row else None
    if row is None:
        return NewGroup(group.name, group.gid, group.system, stored_password(group.password_hash))
    gid = group.gid if group.gid is not None and str(group.gid) != row[2] else None
    password = stored_password(group.password_hash)
    if password is not None and password == current_password(db, "group", group.name):
        password = None
    if gid is None and password is None:
        return None
    return GroupEdit(group.name, gid, password)


def user_edit(user: model.User, db: AccountDatabase) -> Edit | None:
    row = db.table("passwd").get(user.name)
    if not user.should_exist:
        return Delete("user", user.name) if row else None
    if row is None:
        return NewUser(
            name=user.name,
            uid=user.uid,
            gecos=user.gecos,
            home=user.home_dir,
            primary_group=user.primary_group,
            groups=user.groups,
            user_group=not user.no_user_group,
            no_log_init=user.no_log_init,
            shell=user.shell,
            system=user.system,
            password_hash=stored_password(user.password_hash, new_user=True),
        )
    _name, _pw, uid, gid, gecos, home, shell = row

    def differs(wanted: str | None, have: str) -> str | None:
        return wanted if wanted is not None and wanted != have else None

    primary = None
    if user.primary_group is not None and str(resolve_gid(db, user.primary_group)) != gid:
        primary = user.primary_group
    groups = None
    if user.groups and set(user.groups) != supplementary_groups(db, user.name):
        groups = tuple(user.groups)
    password = stored_password(user.password_hash)
    if password is not None and password == current_password(db, "passwd", user.name):
        password = None
    edit = UserEdit(
        name=user.name,
        uid=user.uid if user.uid is not None and str(user.uid) != uid else None,
        gecos=differs(user.gecos, gecos),
        home=differs(user.home_dir, home),
        primary_group=primary,
        groups=groups,
        shell=differs(user.shell, shell),
        password_hash=password,
    )
    return edit if edit.fields() else None


def describe(edit: Edit) -> tuple[str, str, str]:
    """(action kind, item, detail) for a plan line; never includes a hash."""
    match edit:
        case NewGroup(name=name, gid=gid):
            return "create", f"group {name}", f"gid {gid}" if gid is not None else ""
        case GroupEdit(name=name):
            parts = (["gid"] if edit.gid is not None else []) + (
                ["password"] if edit.password_hash is not None else []
            )
            return "replace", f"group {name}", "change " + ", ".join(parts)
        case NewUser(name=name, uid=uid):
            return "create", f"user {name}", f"uid {uid}" if uid is not None else ""
        case UserEdit(name=name):
            return "replace", f"user {name}", "change " + ", ".join(edit.fields())
        case Delete(kind=kind, name=name):
            return "delete", f"{kind} {name}", ""
    raise AssertionError(edit)
