"""users, user, groups, top-level ssh_authorized_keys and disable_root.

cloud-init semantics kept: ``lock_passwd`` defaults to true (a locked
password cannot log in, so a hash given with it is dropped, with a warning);
groups named by a user (``groups`` and ``primary_group``) that the
document does not define are created (an existing group is left as it is);
``sudo`` rules become a sudoers drop-in per user.
"""

from __future__ import annotations

from typing import Any

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

# cloud-config user key -> (spec key, kind)
_SIMPLE = {
    "gecos": "gecos",
    "homedir": "homeDir",
    "shell": "shell",
    "primary_group": "primaryGroup",
    "system": "system",
    "no_create_home": "noCreateHome",
    "no_user_group": "noUserGroup",
    "no_log_init": "noLogInit",
}
_HANDLED = {*_SIMPLE, "name", "uid", "groups", "ssh_authorized_keys", "passwd", "hashed_passwd",
            "plain_text_passwd", "lock_passwd", "sudo"}
_BOOLEANS = {"system", "no_create_home", "no_user_group", "no_log_init", "lock_passwd"}


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def _user_entry(ctx: Context, name: str, source: ConfigPath) -> dict[str, Any]:
    entry = ctx.find(("passwd", "users"), "name", name)
    if entry is None:
        entry = {"name": name}
        ctx.add(("passwd", "users"), entry, source)
    return entry


def _ensure_group(ctx: Context, name: str, source: ConfigPath) -> None:
    if ctx.find(("passwd", "groups"), "name", name) is None:
        ctx.add(("passwd", "groups"), {"name": name}, source)


def _password(ctx: Context, user: dict[str, Any], where: ConfigPath) -> str | None:
    hashed = user.get("hashed_passwd", user.get("passwd"))
    if hashed is not None:
        return str(hashed)
    plain = user.get("plain_text_passwd")
    if plain is None:
        return None
    from passlib.hash import sha512_crypt

    ctx.warn(
        "plain_text_passwd was hashed (sha512-crypt): a plain-text password does not belong in a config",
        (*where, "plain_text_passwd"),
        hint="put a hash in hashed_passwd instead (mkpasswd --method=sha-512)",
    )
    return str(sha512_crypt.hash(str(plain)))


def _sudoers(ctx: Context, name: str, rules: Any, where: ConfigPath) -> None:
    if rules in (None, False):
        return
    lines = [rules] if isinstance(rules, str) else rules if isinstance(rules, list) else None
    if lines is None or not all(isinstance(r, str) for r in lines):
        ctx.bad("sudo must be a sudoers rule or a list of them", where)
        return
    text = "".join(f"{name} {rule}\n" for rule in lines)
    # sudo ignores drop-ins whose names contain a dot.
    path = "/etc/sudoers.d/provision-" + name.replace(".", "_")
    ctx.add(("storage", "files"), {"path": path, "mode": 0o440, "overwrite": True,
                                   "contents": encode_resource(text.encode())}, where)


def _translate_user(ctx: Context, user: dict[str, Any], where: ConfigPath) -> None:
    name = user.get("name")
    if "snapuser" in user and name is None:
        ctx.unsupported("a snap user (snapuser)", (*where, "snapuser"),
                        "Ubuntu Core's snap users are created by snapd; create a local user with a name")
        return
    if not isinstance(name, str) or not name:
        ctx.bad("a user needs a name", where)
        return
    for key in user:
        if key not in _HANDLED:
            ctx.unsupported(f"user key {key!r}", (*where, key))
        elif key in _BOOLEANS and not isinstance(user[key], bool):
            ctx.bad(f"{key} must be true or false", (*where, key))
            return
    entry = _user_entry(ctx, name, where)
    for key, spec_key in _SIMPLE.items():
        if key in user and user[key] is not None:
            entry[spec_key] = user[key]
            ctx.origins.record(("passwd", "users", _index(ctx, name), spec_key), (*where, key))
    if "uid" in user:
        uid = user["uid"]
        if isinstance(uid, str) and uid.isdigit():
            uid = int(uid)
        entry["uid"] = uid
        ctx.origins.record(("passwd", "users", _index(ctx, name), "uid"), (*where, "uid"))
    primary = user.get("primary_group")
    if isinstance(primary, str) and primary:
        # Created when missing, as cloud-init does for a user's groups; an existing group is left alone.
        _ensure_group(ctx, primary, (*where, "primary_group"))
    groups = _names(user.get("groups"))
    if groups:
        entry["groups"] = groups
        for group in groups:
            _ensure_group(ctx, group, (*where, "groups"))
    keys = user.get("ssh_authorized_keys")
    if keys:
        listed = entry.setdefault("sshAuthorizedKeys", [])
        for j, key in enumerate(keys if isinstance(keys, list) else [keys]):
            # Each key's own position, so a diagnostic points at the key, not the user.
            source = (*where, "ssh_authorized_keys", j) if isinstance(keys, list) else (*where, "ssh_authorized_keys")
            ctx.origins.record(("passwd", "users", _index(ctx, name), "sshAuthorizedKeys", len(listed)), source)
            listed.append(key)
    password = _password(ctx, user, where)
    if password is not None:
        if user.get("lock_passwd", True):
            ctx.warn("the password is locked (lock_passwd defaults to true) and cannot be used to log in",
                     (*where, "lock_passwd" if "lock_passwd" in user else "name"),
                     hint="set lock_passwd: false to allow password login")
        else:
            entry["passwordHash"] = password
    _sudoers(ctx, name, user.get("sudo"), (*where, "sudo"))


