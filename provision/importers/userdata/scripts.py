"""User-data scripts and boothooks, as files in the target and systemd units that run them.

cloud-init semantics kept:

- scripts (``#!`` parts, text/x-shellscript, -per-instance, -per-once) run
  once per instance, late in the first boot (its ``scripts_user`` module, after
  the network is up), in the order they appear; a failing script is reported
  and the next ones still run, and the unit then fails, so the failure shows
  in ``systemctl --failed`` and the console; output goes to the journal and
  the console;
- text/x-shellscript-per-boot parts run the same way on every boot;
- boothooks (``#cloud-boothook``) run on every boot, early (before the
  network is online and before sshd), with ``INSTANCE_ID`` in the
  environment as cloud-init sets it. The line after ``#cloud-boothook`` must
  be a ``#!`` line: cloud-init executes the file directly, so does provision.

Each script is written under /var/lib/provision/user-data/KIND/ with mode
0700 (user data may hold secrets), named ``DOC-NNN-NAME``: DOC is a digest of
the user data it came from, NNN its place there. A small runner runs every
script of the directory in name order. So an ``#include``d document (a config
reference, merged into the same spec) adds its scripts next to the
including document's instead of replacing them: the units it generates are
the same, byte for byte. Within a document the order is cloud-init's; between
documents it is the order of their digests (cloud-init runs an include's
scripts where the include stands).
"""

from __future__ import annotations

from typing import NamedTuple

from provision.config.dataurl import encode_resource
from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.commands import systemd_quote
from provision.importers.cloudconfig.context import Context

BASE = "/var/lib/provision/user-data"
ONCE_STAMP = "/var/lib/provision/user-scripts.done"


class Script(NamedTuple):
    kind: str  # "per-instance", "per-boot" or "boothook"
    name: str  # file name: part-001 or the part's filename
    body: bytes
    source: ConfigPath  # where it came from, for diagnostics


_RUNNER = """#!/bin/sh
# Runs the user-data scripts in the directory given, in name order. A failing
# script is reported and the rest still run (cloud-init's semantics); the
# exit status says whether any failed.
failed=""
for script in "$1"/*; do
    [ -f "$script" ] || continue
    echo "provision: running user-data script ${script##*/}"
    "$script"
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "provision: user-data script ${script##*/} failed with exit status $status" >&2
        failed="$failed ${script##*/}"
    fi
done
if [ -n "$failed" ]; then
    echo "provision: failed user-data scripts:$failed" >&2
    exit 1
fi
"""
RUNNER = f"{BASE}/run-scripts"

_UNITS = {
    "per-instance": ("provision-user-scripts.service",
                     "user-data scripts (translated by provision), once per instance"),
    "per-boot": ("provision-user-scripts-per-boot.service",
                 "user-data per-boot scripts (translated by provision), every boot"),
    "boothook": ("provision-boothooks.service", "user-data boothooks (translated by provision), every boot"),
}


def _safe_name(name: str, index: int) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return cleaned or f"part-{index:03d}"


def add_scripts(ctx: Context, scripts: list[Script], instance_id: str | None, document_tag: str) -> None:
    """Files and units for ``scripts``; ``document_tag`` keeps names of different documents apart."""
    if not scripts:
        return
    ctx.add(("storage", "files"), {"path": RUNNER, "mode": 0o700, "overwrite": True,
                                   "contents": encode_resource(_RUNNER.encode())}, scripts[0].source)
    for kind, (unit, description) in _UNITS.items():
        chosen = [s for s in scripts if s.kind == kind]
        if not chosen:
            continue
        for index, script in enumerate(chosen, start=1):
            # The number keeps names unique and in order; LC_COLLATE=C in the unit sorts them so.
            path = f"{BASE}/{kind}/{document_tag}-{index:03d}-{_safe_name(script.name, index)}"
            ctx.add(("storage", "files"), {"path": path, "mode": 0o700, "overwrite": True,
                                           "contents": encode_resource(script.body)}, script.source)
        text = _unit(kind, description, f"{BASE}/{kind}", instance_id)
        ctx.add(("systemd", "units"), {"name": unit, "enabled": True, "contents": text}, chosen[0].source)


def _environment(name: str, value: str) -> str:
    """One quoted ``Environment=`` assignment: specifiers escaped, but no ``$$`` (not expanded there)."""
    escaped = (f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("%", "%%"))
    return f'"{escaped}"'


def _unit(kind: str, description: str, directory: str, instance_id: str | None) -> str:
    if kind == "boothook":
        order = ["DefaultDependencies=no", "After=local-fs.target systemd-remount-fs.service",
                 "Before=network-online.target sshd.service ssh.service sysinit.target",
                 "Conflicts=shutdown.target"]
        wanted_by = "sysinit.target"
    else:
        # cloud-init's scripts_user runs the parts' scripts, then runcmd's script (sorted by name).
        order = ["Wants=network-online.target", "After=network-online.target",
                 "Before=provision-runcmd.service"]
        wanted_by = "multi-user.target"
    once = kind == "per-instance"
    lines = [
        "[Unit]", f"Description={description}", *order,
        *([f"ConditionPathExists=!{ONCE_STAMP}"] if once else []),
        "", "[Service]", "Type=oneshot", "RemainAfterExit=yes", "TimeoutStartSec=0",
        "StandardOutput=journal+console", "StandardError=journal+console", "Environment=LC_COLLATE=C",
        *([f"Environment={_environment('INSTANCE_ID', instance_id)}"] if instance_id and kind == "boothook" else []),
        # The stamp is written before the scripts run, as cloud-init's semaphore:
        # a script that reboots the machine, or fails, is not run a second time.
        *([f'ExecStartPre=/bin/sh -c "mkdir -p /var/lib/provision && touch {ONCE_STAMP}"'] if once else []),
        f"ExecStart={systemd_quote(RUNNER)} {systemd_quote(directory)}",
        "", "[Install]", f"WantedBy={wanted_by}", "",
    ]
    return "\n".join(lines)
