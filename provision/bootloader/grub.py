"""GRUB as Debian and Ubuntu set it up: /etc/default/grub and the grub.cfg
``update-grub`` generates from it.

Both are edited. /etc/default/grub so that every later ``update-grub``
(a kernel update, say) keeps the arguments: missing ones are appended to
``GRUB_CMDLINE_LINUX`` (which every entry gets), unwanted ones removed from
it and from ``GRUB_CMDLINE_LINUX_DEFAULT``. And the ``linux`` lines of the
generated grub.cfg, because the next boot reads that file and regenerating it
needs grub-mkconfig, grub-probe and the target's /dev, which the initramfs
does not have: editing the lines it generated gives the same result. An
image that wants grub-mkconfig run instead provides a helper (see
:mod:`provision.bootloader.helper`).
"""

from __future__ import annotations

import re

from provision.bootloader.cmdline import ArgChange, edit_args, join_args, split_args
from provision.errors import ProvisionError

DEFAULTS = "/etc/default/grub"
CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?)(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(.*?)\s*$")
_LINUX = re.compile(r"^(\s*(?:linux|linuxefi|linux16)\s+\S+)(.*?)(\s*)$")


def _shell_value(raw: str, where: str) -> str:
    """The value of a shell assignment's right-hand side: "...", '...' or bare,
    without expansions (which only running the script could resolve)."""
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner, out, i = raw[1:-1], [], 0
        while i < len(inner):
            char = inner[i]
            if char == "\\" and i + 1 < len(inner) and inner[i + 1] in '"\\$`':
                out.append(inner[i + 1])
                i += 2
                continue
            if char in "$`" or char == '"':
                raise ProvisionError(f"{where}: the value uses shell syntax provision does not evaluate "
                                     f"({raw}); set the arguments with a kargs helper instead")
            out.append(char)
            i += 1
        return "".join(out)
    if any(c in raw for c in "$`\"'\\ \t;&|"):
        raise ProvisionError(f"{where}: the value uses shell syntax provision does not evaluate "
                             f"({raw}); set the arguments with a kargs helper instead")
    return raw


def _quoted(value: str) -> str:
    return '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'


def edit_defaults(text: str, change: ArgChange) -> str:
    lines = text.splitlines(keepends=True)
    found: dict[str, int] = {}  # the last assignment of each variable wins, as in the shell
    for i, line in enumerate(lines):
        match = _ASSIGNMENT.match(line.rstrip("\r\n"))
        if match:
            found[match.group(2)] = i
    values: dict[str, list[str]] = {}
    for name, i in found.items():
        match = _ASSIGNMENT.match(lines[i].rstrip("\r\n"))
        assert match is not None
        values[name] = split_args(_shell_value(match.group(3), f"{DEFAULTS} line {i + 1}"))
    present = [*values.get("GRUB_CMDLINE_LINUX", []), *values.get("GRUB_CMDLINE_LINUX_DEFAULT", [])]
    missing = [a for a in dict.fromkeys(change.should_exist) if a not in present]
    removal = ArgChange((), change.should_not_exist)
    for name in ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"):
        old = values.get(name)
        new = edit_args(old or [], removal) + (missing if name == "GRUB_CMDLINE_LINUX" else [])
        if old == new or (old is None and not new):
            continue
        assignment = f"{name}={_quoted(join_args(new))}"
        if name in found:
            i = found[name]
            match = _ASSIGNMENT.match(lines[i].rstrip("\r\n"))
            assert match is not None
            ending = lines[i][len(lines[i].rstrip("\r\n")):]
            lines[i] = match.group(1) + assignment + ending
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(assignment + "\n")
    return "".join(lines)


def edit_config(text: str, change: ArgChange) -> str:
    """grub.cfg: the arguments of every ``linux`` line (the kernel path stays)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _LINUX.match(body)
        if not match:
            continue
        args = split_args(match.group(2))
        new = edit_args(args, change)
        if new != args:
            lines[i] = " ".join([match.group(1), *new]) + match.group(3) + line[len(body):]
    return "".join(lines)