def _index(ctx: Context, name: str) -> int:
    users = ctx.spec["passwd"]["users"]
    return next(i for i, u in enumerate(users) if u["name"] == name)


def _default_user_section(ctx: Context, where: ConfigPath) -> dict[str, Any]:
    """``passwd.defaultUser`` (spec 1.1.0): the image's default user, named by the image."""
    passwd = ctx.spec.setdefault("passwd", {})
    if "defaultUser" not in passwd:
        passwd["defaultUser"] = {}
        ctx.origins.record(("passwd", "defaultUser"), where)
    section: dict[str, Any] = passwd["defaultUser"]
    return section


def translate_users(ctx: Context, value: Any, where: ConfigPath) -> None:
    if isinstance(value, str):
        value = _names(value)
    if not isinstance(value, list):
        ctx.bad("users must be a list", where)
        return
    for i, user in enumerate(value):
        if user == "default":
            if ctx.default_user:
                _user_entry(ctx, ctx.default_user, (*where, i))
            else:
                # The image names its default user (cloud-init's system_info.default_user).
                _default_user_section(ctx, (*where, i))["create"] = True
        elif isinstance(user, str):
            for name in _names(user):
                _user_entry(ctx, name, (*where, i))
        elif isinstance(user, dict):
            _translate_user(ctx, user, (*where, i))
        else:
            ctx.bad("a user must be a name or a mapping", (*where, i))
    if "default" not in value and not ctx.default_user:
        # As in cloud-init: a users list without "default" means no default user.
        _default_user_section(ctx, where)["create"] = False


def note_default_user(ctx: Context, value: Any, where: ConfigPath) -> None:
    if isinstance(value, str):
        ctx.default_user = value
    elif isinstance(value, dict) and isinstance(value.get("name"), str):
        ctx.default_user = value["name"]
        _translate_user(ctx, value, where)
    else:
        ctx.bad("user must be a name or a mapping with a name", where)


def note_disable_root(ctx: Context, value: Any, where: ConfigPath) -> None:
    if not isinstance(value, bool):
        ctx.bad("disable_root must be true or false", where)
        return
    ctx.disable_root = value


def translate_groups(ctx: Context, value: Any, where: ConfigPath) -> None:
    if isinstance(value, str):
        value = _names(value)
    items: list[tuple[Any, ConfigPath]]
    if isinstance(value, dict):
        items = [({k: v}, (*where, k)) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(g, (*where, i)) for i, g in enumerate(value)]
    else:
        ctx.bad("groups must be a list", where)
        return
    for group, source in items:
        if isinstance(group, str):
            _ensure_group(ctx, group, source)
            continue
        if not isinstance(group, dict):
            ctx.bad("a group must be a name or a mapping of name to members", source)
            continue
        for name, members in group.items():
            _ensure_group(ctx, str(name), source)
            for member in _names(members):
                user = ctx.find(("passwd", "users"), "name", member)
                if user is None:
                    ctx.unsupported(
                        f"adding {member!r} to group {name!r}", source,
                        "the user is not defined in this document; list the group under that user's groups",
                    )
                elif str(name) not in user.setdefault("groups", []):
                    user["groups"].append(str(name))


def translate_default_keys(ctx: Context, value: Any, where: ConfigPath) -> None:
    keys = [str(k) for k in (value if isinstance(value, list) else [value])]
    if ctx.default_user:
        entry = _user_entry(ctx, ctx.default_user, where)
        entry.setdefault("sshAuthorizedKeys", []).extend(keys)
    else:
        # cloud-init gives them to the default user, whom the image names.
        _default_user_section(ctx, where).setdefault("sshAuthorizedKeys", []).extend(keys)
    if not ctx.disable_root:
        root = _user_entry(ctx, "root", where)
        root.setdefault("sshAuthorizedKeys", []).extend(keys)
