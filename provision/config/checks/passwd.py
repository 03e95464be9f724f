"""Checks on users and groups: names, ids, password hashes, SSH keys, fields
that end up in /etc/passwd. Messages never quote a password hash."""

from __future__ import annotations

import re
from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import duplicate_errors, length_problem
from provision.config.checks.sshkeys import authorized_key_diagnostics
from provision.diagnostics import ConfigPath, Diagnostic, error, warning

MAX_ID = 2**32 - 2  # (uid_t)-1 means "no id" to the kernel and libc
MAX_NAME = 32
# crypt(3) schemes passlib knows, strongest first; the last ones only warn.
CRYPT_SCHEMES = (
    "sha512_crypt", "sha256_crypt", "bcrypt", "sha1_crypt", "sun_md5_crypt",
    "md5_crypt", "bsdi_crypt", "bigcrypt", "des_crypt",
)  # fmt: skip
WEAK_SCHEMES = {"md5_crypt", "bsdi_crypt", "bigcrypt", "des_crypt"}
# libxcrypt schemes passlib does not know: yescrypt (the Debian, Ubuntu and
# Fedora default), gost-yescrypt and scrypt. Checked by shape.
_XCRYPT_PATTERN = r"^\$(y|gy|7)\$[./A-Za-z0-9]+\$[./A-Za-z0-9]*\$[./A-Za-z0-9]{43}$"
# The common schemes' exact shapes (default rounds): recognised without
# importing passlib, which costs boot time; every other form goes to passlib.
_COMMON_SHAPES = {
    "sha512_crypt": r"^\$6\$[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{86}$",
    "sha256_crypt": r"^\$5\$[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{43}$",
    "bcrypt": r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}$",
}
# Patterns here are used with re.fullmatch: re.match's "$" also matches before a
# final newline, which would let "name\n" through into a database line.
_NAME_PATTERN = r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$"
HASH_HINT = "generate one with `mkpasswd --method=yescrypt` or `openssl passwd -6`"


def _is_locked_marker(value: str) -> bool:
    """Empty (Ignition locks the password), "*", "!", "!!": no password login."""
    return all(c in "!*" for c in value)


def hash_scheme(value: str) -> str | None:
    """The crypt(3) scheme of a password hash, or None when it is not one."""
    value = value.lstrip("!")  # "!" prefixes a locked account's hash
    if re.fullmatch(_XCRYPT_PATTERN, value):
        return {"y": "yescrypt", "gy": "gost_yescrypt", "7": "scrypt"}[value.split("$")[1]]
    for name, shape in _COMMON_SHAPES.items():
        if re.fullmatch(shape, value):
            return name
    import warnings

    from passlib.registry import get_crypt_handler

    for name in CRYPT_SCHEMES:
        handler = get_crypt_handler(name)
        if not handler.identify(value):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = handler.from_string(value)
        except (ValueError, TypeError):
            continue
        if getattr(parsed, "checksum", None):
            return name
    return None


def _hash_diagnostics(value: str | None, where: ConfigPath) -> Iterator[Diagnostic]:
    if value is None or _is_locked_marker(value):
        return
    if _field_problem(value):  # never quoted: it may be a real hash with a stray character
        yield error("passwordHash cannot contain ':', a line break or NUL", where, HASH_HINT)
        return
    scheme = hash_scheme(value)
    if scheme is None:
        yield error(
            "passwordHash is not a crypt(3) password hash passlib can identify", where, HASH_HINT
        )
    elif scheme in WEAK_SCHEMES:
        yield warning(f"passwordHash uses the weak {scheme} scheme", where, HASH_HINT)


def _name_problem(name: str) -> str | None:
    if len(name) > MAX_NAME:
        return f"name is longer than {MAX_NAME} characters"
    if name in (".", "..") or name.isdigit() or not re.fullmatch(_NAME_PATTERN, name):
        return "invalid name: use letters, digits, '_', '.', '-' (not first), not all digits"
    return None


def _field_problem(value: str | None) -> bool:
    """A value that would corrupt a passwd line."""
    return value is not None and any(c in value for c in ":\n\r\0")


