"""runcmd (once per instance) and bootcmd (every boot) as systemd oneshot units.

Each command is its own ``ExecStart=`` line: systemd runs them in order and
stops at the first one that fails, so the unit fails on the first failing
command — unlike cloud-init's runcmd script, where only the last exit code
counted. A string runs with ``/bin/sh -c``; a list is an argv run directly.
"""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

RUNCMD_UNIT = "provision-runcmd.service"
BOOTCMD_UNIT = "provision-bootcmd.service"
RUNCMD_STAMP = "/var/lib/provision/runcmd.done"


def systemd_quote(arg: str) -> str:
    """Quote one word for an Exec line: escapes, specifiers (%) and variables ($)."""
    escaped = (
        arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        .replace("%", "%%").replace("$", "$$")
    )
    return f'"{escaped}"'


def _exec_lines(ctx: Context, commands: Any, where: ConfigPath) -> list[str] | None:
    if not isinstance(commands, list):
        ctx.bad(f"{where[-1]} must be a list of commands", where)
        return None
    lines = []
    for i, command in enumerate(commands):
        if isinstance(command, str):
            lines.append("ExecStart=/bin/sh -c " + systemd_quote(command))
        elif isinstance(command, list) and command and all(isinstance(a, (str, int, float)) for a in command):
            lines.append("ExecStart=" + " ".join(systemd_quote(str(a)) for a in command))
        else:
            ctx.bad("a command must be a string or a non-empty list of arguments", (*where, i))
            return None
    return lines


def _add_unit(ctx: Context, name: str, text: str, where: ConfigPath) -> None:
    ctx.add(("systemd", "units"), {"name": name, "enabled": True, "contents": text}, where)


def translate_runcmd(ctx: Context, value: Any, where: ConfigPath) -> None:
    lines = _exec_lines(ctx, value, where)
    if not lines:
        return
    text = "\n".join([
        "[Unit]",
        "Description=cloud-config runcmd (translated by provision), runs once",
        "Wants=network-online.target",
        "After=network-online.target",
        f"ConditionPathExists=!{RUNCMD_STAMP}",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "TimeoutStartSec=0",
        "StandardOutput=journal+console",
        *lines,
        f"ExecStartPost=/bin/sh -c \"mkdir -p /var/lib/provision && touch {RUNCMD_STAMP}\"",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
    _add_unit(ctx, RUNCMD_UNIT, text, where)


def translate_bootcmd(ctx: Context, value: Any, where: ConfigPath) -> None:
    lines = _exec_lines(ctx, value, where)
    if not lines:
        return
    text = "\n".join([
        "[Unit]",
        "Description=cloud-config bootcmd (translated by provision), every boot",
        "After=local-fs.target network.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "TimeoutStartSec=0",
        "StandardOutput=journal+console",
        *lines,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
    _add_unit(ctx, BOOTCMD_UNIT, text, where)
