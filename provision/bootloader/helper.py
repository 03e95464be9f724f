"""An image-provided command that edits the boot loader's configuration itself.

For boot loaders provision does not edit (zipl, an A/B scheme, ostree), or
when the image wants ``update-grub`` run. Ignition's contract, plus a way to
say whether anything changed, since provision (not the helper) reboots:

    kargs-helper --root ROOT [--should-exist ARG]... [--should-not-exist ARG]...

ROOT is where the target's root filesystem is mounted (its /boot and ESP
mounted below it when the root's fstab lists them). ``--should-exist``
arguments are appended when missing, ``--should-not-exist`` ones removed when
present (absent is fine), comparing whole arguments. Exit status 0, and
``changed`` or ``unchanged`` as the first word on stdout; anything else is a
failure and stops the boot. The helper must not reboot.

The tool table's ``kargs-helper`` entry names it (default
/usr/lib/provision/kargs-helper; ``PROVISION_TOOL_KARGS_HELPER`` overrides);
the initramfs hook copies it when the image has it.
"""

from __future__ import annotations

from pathlib import Path

from provision.bootloader.cmdline import ArgChange
from provision.errors import ProvisionError
from provision.run import have_tool, run

TOOL = "kargs-helper"


def available() -> bool:
    return have_tool(TOOL)


def argv(root: Path, change: ArgChange) -> list[str]:
    args = ["--root", str(root)]
    for arg in change.should_exist:
        args += ["--should-exist", arg]
    for arg in change.should_not_exist:
        args += ["--should-not-exist", arg]
    return args


def run_helper(root: Path, change: ArgChange) -> bool:
    """Run the helper; True when it changed the boot loader's configuration."""
    done = run(TOOL, argv(root, change), timeout=120)
    words = done.stdout.split()
    answer = words[0] if words else ""
    if answer not in ("changed", "unchanged"):
        raise ProvisionError(f"{TOOL} said {answer or 'nothing'!r} on stdout; "
                             "expected 'changed' or 'unchanged'")
    return answer == "changed"