def _group_reference_problem(group: str) -> str | None:
    """primaryGroup may name a group or give its gid (as useradd -g)."""
    if group.isdigit():
        return None if int(group) <= MAX_ID else f"gid {group} is out of range (at most {MAX_ID})"
    return _name_problem(group)


def check_users(config: model.Config) -> Iterator[Diagnostic]:
    users = config.passwd.users
    yield from duplicate_errors(
        ((u.name, ("passwd", "users", i, "name")) for i, u in enumerate(users)), "user name"
    )
    yield from duplicate_errors(
        (
            (u.uid, ("passwd", "users", i, "uid"))
            for i, u in enumerate(users)
            if u.uid is not None and u.should_exist
        ),
        "uid",
    )
    for i, user in enumerate(users):
        yield from _check_user(user, ("passwd", "users", i))


def _check_user(user: model.User, where: ConfigPath) -> Iterator[Diagnostic]:
    problem = _name_problem(user.name)
    if problem:
        yield error(problem, (*where, "name"))
    if user.uid is not None and user.uid > MAX_ID:
        yield error(f"uid {user.uid} is out of range (at most {MAX_ID})", (*where, "uid"))
    for key, value in (("gecos", user.gecos), ("homeDir", user.home_dir), ("shell", user.shell)):
        if _field_problem(value):
            yield error(f"{key} cannot contain ':', a line break or NUL", (*where, key))
    for key, value in (("homeDir", user.home_dir), ("shell", user.shell)):
        if value and not value.startswith("/"):
            yield error(f"{key} must be an absolute path", (*where, key))
        elif value and length_problem(value):
            yield error(f"{key}: {length_problem(value)}", (*where, key))
    if user.primary_group is not None:
        problem = _group_reference_problem(user.primary_group)
        if problem:
            yield error(f"primaryGroup: {problem}", (*where, "primaryGroup"))
    for j, group in enumerate(user.groups):
        if _name_problem(group):
            yield error("invalid group name", (*where, "groups", j))
    yield from _hash_diagnostics(user.password_hash, (*where, "passwordHash"))
    yield from authorized_key_diagnostics(user.ssh_authorized_keys, (*where, "sshAuthorizedKeys"))
    if not user.should_exist:
        yield from _should_not_exist(user, where)


def _should_not_exist(user: model.User, where: ConfigPath) -> Iterator[Diagnostic]:
    ignored = [
        key
        for key, is_set in (
            ("passwordHash", user.password_hash is not None),
            ("sshAuthorizedKeys", bool(user.ssh_authorized_keys)),
            ("uid", user.uid is not None),
            ("gecos", user.gecos is not None),
            ("homeDir", user.home_dir is not None),
            ("primaryGroup", user.primary_group is not None),
            ("groups", bool(user.groups)),
            ("shell", user.shell is not None),
        )
        if is_set
    ]
    if ignored:
        yield warning(
            "shouldExist is false, so the user is removed and these are ignored: "
            + ", ".join(ignored),
            (*where, "shouldExist"),
        )


def check_groups(config: model.Config) -> Iterator[Diagnostic]:
    groups = config.passwd.groups
    yield from duplicate_errors(
        ((g.name, ("passwd", "groups", i, "name")) for i, g in enumerate(groups)), "group name"
    )
    yield from duplicate_errors(
        (
            (g.gid, ("passwd", "groups", i, "gid"))
            for i, g in enumerate(groups)
            if g.gid is not None and g.should_exist
        ),
        "gid",
    )
    for i, group in enumerate(groups):
        where: ConfigPath = ("passwd", "groups", i)
        problem = _name_problem(group.name)
        if problem:
            yield error(problem, (*where, "name"))
        if group.gid is not None and group.gid > MAX_ID:
            yield error(f"gid {group.gid} is out of range (at most {MAX_ID})", (*where, "gid"))
        yield from _hash_diagnostics(group.password_hash, (*where, "passwordHash"))
        if not group.should_exist and (group.gid is not None or group.password_hash is not None):
            yield warning(
                "shouldExist is false, so the group is removed and gid/passwordHash are ignored",
                (*where, "shouldExist"),
            )


CHECKS = (check_users, check_groups)
