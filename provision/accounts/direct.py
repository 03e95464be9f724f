"""Writing passwd, shadow, group and gshadow directly: the default account backend.

Mirrors what ``useradd/usermod/userdel/groupadd/groupmod/groupdel --root``
write (field defaults from the target's login.defs and default/useradd, id
allocation, subordinate ids, member lists in group and gshadow), under the
same locks. Files are saved so that an interrupted change is finished by a
rerun: the passwd row, which makes a user exist, is written last when adding
and removed last when deleting.
"""

from __future__ import annotations

import os
import time

from provision.accounts.database import AccountDatabase
from provision.accounts.defaults import AccountDefaults, IdRange, load_defaults
from provision.accounts.edits import (
    GroupEdit,
    NewGroup,
    NewUser,
    UserEdit,
    existing_gid,
    resolve_gid,
    stored_password,
)
from provision.accounts.home import chown_tree
from provision.accounts.ids import choose_id, choose_subordinate_range
from provision.accounts.lock import locked
from provision.accounts.tables import split_list
from provision.errors import ProvisionError
from provision.target.tree import TargetTree

ALL = ("passwd", "shadow", "group", "gshadow", "subuid", "subgid")


def days_since_epoch() -> str:
    """Today in days, as shadow's lastchg; SOURCE_DATE_EPOCH wins, as in shadow-utils."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = int(epoch) if epoch and epoch.isdigit() else int(time.time())
    return str(now // 86400)


def _num(value: int) -> str:
    return "" if value < 0 else str(value)


class DirectBackend:
    name = "direct"

    def __init__(self, tree: TargetTree) -> None:
        self.tree = tree
        self.etc = tree.resolve("/etc")

    def _defaults(self) -> AccountDefaults:
        return load_defaults(self.tree, self.etc)

    def _load(self) -> AccountDatabase:
        return AccountDatabase.load(self.tree, self.etc)

    # -- groups ---------------------------------------------------------
    def add_group(self, op: NewGroup) -> None:
        defaults = self._defaults()
        with locked(self.tree, self.etc, ("group", "gshadow")):
            db = self._load()
            self._insert_group(db, defaults, op.name, op.gid, op.system, None, op.password_hash)
            db.save("gshadow", "group")

    def _insert_group(
        self,
        db: AccountDatabase,
        defaults: AccountDefaults,
        name: str,
        gid: int | None,
        system: bool,
        preferred: int | None,
        password: str | None,
    ) -> int:
        used = db.table("group").numeric_ids(2)
        if gid is None:
            span = defaults.system_gids if system else defaults.gids
            gid = choose_id(used, span, system, preferred)
        elif gid in used:
            raise ProvisionError(f"group {name}: gid {gid} is already used")
        db.table("group").put([name, "x", str(gid), ""])
        password = stored_password(password)  # "" locks: never an empty password field
        if db.has("gshadow"):
            db.tables["gshadow"].put([name, password or "!", "", ""])
        elif password is not None:
            db.table("group").put([name, password, str(gid), ""])
        return gid

    def edit_group(self, op: GroupEdit) -> None:
        with locked(self.tree, self.etc, ("passwd", "group", "gshadow")):
            db = self._load()
            row = db.table("group").get(op.name)
            if row is None:
                raise ProvisionError(f"group {op.name} does not exist")
            if op.gid is not None:
                if op.gid in db.table("group").numeric_ids(2):
                    raise ProvisionError(f"group {op.name}: gid {op.gid} is already used")
                # groupmod -g keeps the users whose primary group this is on it.
                for user in db.table("passwd").rows():
                    if user[3] == row[2]:
                        user[3] = str(op.gid)
                row[2] = str(op.gid)
            password = stored_password(op.password_hash)
            if password is not None:
                secret = db.table("gshadow").get(op.name) if db.has("gshadow") else None
                if secret is not None:
                    secret[1] = password
                else:
                    row[1] = password
            # Users first: a crash before the group is saved is redone by the rerun.
            db.save("gshadow", "passwd", "group")

    def delete_group(self, name: str) -> None:
        with locked(self.tree, self.etc, ("group", "gshadow")):
            db = self._load()
            row = db.table("group").get(name)
            if row is None:
                return
            for user in db.table("passwd").rows():
                if user[3] == row[2]:
                    raise ProvisionError(
                        f"cannot remove group {name}: it is the primary group of user {user[0]}"
                    )
            if db.has("gshadow"):
                db.tables["gshadow"].remove(name)
            db.table("group").remove(name)
            db.save("gshadow", "group")

    # -- users ----------------------------------------------------------
    def add_user(self, op: NewUser) -> None:
        defaults = self._defaults()
        with locked(self.tree, self.etc, ALL):
            db = self._load()
            uid = self._new_uid(db, defaults, op)
            for group in op.groups:
                if existing_gid(db, group) is None:
                    raise ProvisionError(f"user {op.name}: group {group} does not exist")
            gid = self._primary_gid(db, defaults, op, uid)
            for group in op.groups:
                self._add_member(db, group, op.name)
            # useradd's rule: no subordinate ids for system users or explicit uids out of range.
            if not op.system and (op.uid is None or defaults.uids.low <= op.uid <= defaults.uids.high):
                for kind, span, count in (("subuid", defaults.sub_uids, defaults.sub_uid_count),
                                          ("subgid", defaults.sub_gids, defaults.sub_gid_count)):
                    if db.has(kind) and count > 0:
                        add_subordinate(db, kind, op.name, span, count)
            password = stored_password(op.password_hash, new_user=True) or "*"
            if db.has("shadow"):
                db.tables["shadow"].put(shadow_row(op.name, password, op.system, defaults))
                password = "x"
            home = op.home or f"{defaults.home_base.rstrip('/')}/{op.name}"
            shell = op.shell if op.shell is not None else defaults.shell
            passwd = db.tables.setdefault("passwd", db.table("passwd"))
            passwd.put([op.name, password, str(uid), str(gid), op.gecos or "", home, shell])
            if defaults.create_mail_spool:
                self._create_mail_spool(db, defaults, op.name, uid, gid)
            # The passwd row, which makes the user exist, goes last.
            db.save("shadow", "gshadow", "subuid", "subgid", "group", "passwd")

    @staticmethod
    def _new_uid(db: AccountDatabase, defaults: AccountDefaults, op: NewUser) -> int:
        used = db.table("passwd").numeric_ids(2)
        if op.uid is None:
            return choose_id(used, defaults.system_uids if op.system else defaults.uids, op.system)
        if op.uid in used:
            raise ProvisionError(f"user {op.name}: uid {op.uid} is already used")
        return op.uid

    def _primary_gid(self, db: AccountDatabase, defaults: AccountDefaults, op: NewUser, uid: int) -> int:
        """-g if given; else the user's own group (USERGROUPS_ENAB); else GROUP from default/useradd."""
        if op.primary_group is not None:
            gid = existing_gid(db, op.primary_group)
            if gid is None:
                raise ProvisionError(f"user {op.name}: group {op.primary_group} does not exist")
            return gid
        if op.user_group and defaults.user_groups:
            existing = db.table("group").get(op.name)
            if existing is not None and existing[2].isdigit():
                return int(existing[2])  # left by an interrupted run, or declared: adopt it
            return self._insert_group(db, defaults, op.name, None, op.system, uid, None)
        gid = resolve_gid(db, defaults.default_group)
        if gid is None:
            raise ProvisionError(f"user {op.name}: default group {defaults.default_group} does not exist")
        return gid

    def _create_mail_spool(
        self, db: AccountDatabase, defaults: AccountDefaults, name: str, uid: int, gid: int
    ) -> None:
        """As useradd: owned by the user and the mail group (0660), else the user's group (0600)."""
        path = f"{defaults.mail_dir.rstrip('/')}/{name}"
        if self.tree.state(path) is not None:
            return
        mail = db.table("group").get("mail")
        if mail is not None and mail[2].isdigit():
            self.tree.write_file(path, [b""], mode=0o660, uid=uid, gid=int(mail[2]))
        else:
            self.tree.write_file(path, [b""], mode=0o600, uid=uid, gid=gid)

    def _add_member(self, db: AccountDatabase, group: str, user: str) -> None:
        row = db.table("group").get(group)
        if row is None and group.isdigit():
            row = next((r for r in db.table("group").rows() if r[2] == group), None)
        if row is None:
            raise ProvisionError(f"group {group} does not exist")
        members = split_list(row[3])
        if user not in members:
            row[3] = ",".join([*members, user])
        secret = db.table("gshadow").get(row[0]) if db.has("gshadow") else None
        if secret is not None:
            members = split_list(secret[3])
            if user not in members:
                secret[3] = ",".join([*members, user])

    def edit_user(self, op: UserEdit) -> None:
        with locked(self.tree, self.etc, ALL):
            db = self._load()
            row = db.table("passwd").get(op.name)
            if row is None:
                raise ProvisionError(f"user {op.name} does not exist")
            old_uid, old_gid = int(row[2]), int(row[3])
            if op.uid is not None:
                if op.uid in db.table("passwd").numeric_ids(2):
                    raise ProvisionError(f"user {op.name}: uid {op.uid} is already used")
                row[2] = str(op.uid)
            if op.primary_group is not None:
                gid = existing_gid(db, op.primary_group)
                if gid is None:
                    raise ProvisionError(f"user {op.name}: group {op.primary_group} does not exist")
                row[3] = str(gid)
            if op.gecos is not None:
                row[4] = op.gecos
            if op.home is not None:
                row[5] = op.home
            if op.shell is not None:
                row[6] = op.shell
            if op.groups is not None:
                wanted = set(op.groups)
                for group in op.groups:
                    self._add_member(db, group, op.name)
                for kind, column in (("group", 3), ("gshadow", 3)):
                    for grow in db.table(kind).rows():
                        if grow[0] not in wanted and op.name in split_list(grow[column]):
                            grow[column] = ",".join(m for m in split_list(grow[column]) if m != op.name)
            password = stored_password(op.password_hash)
            if password is not None:
                secret = db.table("shadow").get(op.name) if db.has("shadow") else None
                if secret is not None:
                    secret[1] = password
                    secret[2] = days_since_epoch()
                else:
                    row[1] = password
            new_uid, new_gid = int(row[2]), int(row[3])
            # usermod -u/-g moves ownership of the home's files along; done
            # before passwd is saved so a crash in between is redone by the rerun.
            if (new_uid, new_gid) != (old_uid, old_gid):
                chown_tree(self.tree, row[5], (old_uid, old_gid), (new_uid, new_gid))
            db.save("shadow", "gshadow", "group", "passwd")

    def delete_user(self, name: str) -> None:
        defaults = self._defaults()
        with locked(self.tree, self.etc, ALL):
            db = self._load()
            row = db.table("passwd").get(name)
            gid = row[3] if row is not None else None
            for kind in ("group", "gshadow"):
                for grow in db.table(kind).rows():
                    grow[3] = ",".join(m for m in split_list(grow[3]) if m != name)
            for grow in db.table("gshadow").rows():
                grow[2] = ",".join(m for m in split_list(grow[2]) if m != name)
            own = db.table("group").get(name)
            # userdel removes the user's private group when nothing else uses it.
            if defaults.user_groups and own is not None and own[2] == gid and not split_list(own[3]):
                others = [r for r in db.table("passwd").rows() if r[3] == gid and r[0] != name]
                if not others:
                    db.table("group").remove(name)
                    if db.has("gshadow"):
                        db.tables["gshadow"].remove(name)
            for kind in ("subuid", "subgid", "shadow"):
                if db.has(kind):
                    db.tables[kind].remove(name)
            db.table("passwd").remove(name)
            # Removed from passwd last: until then a rerun sees the user and finishes.
            db.save("gshadow", "group", "subuid", "subgid", "shadow", "passwd")


def add_subordinate(db: AccountDatabase, kind: str, name: str, span: IdRange, count: int) -> bool:
    """Give ``name`` a free range of ``count`` subordinate ids in ``kind`` unless it has one."""
    table = db.tables[kind]
    if table.get(name) is not None:
        return False
    taken = [(int(r[1]), int(r[2])) for r in table.rows() if r[1].isdigit() and r[2].isdigit()]
    start = choose_subordinate_range(taken, span, count)
    table.put([name, str(start), str(count)])
    return True


def shadow_row(name: str, password: str, system: bool, defaults: AccountDefaults) -> list[str]:
    """The shadow row useradd writes: no password aging for system accounts."""
    aging = ["", "", ""] if system else [
        _num(defaults.pass_min_days), _num(defaults.pass_max_days), _num(defaults.pass_warn_age)
    ]
    return [name, password, days_since_epoch(), *aging, "", "", ""]
