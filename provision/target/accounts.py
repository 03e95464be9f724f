"""Read the target root's passwd and group files to resolve owner names.

Owners in a config are looked up in the TARGET's /etc/passwd and /etc/group
(never the host's), read through :class:`provision.target.tree.TargetTree` so
a hostile /etc/passwd symlink cannot make us read a host file. The users stage
runs before files and units, so names it created are found here.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.target.tree import TargetTree


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _rows(tree: TargetTree, path: str, min_fields: int) -> list[list[str]]:
    # A dangling link, FIFO or device is an error naming the path, not "no accounts".
    data = tree.read_bytes(path, dangling_ok=False)
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        # Comments, NIS "+" lines and damaged rows are not accounts.
        if len(fields) < min_fields or not fields[0] or fields[0][0] in "#+-":
            continue
        rows.append(fields)
    return rows


def read_passwd(tree: TargetTree) -> list[PasswdEntry]:
    entries = []
    for f in _rows(tree, "/etc/passwd", 7):
        if f[2].isdigit() and f[3].isdigit():
            entries.append(PasswdEntry(f[0], int(f[2]), int(f[3]), f[4], f[5], f[6]))
    return entries


def read_group(tree: TargetTree) -> list[GroupEntry]:
    entries = []
    for f in _rows(tree, "/etc/group", 4):
        if f[2].isdigit():
            members = tuple(m for m in f[3].split(",") if m)
            entries.append(GroupEntry(f[0], int(f[2]), members))
    return entries


class OwnerLookup:
    """Name -> id maps of one target root, read once (after the users stage ran)."""

    def __init__(self, tree: TargetTree) -> None:
        # First entry wins, as in getpwnam(3) over a files database.
        self.uids: dict[str, int] = {}
        self.gids: dict[str, int] = {}
        self.primary_gids: dict[str, int] = {}
        for user in read_passwd(tree):
            self.uids.setdefault(user.name, user.uid)
            self.primary_gids.setdefault(user.name, user.gid)
        for group in read_group(tree):
            self.gids.setdefault(group.name, group.gid)

    def uid(self, name: str) -> int | None:
        return self.uids.get(name)

    def gid(self, name: str) -> int | None:
        return self.gids.get(name)
