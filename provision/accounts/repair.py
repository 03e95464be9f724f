"""Finishing what an interrupted account change left half done.

useradd, userdel and friends write passwd, shadow, group, gshadow and
subuid/subgid one after the other; a kill in between leaves, say, a user in
passwd without its shadow row (a password set later would then land in
world-readable passwd), without its private group or subordinate ids, or a
removed user's rows behind. A rerun calls :func:`repair` first, for the
config's own accounts only, and then applies the config as usual. Both
backends use it; it takes the same locks as shadow-utils.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.accounts.database import AccountDatabase
from provision.accounts.defaults import AccountDefaults, load_defaults
from provision.accounts.direct import add_subordinate, shadow_row
from provision.accounts.lock import locked, remove_stale_scratch
from provision.accounts.tables import split_list
from provision.target.tree import TargetTree

DATABASES = ("passwd", "shadow", "group", "gshadow", "subuid", "subgid")


@dataclass(frozen=True)
class UserIntent:
    """What the config says about one user, as far as repairs care."""

    name: str
    should_exist: bool = True
    system: bool = False
    created: bool = False  # created by this config (recorded before its first change)
    user_group: bool = False  # a private group named after the user is expected


def _created_user(db: AccountDatabase, user: UserIntent, defaults: AccountDefaults, done: list[str]) -> None:
    row = db.table("passwd").get(user.name)
    if row is None or not (row[2].isdigit() and row[3].isdigit()):
        return
    if defaults.user_groups and user.user_group and db.table("group").get(user.name) is None and not any(
        g[2] == row[3] for g in db.table("group").rows()
    ):
        db.table("group").put([user.name, "x", row[3], ""])
        done.append(f"user {user.name}: private group")
    if not user.system and defaults.uids.low <= int(row[2]) <= defaults.uids.high:
        for kind, span, count in (("subuid", defaults.sub_uids, defaults.sub_uid_count),
                                  ("subgid", defaults.sub_gids, defaults.sub_gid_count)):
            if db.has(kind) and count > 0 and add_subordinate(db, kind, user.name, span, count):
                done.append(f"user {user.name}: {kind} range")


def _shadow_entry(db: AccountDatabase, user: UserIntent, defaults: AccountDefaults, done: list[str]) -> None:
    row = db.table("passwd").get(user.name)
    if row is None or not db.has("shadow") or db.tables["shadow"].get(user.name) is not None:
        return
    # A user this config created gets what a new user gets ("*"; the config's own
    # password is applied after the repair); an older one is locked, being unknown.
    password = row[1] if row[1] not in ("x", "") else ("*" if user.created else "!")
    db.tables["shadow"].put(shadow_row(user.name, password, user.system, defaults))
    row[1] = "x"
    done.append(f"user {user.name}: shadow entry")


def _gshadow_entry(db: AccountDatabase, group: str, done: list[str]) -> None:
    row = db.table("group").get(group)
    if row is None or not db.has("gshadow") or db.tables["gshadow"].get(group) is not None:
        return
    password = row[1] if row[1] not in ("x", "") else "!"
    db.tables["gshadow"].put([group, password, "", row[3]])
    row[1] = "x"
    done.append(f"group {group}: gshadow entry")


def _gshadow_memberships(db: AccountDatabase, name: str, done: list[str]) -> None:
    """Make the user's gshadow memberships match group's (useradd/usermod write group first)."""
    if not db.has("gshadow"):
        return
    for row in db.table("group").rows():
        secret = db.tables["gshadow"].get(row[0])
        if secret is None:
            continue
        in_group, in_secret = name in split_list(row[3]), name in split_list(secret[3])
        if in_group and not in_secret:
            secret[3] = ",".join([*split_list(secret[3]), name])
            done.append(f"user {name}: gshadow membership of {row[0]}")
        elif in_secret and not in_group:
            secret[3] = ",".join(m for m in split_list(secret[3]) if m != name)
            done.append(f"user {name}: stale gshadow membership of {row[0]}")


def _removed_user_leftovers(db: AccountDatabase, name: str, done: list[str]) -> None:
    if db.table("passwd").get(name) is not None:
        return  # still there: the removal itself runs later
    for kind in ("shadow", "subuid", "subgid"):
        if db.has(kind) and db.tables[kind].remove(name):
            done.append(f"user {name}: leftover {kind} entry")
    for kind, columns in (("group", (3,)), ("gshadow", (2, 3))):
        for row in db.table(kind).rows():
            for column in columns:
                if name in split_list(row[column]):
                    row[column] = ",".join(m for m in split_list(row[column]) if m != name)
                    done.append(f"user {name}: leftover membership of {row[0]}")


def repair(tree: TargetTree, users: list[UserIntent], groups: list[str]) -> list[str]:
    """Repair the config's accounts (``groups``: names that should exist); returns what was done."""
    etc = tree.resolve("/etc")
    defaults = load_defaults(tree, etc)
    done: list[str] = []
    with locked(tree, etc, DATABASES):
        done += [f"leftover {name}" for name in remove_stale_scratch(tree, etc, DATABASES)]
        db = AccountDatabase.load(tree, etc)
        for user in users:
            if not user.should_exist:
                _removed_user_leftovers(db, user.name, done)
                continue
            if user.created:
                _created_user(db, user, defaults, done)
            _shadow_entry(db, user, defaults, done)
            _gshadow_entry(db, user.name, done)  # its private group, if it has one
            _gshadow_memberships(db, user.name, done)
        for group in groups:
            _gshadow_entry(db, group, done)
        if done:
            db.save("shadow", "gshadow", "subuid", "subgid", "group", "passwd")
    return done
