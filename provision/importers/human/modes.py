"""Permission modes written as octal strings ("0644", "0o644", "644").

Human YAML writes modes as quoted octal strings. An integer is the mode's
decimal value, as in JSON; an unquoted ``0644`` is octal for YAML 1.1 readers
(PyYAML reads it as 420), so it works too. An integer that looks like octal
digits written in decimal (``644``) gets the semantic checks' warning with
the likely intended mode, the same for every config format.
"""

from __future__ import annotations

import re

from provision.diagnostics import ConfigPath
from provision.importers.human.context import Context

_OCTAL = re.compile(r"^(?:0o|0)?([0-7]{1,5})$")
_HINT = 'write modes as quoted octal strings, e.g. "0644" or "0755"'


def parse_mode(value: object, source: ConfigPath, ctx: Context) -> object:
    """The integer mode for an octal string; other values pass through for the checks to judge."""
    if not isinstance(value, str):
        return value
    match = _OCTAL.match(value.strip())
    if match is None or int(match.group(1), 8) > 0o7777:
        ctx.bad(f"mode {value!r} is not an octal permission mode (0000 to 7777)", source, _HINT)
        return value
    return int(match.group(1), 8)


def render_mode(mode: int) -> str:
    """The octal string form of a mode, as human YAML writes it: 420 -> "0644"."""
    return f"{mode:04o}"
