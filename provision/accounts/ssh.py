"""SSH authorized keys, and making sshd read where we put them.

Keys go to ``~/.ssh/authorized_keys.d/provision`` (directories 0700, file
0600, all owned by the user), written whole and atomically so a rerun never
doubles a key. OpenSSH reads only the files ``AuthorizedKeysFile`` names and
takes the FIRST value it meets for a keyword. So:

- if the effective setting already lists our file, nothing changes;
- if sshd_config includes ``sshd_config.d/*.conf`` before any
  AuthorizedKeysFile setting, a drop-in ``40-provision.conf`` sets it (the
  image's later value, or sshd's default, plus our file);
- otherwise (no Include, or a setting met first) the same line goes at the
  top of sshd_config itself, the only place certain to be read first.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from provision.target.tree import TargetTree

KEYS_FILE = ".ssh/authorized_keys.d/provision"
SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/40-provision.conf"
SSHD_DEFAULT = ".ssh/authorized_keys .ssh/authorized_keys2"
MARKER = "# provision: also read keys from ~/" + KEYS_FILE


def keys_text(keys: tuple[str, ...]) -> bytes:
    return "".join(key.strip() + "\n" for key in keys).encode()


def write_authorized_keys(
    tree: TargetTree, home: str, uid: int, gid: int, keys: tuple[str, ...]
) -> bool:
    """Make ~/.ssh/authorized_keys.d/provision hold exactly ``keys``; True if anything changed."""
    home = home.rstrip("/") or ""
    ssh_dir, keys_dir, path = f"{home}/.ssh", f"{home}/.ssh/authorized_keys.d", f"{home}/{KEYS_FILE}"
    data = keys_text(keys)
    wanted = [(ssh_dir, "directory", 0o700), (keys_dir, "directory", 0o700), (path, "file", 0o600)]
    if all(_matches(tree, p, kind, mode, uid, gid) for p, kind, mode in wanted) and (
        tree.read_bytes(path) == data
    ):
        return False
    tree.make_directory(ssh_dir, mode=0o700, uid=uid, gid=gid, replace=True)
    tree.make_directory(keys_dir, mode=0o700, uid=uid, gid=gid, replace=True)
    tree.write_file(path, [data], mode=0o600, uid=uid, gid=gid)
    return True


def _matches(tree: TargetTree, path: str, kind: str, mode: int, uid: int, gid: int) -> bool:
    state = tree.state(path)
    return state is not None and (state.kind, state.mode, state.uid, state.gid) == (kind, mode, uid, gid)


@dataclass(frozen=True)
class SshdChange:
    path: str  # file written
    text: bytes
    mode: int
    uid: int
    gid: int


def _directives(text: str) -> list[tuple[str, str]]:
    """(lower-case keyword, value) of the global section, in order (a Match block ends it)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.replace("=", " ", 1).partition(" ")
        keyword = keyword.lower()
        if keyword == "match":
            break
        out.append((keyword, value.strip()))
    return out


def _include_matches(pattern: str, path: str) -> bool:
    return any(
        fnmatch.fnmatch(path, p if p.startswith("/") else f"/etc/ssh/{p}") for p in pattern.split()
    )


def _settings_in_order(tree: TargetTree, main: str) -> tuple[list[str], bool, list[str]]:
    """Values of AuthorizedKeysFile met before our drop-in, whether it is included, values after."""
    before: list[str] = []
    after: list[str] = []
    included = False
    for keyword, value in _directives(main):
        if keyword == "include":
            if _include_matches(value, SSHD_DROPIN):
                included = True
            for name in _included_files(tree, value):
                text = (tree.read_bytes(name, dangling_ok=False) or b"").decode(errors="replace")
                found = [v for k, v in _directives(text) if k == "authorizedkeysfile"]
                (after if included and name > SSHD_DROPIN else before).extend(found)
        elif keyword == "authorizedkeysfile":
            (after if included else before).append(value)
    return before, included, after


def _included_files(tree: TargetTree, pattern: str) -> list[str]:
    """The files an Include pattern names, listed through the tree (never outside the root)."""
    files = []
    for part in pattern.split():
        full = part if part.startswith("/") else f"/etc/ssh/{part}"
        directory, _, glob = full.rpartition("/")
        for name, _st in tree.list_directory(directory) or []:
            if fnmatch.fnmatch(name, glob) and name != SSHD_DROPIN.rpartition("/")[2]:
                files.append(f"{directory}/{name}")
    return files


def sshd_change(tree: TargetTree) -> SshdChange | None:
    """What to write so sshd reads our keys file, or None if it already does / sshd is absent."""
    data = tree.read_bytes(SSHD_CONFIG, dangling_ok=False)
    if data is None:
        return None  # no sshd in the image: nothing reads keys anyway
    main = data.decode(errors="surrogateescape")
    if MARKER in main:
        return None
    before, included, after = _settings_in_order(tree, main)
    if before and KEYS_FILE in before[0].split():
        return None
    base = (before or after or [SSHD_DEFAULT])[0]
    files = [f for f in base.split() if f.lower() != "none"]
    line = "AuthorizedKeysFile " + " ".join([*files, KEYS_FILE])
    if included and not before:
        text = f"{MARKER}\n{line}\n".encode()
        if tree.read_bytes(SSHD_DROPIN) == text:
            return None
        return SshdChange(SSHD_DROPIN, text, 0o644, 0, 0)
    state = tree.state(SSHD_CONFIG)
    mode, uid, gid = (state.mode, state.uid, state.gid) if state else (0o644, 0, 0)
    text = f"{MARKER}\n{line}\n\n".encode() + data
    return SshdChange(SSHD_CONFIG, text, mode, uid, gid)


def apply_sshd_change(tree: TargetTree, change: SshdChange) -> None:
    tree.write_file(change.path, [change.text], mode=change.mode, uid=change.uid, gid=change.gid)
