"""The files stage: files, directories and links (Ignition spec 3.x semantics).

- ``overwrite`` defaults to false: then a node already at the path is an
  error, except an existing file with no new contents (only append, mode or
  owner change it), an existing directory for a directory entry, and a
  symlink or hard link that already is what the config asks for;
- a file created or replaced gets mode 0644, a directory 0755, owner
  root:root unless set; a node that is kept keeps its mode and owner unless
  set (what Ignition does when mode is unset);
- owners by name resolve against the TARGET's passwd and group, after the
  users stage ran, so users the same config creates are found;
- parents are created as needed (0755 root:root);
- all contents are fetched (staged) before the first write of ANY stage, so
  a failed fetch changes nothing; each item is written atomically as its
  computed final state.

Entries are applied shallowest path first (directories, files, symlinks),
hard links last, as Ignition does. The pre-image of every path is recorded
before the first change (see :mod:`provision.stages.journal`) so a killed run
converges on rerun without doubling appends.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from provision.config.model import Config, Directory, File, Link, NodeOwner, Resource
from provision.errors import ProvisionError, StageError
from provision.stages import crashpoint
from provision.stages.base import Action, Plan, StageBase, Step, Target
from provision.stages.journal import StageJournal, config_digest
from provision.stages.staging import Need, Staging
from provision.target.accounts import OwnerLookup
from provision.target.tree import NodeState, TargetMissingError, TargetTree, copy_chunks, split_path

log = logging.getLogger(__name__)

NAME = "files"
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


@dataclass(frozen=True)
class Item:
    """One entry of the stage, with everything needed to apply it."""

    kind: str  # file, directory, symlink, hardlink
    path: str  # canonical, absolute, inside the root
    action: str  # create, replace, append, update, unchanged
    user: NodeOwner
    group: NodeOwner
    mode: int | None = None  # None: keep the existing mode
    keep_uid: int | None = None  # existing owner, kept when user/group unset
    keep_gid: int | None = None
    contents: Resource | None = None  # file: new contents (None: empty or kept)
    append: tuple[Resource, ...] = ()
    base: str = "new"  # file: "new" contents, "preimage" (append to it), "keep" (no write)
    target: str | None = None  # links


def canonical(path: str) -> str:
    """Lexically clean an absolute path; ``..`` never climbs above the root."""
    parts: list[str] = []
    for part in split_path(path):
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def _state_dict(state: NodeState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    data = asdict(state)
    data["inode"] = list(state.inode)
    return data


def _state_from(data: dict[str, Any] | None) -> NodeState | None:
    if data is None:
        return None
    data = dict(data)
    data["inode"] = tuple(data["inode"])
    return NodeState(**data)


def _blob_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _exists_error(path: str, what: str, hint: str) -> StageError:
    return StageError(NAME, path, f"{what} already exists at this path and overwrite is false; {hint}")


class _Planner:
    def __init__(self, config: Config, tree: TargetTree, preimage: dict[str, Any] | None) -> None:
        self.config = config
        self.tree = tree
        self.preimage = preimage
        self.states: dict[str, dict[str, Any] | None] = {}

    def state(self, path: str) -> NodeState | None:
        if self.preimage is not None and path in self.preimage:
            return _state_from(self.preimage[path])
        try:
            current = self.tree.state(path)
        except ProvisionError as exc:
            raise StageError(NAME, path, str(exc)) from exc
        self.states[path] = _state_dict(current)
        return current

    def file(self, entry: File) -> Item:
        path = canonical(entry.path)
        state = self.state(path)
        has_source = entry.contents is not None and entry.contents.source is not None
        common: dict[str, Any] = {"user": entry.user, "group": entry.group, "append": entry.append}
        if state is None:
            return Item("file", path, "create", mode=_mode(entry.mode, FILE_MODE),
                        contents=entry.contents, **common)
        if entry.overwrite:
            return Item("file", path, "replace", mode=_mode(entry.mode, FILE_MODE),
                        contents=entry.contents, **common)
        if state.kind != "file":
            raise _exists_error(path, f"a {_kind_name(state)}", "set overwrite: true to replace it")
        if has_source:
            raise _exists_error(
                path, "a file",
                "set overwrite: true to replace it, or use append to add to it",
            )
        kept: dict[str, Any] = {"keep_uid": state.uid, "keep_gid": state.gid}
        mode = entry.mode if entry.mode is not None else state.mode
        if entry.append:
            return Item("file", path, "append", mode=mode, base="preimage", **kept, **common)
        changed = mode != state.mode or _owner_changes(entry, state)
        return Item("file", path, "update" if changed else "unchanged", mode=mode, base="keep",
                    **kept, **common)

    def directory(self, entry: Directory) -> Item:
        path = canonical(entry.path)
        state = self.state(path)
        common: dict[str, Any] = {"user": entry.user, "group": entry.group}
        if state is None:
            return Item("directory", path, "create", mode=_mode(entry.mode, DIRECTORY_MODE), **common)
        if entry.overwrite:
            return Item("directory", path, "replace", mode=_mode(entry.mode, DIRECTORY_MODE), **common)
        if state.kind != "directory":
            raise _exists_error(path, f"a {_kind_name(state)}", "set overwrite: true to replace it")
        mode = entry.mode if entry.mode is not None else state.mode
        changed = mode != state.mode or _owner_changes(entry, state)
        return Item("directory", path, "update" if changed else "unchanged", mode=mode,
                    keep_uid=state.uid, keep_gid=state.gid, **common)

    def link(self, entry: Link) -> Item:
        path = canonical(entry.path)
        state = self.state(path)
        kind = "hardlink" if entry.hard else "symlink"
        common: dict[str, Any] = {"user": entry.user, "group": entry.group, "target": entry.target}
        if state is None:
            return Item(kind, path, "create", **common)
        if entry.overwrite:
            return Item(kind, path, "replace", **common)
        if kind == "symlink":
            if state.kind != "link":
                raise _exists_error(path, f"a {_kind_name(state)}", "set overwrite: true to replace it")
            if state.link_target != entry.target:
                raise _exists_error(
                    path, "a symlink to a different target", "set overwrite: true to replace it"
                )
            return Item(kind, path, "unchanged", **common)
        target_state = self.state(canonical(entry.target))
        if target_state is None or target_state.inode != state.inode:
            raise _exists_error(path, f"a {_kind_name(state)}", "set overwrite: true to replace it")
        return Item(kind, path, "unchanged", **common)


def _mode(mode: int | None, default: int) -> int:
    return default if mode is None else mode


def _kind_name(state: NodeState) -> str:
    return {"file": "file", "directory": "directory", "link": "symlink"}.get(state.kind, "special file")


def _owner_changes(entry: File | Directory, state: NodeState) -> bool:
    # Only ids can be compared before the users stage ran; a name counts as a change.
    user, group = entry.user, entry.group
    return (
        (user.id is not None and user.id != state.uid) or user.name is not None
        or (group.id is not None and group.id != state.gid) or group.name is not None
    )


def _ordered(config: Config) -> list[File | Directory | Link]:
    """Shallowest path first (directories, files, symlinks), hard links last."""
    storage = config.storage
    entries: list[File | Directory | Link] = [
        *storage.directories, *storage.files, *(link for link in storage.links if not link.hard)
    ]
    entries.sort(key=lambda e: len(split_path(canonical(e.path))))
    entries += [link for link in storage.links if link.hard]
    return entries


@dataclass
class FilesPlan:
    items: list[Item]
    preimage: dict[str, Any]  # path -> recorded state, for the journal
    resumed: bool  # planned from a recorded pre-image
    digest: str


class FilesStage(StageBase):
    name = NAME
    phase = "files"

    def is_empty(self, config: Config) -> bool:
        s = config.storage
        return not (s.files or s.directories or s.links)

    def needs(self, config: Config, target: Target) -> list[Need]:
        """Every file's contents and appends (whether or not the plan keeps the file)."""
        needs = []
        for entry in config.storage.files:
            path = canonical(entry.path)
            if entry.contents is not None:
                needs.append(Need(_contents_key(path), path, entry.contents))
            needs += [Need(_append_key(path, i), path, r) for i, r in enumerate(entry.append)]
        return needs

    def make_plan(self, config: Config, target: Target) -> Plan:
        digest = config_digest(config)
        with TargetTree(target.root) as tree:
            recorded = StageJournal(tree, NAME, digest).load()
            planner = _Planner(config, tree, recorded)
            items = []
            for entry in _ordered(config):
                if isinstance(entry, File):
                    items.append(planner.file(entry))
                elif isinstance(entry, Directory):
                    items.append(planner.directory(entry))
                else:
                    items.append(planner.link(entry))
            _check_owner_names(config, tree, items)
            _check_hard_link_targets(planner, items)
            _check_same_node_through_links(tree, items)
        preimage = recorded if recorded is not None else planner.states
        actions = [Action(i.action, i.path, i.kind) for i in items]
        return Plan(NAME, actions, FilesPlan(items, preimage, recorded is not None, digest))

    @contextlib.contextmanager
    def steps(self, plan: Plan, target: Target, staged: Staging) -> Iterator[list[Step]]:
        data: FilesPlan = plan.data
        with TargetTree(target.root) as tree:
            journal = StageJournal(tree, NAME, data.digest)
            if not data.resumed:
                journal.record(data.preimage, _append_preimages(tree, data.items))
            owners = OwnerLookup(tree)
            # Deferred writes commit later: each commit is a crash point too.
            tree.on_commit = crashpoint.item_done
            with tree.deferred():
                yield [Step(item.path, partial(_apply_item, tree, journal, owners, item, staged))
                       for item in data.items]


