"""runcmd (once per instance) and bootcmd (every boot) as systemd oneshot units.

Each command is its own ``ExecStart=`` line: systemd runs them in order and
stops at the first one that fails, so the unit fails on the first failing
command — unlike cloud-init's runcmd script, where only the last exit code
counted. A string runs with ``/bin/sh -c``; a list is an argv run directly.

``cloud-init-per FREQUENCY NAME COMMAND...`` (cloud-init's helper for
bootcmd, which the booted system does not have) is translated with its
semantics: ``always`` runs the command; ``once`` and ``instance`` (the same
here: provision provisions an instance once) run it unless its marker
/var/lib/provision/sem/bootper.NAME.FREQUENCY exists, and write the marker
after it ran, whatever its exit status, keeping that status.
"""

from __future__ import annotations

import re
from typing import Any

from provision.diagnostics import ConfigPath
from provision.importers.cloudconfig.context import Context

RUNCMD_UNIT = "provision-runcmd.service"
BOOTCMD_UNIT = "provision-bootcmd.service"
RUNCMD_STAMP = "/var/lib/provision/runcmd.done"
SEM_DIR = "/var/lib/provision/sem"
_PER = re.compile(r"^\s*cloud-init-per\s+(\S+)\s+(\S+)\s+(.+)$", re.S)


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
        if (isinstance(command, str) and _PER.match(command)) or (
                isinstance(command, list) and command[:1] == ["cloud-init-per"]):
            line = _cloud_init_per(ctx, command, (*where, i))
            if line is None:
                return None
            lines.append(line)
        elif isinstance(command, str):
            lines.append("ExecStart=/bin/sh -c " + systemd_quote(command))
        elif isinstance(command, list) and command and all(isinstance(a, (str, int, float)) for a in command):
            lines.append("ExecStart=" + " ".join(systemd_quote(str(a)) for a in command))
        else:
            ctx.bad("a command must be a string or a non-empty list of arguments", (*where, i))
            return None
    return lines


def _cloud_init_per(ctx: Context, command: str | list[Any], where: ConfigPath) -> str | None:
    """One Exec line doing what ``cloud-init-per FREQ NAME ...`` does."""
    if isinstance(command, str):
        match = _PER.match(command)
        assert match is not None
        freq, name, rest, argv = match.group(1), match.group(2), match.group(3), []
    else:
        if len(command) < 4:
            ctx.bad("cloud-init-per needs a frequency, a name and a command", where)
            return None
        freq, name, rest, argv = str(command[1]), str(command[2]), '"$@"', [str(a) for a in command[3:]]
    if freq not in ("once", "instance", "always"):
        ctx.bad(f"cloud-init-per frequency {freq!r} is not once, instance or always", where)
        return None
    name = name.replace("-", "_")  # as cloud-init-per does
    if "/" in name or not re.fullmatch(r"[A-Za-z0-9_.+@]+", name):
        ctx.bad(f"cloud-init-per name {name!r} must be a plain word", where)
        return None
    if freq == "always":
        script = rest
    else:
        sem = f"{SEM_DIR}/bootper.{name}.{freq}"
        script = (f'[ -e {sem} ] && exit 0\n{rest}\nret=$?\n'
                  f'mkdir -p {SEM_DIR} && echo "$ret" > {sem}\nexit $ret')
    words = ["/bin/sh", "-c", script] + (["cloud-init-per", *argv] if argv else [])
    return "ExecStart=" + " ".join(systemd_quote(w) if k else w for k, w in enumerate(words))


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
