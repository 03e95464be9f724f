"""The loader's diagnostics that JSON and YAML share."""

from __future__ import annotations

from provision.diagnostics import ConfigPath, Diagnostic, Position, error
from provision.errors import ConfigError

# Beyond this many duplicate keys, one summary instead of a diagnostic each.
MAX_DUPLICATES_REPORTED = 20


def located(
    name: str, position: Position | None, message: str, hint: str | None = None,
    path: ConfigPath = (), kind: type[ConfigError] = ConfigError,
) -> ConfigError:
    """A ConfigError (or subclass ``kind``) with one positioned error."""
    return kind([error(message, path, hint).at(name, position)])


def duplicate_key(name: str, path: ConfigPath, first: Position, second: Position) -> Diagnostic:
    """A repeated key, at the repetition, naming the first one too."""
    diagnostic = error(
        f"duplicate key {path[-1]!r} (first defined at line {first.line}, column {first.column})",
        path,
        "each key may appear once in a mapping; remove or merge one of them",
    ).at(name, second)
    return diagnostic._replace(related=((name, first),))


def capped_duplicates(found: list[Diagnostic], total: int | None = None) -> list[Diagnostic]:
    """The first duplicate-key diagnostics, and a count of the rest (``total`` in all)."""
    total = len(found) if total is None else total
    if total <= MAX_DUPLICATES_REPORTED:
        return found
    summary = found[MAX_DUPLICATES_REPORTED]._replace(
        message=f"{total - MAX_DUPLICATES_REPORTED} more duplicate keys", related=(), path=(),
        hint=None,
    )
    return [*found[:MAX_DUPLICATES_REPORTED], summary]