def _contents_key(path: str) -> str:
    return f"{path}#contents"


def _append_key(path: str, index: int) -> str:
    return f"{path}#append{index}"


def _check_owner_names(config: Config, tree: TargetTree, items: list[Item]) -> None:
    """Fail at plan time on an owner name neither the target nor the config has."""
    owners = OwnerLookup(tree)
    config_users = {u.name for u in config.passwd.users if u.should_exist}
    config_groups = {g.name for g in config.passwd.groups if g.should_exist}
    config_groups |= {u.name for u in config.passwd.users if u.should_exist and not u.no_user_group}
    for item in items:
        user, group = item.user.name, item.group.name
        if item.user.id is None and user is not None and owners.uid(user) is None and user not in config_users:
            raise StageError(NAME, item.path, f"user {user!r} does not exist in the target")
        if item.group.id is None and group is not None and owners.gid(group) is None and group not in config_groups:
            raise StageError(NAME, item.path, f"group {group!r} does not exist in the target")


def _check_same_node_through_links(tree: TargetTree, items: list[Item]) -> None:
    """Two entries that reach one node through a symlink already in the target: fail before writing.

    (Links the config itself declares are refused earlier, by validate.)
    Ignition finds this only when the second write collides.
    """
    seen: dict[str, str] = {}
    for item in items:
        resolved = _resolved(tree, item.path)
        other = seen.setdefault(resolved, item.path)
        if other != item.path:
            raise StageError(NAME, item.path, f"is the same node as {other} on the target ({resolved}), "
                             "reached through a symlink already there")


