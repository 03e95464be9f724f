"""Boot Loader Specification entries: ``$BOOT/loader/entries/*.conf``.

One entry per kernel; its ``options`` lines are the command line
(systemd-boot, and GRUB with blscfg, join several ``options`` lines with
spaces). Every entry is edited, as ``grubby --update-kernel=ALL`` does: the
unwanted arguments leave every ``options`` line, the missing ones are added
to the last. Other lines and comments are kept byte for byte.
"""

from __future__ import annotations

import re

from provision.bootloader.cmdline import ArgChange, join_args, split_args

# Where entries live, relative to the target root: /boot (the XBOOTLDR
# partition or the root's /boot), or the ESP mounted at /efi or /boot/efi.
ENTRY_DIRS = ("/boot/loader/entries", "/efi/loader/entries", "/boot/efi/loader/entries")
_OPTIONS = re.compile(r"^(\s*options)(?:\s+(.*?))?\s*$")


def edit_entry(text: str, change: ArgChange) -> str:
    lines = text.splitlines(keepends=True)
    unwanted = set(change.should_not_exist)
    option_lines = [i for i, line in enumerate(lines) if _OPTIONS.match(line.rstrip("\r\n"))]
    present: list[str] = []
    for i in option_lines:
        match = _OPTIONS.match(lines[i].rstrip("\r\n"))
        assert match is not None
        args = split_args(match.group(2) or "")
        kept = [a for a in args if a not in unwanted]
        if kept != args:
            lines[i] = _options_line(match.group(1), kept, lines[i])
        present += kept
    missing = [a for a in dict.fromkeys(change.should_exist) if a not in present]
    if missing:
        if option_lines:
            last = option_lines[-1]
            match = _OPTIONS.match(lines[last].rstrip("\r\n"))
            assert match is not None
            lines[last] = _options_line(match.group(1), [*split_args(match.group(2) or ""), *missing],
                                        lines[last])
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(f"options {join_args(missing)}\n")
    return "".join(lines)


def _options_line(key: str, args: list[str], old: str) -> str:
    ending = old[len(old.rstrip("\r\n")):]
    return f"{key} {join_args(args)}".rstrip() + ending


def entry_options(text: str) -> list[str]:
    """The command line an entry gives (all its ``options`` lines)."""
    args: list[str] = []
    for line in text.splitlines():
        match = _OPTIONS.match(line)
        if match:
            args += split_args(match.group(2) or "")
    return args
