"""Target roots for the users-stage tests: a small Debian-like image and a bare one."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from provision.config.build import build_config
from provision.config.model import Config

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
olduser:x:1000:1000:Old User:/home/olduser:/bin/bash
"""
SHADOW = """root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
systemd-network:!*:19000::::::
olduser:$6$old$oldhash:19000:0:99999:7:::
"""
GROUP = """root:x:0:
daemon:x:1:
adm:x:4:
shadow:x:42:
sudo:x:27:
users:x:100:
systemd-journal:x:999:
systemd-network:x:998:
olduser:x:1000:
wheel:x:10:olduser
nogroup:x:65534:
"""
GSHADOW = """root:*::
daemon:*::
adm:*::
shadow:*::
sudo:*::
users:*::
systemd-journal:!*::
systemd-network:!*::
olduser:!::
wheel:*::olduser
nogroup:*::
"""
LOGIN_DEFS = """# a Debian-like login.defs
UMASK\t\t022
PASS_MAX_DAYS\t99999
PASS_MIN_DAYS\t0
PASS_WARN_AGE\t7
UID_MIN\t\t\t 1000
UID_MAX\t\t\t60000
GID_MIN\t\t\t 1000
GID_MAX\t\t\t60000
SUB_UID_COUNT\t\t    65536
USERGROUPS_ENAB yes
ENCRYPT_METHOD SHA512
"""
SSHD_WITH_INCLUDE = """Include /etc/ssh/sshd_config.d/*.conf

#AuthorizedKeysFile	.ssh/authorized_keys .ssh/authorized_keys2
PasswordAuthentication no
"""

HASH = "$6$provtest$bZqbbUTbcywzE0bwvVHl13Mn7eoJF2b4J9hCovo2IPjwaUGfurjXumyhhkumRMdwswNDsNCxp9n9lTNzPd3dd/"  # "secret"


def _write(root: Path, path: str, text: str, mode: int = 0o644, gid: int = 0) -> None:
    full = root / path.lstrip("/")
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text(text)
    os.chown(full, 0, gid)
    os.chmod(full, mode)


def make_debian_root(root: Path) -> Path:
    """An image with shadow files, login.defs, default/useradd, a skeleton, subuid and sshd."""
    _write(root, "/etc/passwd", PASSWD)
    _write(root, "/etc/group", GROUP)
    _write(root, "/etc/shadow", SHADOW, 0o640, 42)
    _write(root, "/etc/gshadow", GSHADOW, 0o640, 42)
    _write(root, "/etc/subuid", "")
    _write(root, "/etc/subgid", "")
    _write(root, "/etc/login.defs", LOGIN_DEFS)
    _write(root, "/etc/default/useradd", "SHELL=/bin/sh\n")
    _write(root, "/etc/skel/.profile", "# profile\n")
    _write(root, "/etc/skel/.bashrc", "# bashrc\n")
    _write(root, "/etc/skel/.config/app/settings", "x=1\n", 0o600)
    os.symlink(".profile", root / "etc/skel/.bash_profile")
    _write(root, "/etc/ssh/sshd_config", SSHD_WITH_INCLUDE)
    (root / "etc/ssh/sshd_config.d").mkdir()
    old_home = root / "home/olduser"
    old_home.mkdir(parents=True)
    (old_home / "notes").write_text("mine\n")
    for path in (old_home, old_home / "notes"):
        os.chown(path, 1000, 1000)
    return root


def make_bare_root(root: Path) -> Path:
    """An image with only passwd and group: no shadow files, login.defs or skeleton."""
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    _write(root, "/etc/group", "root:x:0:\nusers:x:100:\n")
    return root


def config(passwd: dict[str, Any]) -> Config:
    return build_config({"provision": {"version": "1.0.0"}, "passwd": passwd})


def snapshot(root: Path, skip_backups: bool = True) -> dict[str, tuple[object, ...]]:
    """Every node under root: type, mode, owner and contents (or link target)."""
    out: dict[str, tuple[object, ...]] = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(current, name)
            rel = "/" + str(full.relative_to(root))
            if skip_backups and rel.startswith("/etc/") and (rel.endswith("-") or rel.endswith(".pwd.lock")):
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                body: object = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                body = full.read_bytes()
            else:
                body = None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body)
    return out
