"""Loading and saving the account databases of one target root.

Read and written through :class:`provision.target.tree.TargetTree`, so a
hostile ``/etc`` or ``/etc/passwd`` symlink cannot make us read or write a host
file. Saving follows shadow-utils: the old file is kept as ``<name>-``, the
new one replaces it atomically (scratch file, fsync, rename), and an existing
file keeps its mode and owner. Files created here get 0644 (passwd, group,
subuid, subgid) or 0640 root:shadow — 0600 root:root when the root has no
shadow group — (shadow, gshadow).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.accounts.tables import Table
from provision.target.tree import TargetTree

DATABASES = ("passwd", "shadow", "group", "gshadow", "subuid", "subgid")
SECRET_DATABASES = frozenset({"shadow", "gshadow"})
# Created when missing so both backends always see the same set of files.
REQUIRED = ("passwd", "shadow", "group", "gshadow")


def _read(tree: TargetTree, path: str) -> str | None:
    """The database's text; None when absent. A dangling link, a FIFO or a device is an error:
    read as "empty" it would make the next save drop every account."""
    data = tree.read_bytes(path, dangling_ok=False)
    return None if data is None else data.decode(errors="surrogateescape")


@dataclass
class AccountDatabase:
    tree: TargetTree
    etc: str  # canonical in-root path of /etc
    tables: dict[str, Table] = field(default_factory=dict)

    @classmethod
    def load(cls, tree: TargetTree, etc: str) -> AccountDatabase:
        db = cls(tree, etc)
        for kind in DATABASES:
            text = _read(tree, f"{etc}/{kind}")
            if text is not None:
                db.tables[kind] = Table.parse(kind, text)
        return db

    def table(self, kind: str) -> Table:
        """The table; an absent file is an empty table that is never saved."""
        if kind not in self.tables:
            return Table(kind)
        return self.tables[kind]

    def has(self, kind: str) -> bool:
        return kind in self.tables

    def shadow_gid(self) -> int | None:
        row = self.table("group").get("shadow")
        return int(row[2]) if row and row[2].isdigit() else None

    def save(self, *kinds: str) -> None:
        """Write ``kinds`` in the order given (the order decides what a crash leaves)."""
        for kind in kinds:
            if kind in self.tables:
                replace_database_file(
                    self.tree,
                    f"{self.etc}/{kind}",
                    self.tables[kind].render().encode(errors="surrogateescape"),
                    default_mode(kind, self.shadow_gid()),
                )


def default_mode(kind: str, shadow_gid: int | None) -> tuple[int, int, int]:
    """(mode, uid, gid) for a newly created database file."""
    if kind in SECRET_DATABASES:
        return (0o640, 0, shadow_gid) if shadow_gid is not None else (0o600, 0, 0)
    return (0o644, 0, 0)


def replace_database_file(
    tree: TargetTree, path: str, data: bytes, default: tuple[int, int, int]
) -> None:
    """Atomically replace ``path`` with ``data``, keeping a ``<name>-`` backup."""
    state = tree.state(path)
    if state is not None and state.kind == "file":
        mode, uid, gid = state.mode, state.uid, state.gid
        old = tree.read_bytes(path) or b""
        if old == data:
            return
        tree.write_file(path + "-", [old], mode=mode, uid=uid, gid=gid)
    else:
        mode, uid, gid = default
    tree.write_file(path, [data], mode=mode, uid=uid, gid=gid)


def ensure_database_files(tree: TargetTree, etc: str) -> list[str]:
    """Create missing passwd/shadow/group/gshadow (empty, default modes); return what was made."""
    made = []
    text = _read(tree, f"{etc}/group")
    row = Table.parse("group", text).get("shadow") if text is not None else None
    shadow_gid = int(row[2]) if row and row[2].isdigit() else None
    for kind in REQUIRED:
        if tree.state(f"{etc}/{kind}") is None:
            replace_database_file(tree, f"{etc}/{kind}", b"", default_mode(kind, shadow_gid))
            made.append(kind)
    return made