def _resolved(tree: TargetTree, path: str) -> str:
    """``path`` with the symlinks among its existing parents followed (inside the root)."""
    parts = split_path(path)
    for cut in range(len(parts), 0, -1):  # the deepest part that exists decides
        try:
            head = tree.resolve("/" + "/".join(parts[:cut]), follow_last=cut < len(parts))
        except TargetMissingError:
            continue
        except ProvisionError as exc:
            raise StageError(NAME, path, str(exc)) from exc
        return canonical("/".join([head, *parts[cut:]]))
    return canonical(path)


def _check_hard_link_targets(planner: _Planner, items: list[Item]) -> None:
    """A hard link's target must exist or be made earlier in this stage: fail before writing."""
    made: set[str] = set()
    for item in items:
        if item.kind == "hardlink":
            assert item.target is not None
            target = canonical(item.target)
            if target not in made and planner.state(target) is None:
                raise StageError(NAME, item.path, f"hard link target {target} does not exist in the target")
        made.add(item.path)


def _append_preimages(tree: TargetTree, items: list[Item]) -> dict[str, bytes]:
    """The current contents of files we append to, saved before the first change."""
    blobs = {}
    for item in items:
        if item.base == "preimage":
            data = tree.read_bytes(item.path)
            blobs[_blob_key(item.path)] = data if data is not None else b""
    return blobs


def _resolve(owner: NodeOwner, lookup: dict[str, int], what: str, keep: int | None, path: str) -> int:
    if owner.id is not None:
        return owner.id
    if owner.name is not None:
        found = lookup.get(owner.name)
        if found is None:
            raise StageError(NAME, path, f"{what} {owner.name!r} does not exist in the target")
        return found
    return 0 if keep is None else keep


def _file_chunks(journal: StageJournal, item: Item, staged: Staging) -> Iterator[bytes]:
    if item.base == "preimage":
        yield journal.blob(_blob_key(item.path))
    keys = [_contents_key(item.path)] if item.base == "new" and item.contents is not None else []
    keys += [_append_key(item.path, i) for i in range(len(item.append))]
    for key in keys:
        with staged.open(NAME, key) as handle:
            yield from copy_chunks(handle)


def _apply_item(
    tree: TargetTree, journal: StageJournal, owners: OwnerLookup, item: Item, staged: Staging,
) -> None:
    uid = _resolve(item.user, owners.uids, "user", item.keep_uid, item.path)
    gid = _resolve(item.group, owners.gids, "group", item.keep_gid, item.path)
    if item.kind == "file":
        mode = FILE_MODE if item.mode is None else item.mode
        if item.base == "keep":
            tree.set_owner_mode(item.path, mode=mode, uid=uid, gid=gid)
        else:
            tree.write_file(item.path, _file_chunks(journal, item, staged), mode=mode, uid=uid, gid=gid)
    elif item.kind == "directory":
        mode = DIRECTORY_MODE if item.mode is None else item.mode
        if item.action == "replace":
            tree.remove(item.path)
        tree.make_directory(item.path, mode=mode, uid=uid, gid=gid, replace=True)
    elif item.kind == "symlink":
        assert item.target is not None
        tree.symlink(item.path, item.target, uid=uid, gid=gid)
    else:
        assert item.target is not None
        # Like Ignition, a hard link gets no owner of its own: it shares the target's inode.
        tree.hardlink(item.path, canonical(item.target))


STAGE = FilesStage()
