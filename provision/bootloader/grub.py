"""GRUB as Debian and Ubuntu set it up: /etc/default/grub and the grub.cfg
``update-grub`` generates from it.

Both are edited. The defaults so that every later ``update-grub`` (a kernel
update, say) keeps the arguments: /etc/default/grub and the drop-ins in
/etc/default/grub.d that update-grub reads after it: missing arguments are
appended to the ``GRUB_CMDLINE_LINUX`` that wins (which every entry gets),
unwanted ones removed from every ``GRUB_CMDLINE_LINUX`` and
``GRUB_CMDLINE_LINUX_DEFAULT``. And the ``linux`` lines of the
generated grub.cfg, because the next boot reads that file and regenerating it
needs grub-mkconfig, grub-probe and the target's /dev, which the initramfs
does not have: editing the lines it generated gives the same result. An
image that wants grub-mkconfig run instead provides a helper (see
:mod:`provision.bootloader.helper`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from provision.bootloader.cmdline import ArgChange, edit_args, join_args, split_args
from provision.errors import ProvisionError

DEFAULTS = "/etc/default/grub"
# Read by update-grub after DEFAULTS, each *.cfg in name order (images keep
# their settings there: Debian's and Ubuntu's cloud images do).
DROPINS = "/etc/default/grub.d"
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


@dataclass(frozen=True)
class _Assignment:
    file: int  # index into the files, in the order update-grub reads them
    line: int
    name: str  # GRUB_CMDLINE_LINUX or GRUB_CMDLINE_LINUX_DEFAULT
    args: list[str]


def _assignments(texts: Sequence[tuple[str, str]]) -> list[_Assignment]:
    found = []
    for index, (path, text) in enumerate(texts):
        for number, line in enumerate(text.splitlines()):
            match = _ASSIGNMENT.match(line)
            if match:
                value = _shell_value(match.group(3), f"{path} line {number + 1}")
                found.append(_Assignment(index, number, match.group(2), split_args(value)))
    return found


def edit_defaults_files(texts: Sequence[tuple[str, str]], change: ArgChange) -> list[str]:
    """The defaults as update-grub reads them: /etc/default/grub, then each
    /etc/default/grub.d/*.cfg in turn, the last assignment of a variable
    winning. ``texts`` are (path, text) in that order; returns the new texts.

    Unwanted arguments leave every assignment of both variables in every file
    (whichever wins, they are gone); missing ones are appended to the
    ``GRUB_CMDLINE_LINUX`` that wins, or to a new one at the end of the first
    file when no file sets it.
    """
    found = _assignments(texts)
    winning = {a.name: a for a in found}  # the last one of each name
    present = [arg for a in winning.values() for arg in a.args]
    missing = [a for a in dict.fromkeys(change.should_exist) if a not in present]
    removal = ArgChange((), change.should_not_exist)
    lines = [text.splitlines(keepends=True) for _, text in texts]
    for assignment in found:
        new = edit_args(assignment.args, removal)
        if assignment is winning.get("GRUB_CMDLINE_LINUX"):
            new += missing
        if new != assignment.args:
            old = lines[assignment.file][assignment.line]
            match = _ASSIGNMENT.match(old.rstrip("\r\n"))
            assert match is not None
            ending = old[len(old.rstrip("\r\n")):]
            lines[assignment.file][assignment.line] = (
                f"{match.group(1)}{assignment.name}={_quoted(join_args(new))}{ending}")
    if missing and "GRUB_CMDLINE_LINUX" not in winning and texts:
        first = lines[0]
        if first and not first[-1].endswith("\n"):
            first[-1] += "\n"
        first.append(f"GRUB_CMDLINE_LINUX={_quoted(join_args(missing))}\n")
    return ["".join(each) for each in lines]


def edit_defaults(text: str, change: ArgChange) -> str:
    """/etc/default/grub on its own (no drop-ins)."""
    return edit_defaults_files([(DEFAULTS, text)], change)[0]


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
