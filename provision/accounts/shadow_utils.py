"""Changing accounts with shadow-utils run as ``tool --root DIR`` (opt-in only).

Not the default: the tools run code shipped in the target as host root (see
:mod:`provision.accounts.backend`). The tools chroot into the target, so they read the target's login.defs,
default/useradd and databases and take the same locks as on the running
system. Password hashes never appear on a command line (where ``ps`` and our
own argv log would show them): the hash is written into shadow/gshadow
directly, under the same locks, as ``chpasswd -e`` would (one process less per
account). Home directories are made by
:mod:`provision.accounts.home`, so ``useradd`` runs with ``--no-create-home``.
"""

from __future__ import annotations

from provision.accounts.direct import DirectBackend
from provision.accounts.edits import GroupEdit, NewGroup, NewUser, UserEdit, stored_password
from provision.accounts.tables import Table
from provision.run import have_tool, run
from provision.target.tree import TargetTree

TOOLS = ("useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel")


def available() -> bool:
    return all(have_tool(tool) for tool in TOOLS)


class ShadowUtilsBackend:
    name = "shadow-utils"

    def __init__(self, tree: TargetTree) -> None:
        self.tree = tree
        self.root = str(tree.root)
        self.direct = DirectBackend(tree)

    def _run(self, tool: str, args: list[str]) -> None:
        run(tool, ["--root", self.root, *args])

    def _set_password(self, kind: str, name: str, password_hash: str) -> None:
        # What chpasswd -e / chgpasswd -e do (hash, and lastchg for users), without a process.
        # The direct writer maps "" to a locked "!": never an empty password field.
        if kind == "user":
            self.direct.edit_user(UserEdit(name, password_hash=password_hash))
        else:
            self.direct.edit_group(GroupEdit(name, password_hash=password_hash))

    def add_group(self, op: NewGroup) -> None:
        args = (["-g", str(op.gid)] if op.gid is not None else []) + (["-r"] if op.system else [])
        self._run("groupadd", [*args, op.name])
        if op.password_hash is not None:
            self._set_password("group", op.name, op.password_hash)

    def edit_group(self, op: GroupEdit) -> None:
        if op.gid is not None:
            self._run("groupmod", ["-g", str(op.gid), op.name])
        if op.password_hash is not None:
            self._set_password("group", op.name, op.password_hash)

    def delete_group(self, name: str) -> None:
        self._run("groupdel", [name])

    def _group_exists(self, name: str) -> bool:
        etc = self.tree.resolve("/etc")
        data = self.tree.read_bytes(f"{etc}/group") or b""
        return Table.parse("group", data.decode(errors="replace")).get(name) is not None

    def add_user(self, op: NewUser) -> None:
        args = ["--no-create-home"]
        if op.uid is not None:
            args += ["--uid", str(op.uid)]
        if op.gecos is not None:
            args += ["--comment", op.gecos]
        if op.home is not None:
            args += ["--home-dir", op.home]
        if op.primary_group is not None:
            args += ["--gid", op.primary_group]
        elif op.user_group and self._group_exists(op.name):
            # Left by an interrupted run, or declared in the config: adopt it
            # (useradd would refuse to create a user group over it).
            args += ["--gid", op.name]
        elif not op.user_group:
            args += ["--no-user-group"]
        if op.groups:
            args += ["--groups", ",".join(op.groups)]
        if op.no_log_init:
            args += ["--no-log-init"]
        if op.shell is not None:
            args += ["--shell", op.shell]
        if op.system:
            args += ["--system"]
        # The field useradd writes: "*" or "!" themselves (not secrets, and written
        # at once, so a kill cannot leave useradd's own "!" behind), else "*" until
        # the hash is set below, out of argv.
        password = stored_password(op.password_hash, new_user=True) or "*"
        marker = password if all(c in "!*" for c in password) else "*"
        self._run("useradd", [*args, "--password", marker, op.name])
        if password != marker:
            self._set_password("user", op.name, password)

    def edit_user(self, op: UserEdit) -> None:
        args = []
        if op.uid is not None:
            args += ["--uid", str(op.uid)]
        if op.gecos is not None:
            args += ["--comment", op.gecos]
        if op.home is not None:
            args += ["--home", op.home]
        if op.primary_group is not None:
            args += ["--gid", op.primary_group]
        if op.groups is not None:
            args += ["--groups", ",".join(op.groups)]
        if op.shell is not None:
            args += ["--shell", op.shell]
        if args:
            self._run("usermod", [*args, op.name])
        if op.password_hash is not None:
            self._set_password("user", op.name, op.password_hash)

    def delete_user(self, name: str) -> None:
        self._run("userdel", [name])
