"""Exceptions that cross module boundaries.

Every error a user can cause is a ProvisionError; the CLI turns it into one
clear line and an exit status. Anything else reaching the CLI is a bug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.diagnostics import Diagnostic


class ProvisionError(Exception):
    """A failure the user can act on; str(error) is the message shown."""

    exit_status = 1


class UsageError(ProvisionError):
    """Bad command-line usage or an unreadable input file."""

    exit_status = 2


class ConfigError(ProvisionError):
    """A config that does not parse or validate; carries its diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0].message if diagnostics else "invalid config"
        super().__init__(first)


class CommandError(ProvisionError):
    """An external command failed; the message names argv, status and stderr."""

    def __init__(self, argv: list[str], status: int, stderr: str) -> None:
        self.argv = argv
        self.status = status
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-3:] if stderr.strip() else []
        detail = ": " + " / ".join(tail) if tail else ""
        super().__init__(f"command {' '.join(argv)!s} exited with status {status}{detail}")


class FetchError(ProvisionError):
    """A remote or local resource could not be fetched or verified."""


class StageError(ProvisionError):
    """A stage failed on one item; names the stage and the item."""

    def __init__(self, stage: str, item: str, cause: str) -> None:
        self.stage = stage
        self.item = item
        self.cause = cause
        super().__init__(f"stage {stage}: {item}: {cause}")
