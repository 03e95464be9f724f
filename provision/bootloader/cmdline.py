"""Kernel command-line words, split and joined the way the kernel reads them.

Whitespace separates arguments; double quotes group (``opt="a b"`` is one
argument). Quotes are kept in the words so that an edited line is written
back exactly as it was, apart from the arguments that changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ArgChange:
    """What a config asks for: arguments that must be there, and must not."""

    should_exist: tuple[str, ...] = ()
    should_not_exist: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.should_exist or self.should_not_exist)

    def describe(self) -> str:
        return " ".join([*(f"+{a}" for a in self.should_exist),
                         *(f"-{a}" for a in self.should_not_exist)])


def split_args(text: str) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char.isspace() and not quoted:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def join_args(args: Sequence[str]) -> str:
    return " ".join(args)


def edit_args(current: Sequence[str], change: ArgChange) -> list[str]:
    """``current`` without the unwanted arguments, plus the missing wanted ones (in order)."""
    unwanted = set(change.should_not_exist)
    result = [arg for arg in current if arg not in unwanted]
    for arg in change.should_exist:
        if arg not in result:
            result.append(arg)
    return result


def satisfied(current: Sequence[str], change: ArgChange) -> bool:
    present = set(current)
    return (all(a in present for a in change.should_exist)
            and not any(a in present for a in change.should_not_exist))
