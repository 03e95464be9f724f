"""Helpers for the apply, files and units tests: minimal roots, manifests, runs."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from provision.apply.orchestrator import ApplyOutcome, ApplyRequest, apply_config
from provision.config.build import build_config
from provision.config.model import Config
from provision.stages.files import STAGE as FILES
from provision.stages.units import STAGE as UNITS

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = "etc/.provision"
IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "core:x:4242:4343:Core:/home/core:/bin/bash\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\ncore:x:4343:\nwheel:x:4444:core\n"


def make_root(root: Path) -> Path:
    """A minimal target root with passwd/group/shadow/gshadow (ids unlike the host's)."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    for name in ("shadow", "gshadow"):
        (etc / name).write_text("")
        os.chmod(etc / name, 0o640)
    return root


def config(spec: dict[str, Any]) -> Config:
    return build_config({"provision": {"version": "1.0.0"}, **spec})


def data_url(text: str) -> str:
    from urllib.parse import quote

    return "data:," + quote(text)


def apply(spec: dict[str, Any], root: Path, *, force: bool = False) -> ApplyOutcome:
    """Apply the files and units stages of ``spec`` in-process."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    request = ApplyRequest(config(spec), digest, root, force=force)
    return apply_config(request, [FILES, UNITS])


def manifest(root: Path, *, exclude: tuple[str, ...] = (STATE_DIR,)) -> dict[str, tuple[Any, ...]]:
    """path -> (type, mode, uid, gid, size or link target, sha256) for every node under root."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = str(full.relative_to(root))
            if any(rel == e or rel.startswith(e + "/") for e in exclude):
                continue
            st = full.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", st.st_uid, st.st_gid, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, st.st_uid, st.st_gid)
            else:
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
                out[rel] = ("file", mode, st.st_uid, st.st_gid, st.st_size, digest)
    return out


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "provision", *args], capture_output=True, text=True,
        env=full_env, cwd=REPO, timeout=120,
    )


def write_config(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"provision": {"version": "1.0.0"}, **spec}))
    return path
