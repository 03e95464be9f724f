"""The target's account defaults: /etc/login.defs and /etc/default/useradd.

Read from the TARGET root, never the host, with the same built-in fallbacks
shadow-utils 4.13 uses when a key is absent, so the direct writer allocates
the same ids and fills the same fields as ``useradd --root`` would.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.target.tree import TargetTree


def _read_pairs(tree: TargetTree, path: str, separator: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    data = tree.read_bytes(path, dangling_ok=False)  # a link out of the root is an error, not "absent"
    if data is None:
        return values
    text = data.decode(errors="replace")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if separator is None:  # login.defs: KEY <whitespace> VALUE
            key, *rest = line.split(None, 1)
            value = rest[0] if rest else ""
        else:
            key, _, value = line.partition(separator)
        values[key.strip()] = value.strip().strip('"')
    return values


def _int(values: dict[str, str], key: str, default: int) -> int:
    try:
        return int(values[key], 0) if key in values else default
    except ValueError:
        return default


def _octal(values: dict[str, str], key: str) -> int | None:
    try:
        return int(values[key], 8) if key in values else None
    except ValueError:
        return None


@dataclass(frozen=True)
class IdRange:
    low: int
    high: int


@dataclass(frozen=True)
class AccountDefaults:
    uids: IdRange
    system_uids: IdRange
    gids: IdRange
    system_gids: IdRange
    user_groups: bool  # USERGROUPS_ENAB: a group named after each new user
    home_mode: int
    pass_min_days: int
    pass_max_days: int
    pass_warn_age: int
    sub_uids: IdRange
    sub_uid_count: int
    sub_gids: IdRange
    sub_gid_count: int
    default_group: str  # GROUP in /etc/default/useradd: primary group without a user group
    home_base: str
    shell: str
    skel: str
    create_mail_spool: bool  # CREATE_MAIL_SPOOL=yes in default/useradd
    mail_dir: str
    nonexistent: str  # NONEXISTENT: a home that must never be created


def load_defaults(tree: TargetTree, etc: str = "/etc") -> AccountDefaults:
    """Read the root's login.defs and default/useradd."""
    defs = _read_pairs(tree, f"{etc}/login.defs", None)
    useradd = _read_pairs(tree, f"{etc}/default/useradd", "=")
    uid_min = _int(defs, "UID_MIN", 1000)
    gid_min = _int(defs, "GID_MIN", 1000)
    umask = _octal(defs, "UMASK")
    home_mode = _octal(defs, "HOME_MODE")
    if home_mode is None:
        home_mode = 0o777 & ~(umask if umask is not None else 0o022)
    return AccountDefaults(
        uids=IdRange(uid_min, _int(defs, "UID_MAX", 60000)),
        system_uids=IdRange(_int(defs, "SYS_UID_MIN", 101), _int(defs, "SYS_UID_MAX", uid_min - 1)),
        gids=IdRange(gid_min, _int(defs, "GID_MAX", 60000)),
        system_gids=IdRange(_int(defs, "SYS_GID_MIN", 101), _int(defs, "SYS_GID_MAX", gid_min - 1)),
        user_groups=defs.get("USERGROUPS_ENAB", "no").lower() == "yes",
        home_mode=home_mode,
        pass_min_days=_int(defs, "PASS_MIN_DAYS", -1),
        pass_max_days=_int(defs, "PASS_MAX_DAYS", -1),
        pass_warn_age=_int(defs, "PASS_WARN_AGE", -1),
        sub_uids=IdRange(_int(defs, "SUB_UID_MIN", 100000), _int(defs, "SUB_UID_MAX", 600100000)),
        sub_uid_count=_int(defs, "SUB_UID_COUNT", 65536),
        sub_gids=IdRange(_int(defs, "SUB_GID_MIN", 100000), _int(defs, "SUB_GID_MAX", 600100000)),
        sub_gid_count=_int(defs, "SUB_GID_COUNT", 65536),
        default_group=useradd.get("GROUP", "100"),
        home_base=useradd.get("HOME", "/home"),
        shell=useradd.get("SHELL", "/bin/bash"),
        skel=useradd.get("SKEL", "/etc/skel"),
        create_mail_spool=useradd.get("CREATE_MAIL_SPOOL", "no").lower() == "yes",
        mail_dir=defs.get("MAIL_DIR", "/var/mail"),
        nonexistent=defs.get("NONEXISTENT", "/nonexistent"),
    )
