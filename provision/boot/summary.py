"""The short failure summary shown on the console when a boot stage fails.

Stage, item, cause and where the full log is: enough to act on, and never the
config itself (it may hold password hashes and credentials). Config errors
name the config path of the first error, not the offending text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision.diagnostics import format_path
from provision.errors import ConfigError, ProvisionError, StageError

_MAX_CAUSE = 400


@dataclass(frozen=True)
class Failure:
    stage: str
    item: str
    cause: str

    def render(self, log: Path) -> str:
        return (
            f"provision: FAILED in stage {self.stage}\n"
            f"provision:   item:  {self.item}\n"
            f"provision:   cause: {self.cause}\n"
            f"provision:   full log: {log}\n"
            "provision: the machine was not provisioned; the boot stops here\n"
        )


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CAUSE else text[: _MAX_CAUSE - 3] + "..."


def describe(stage: str, exc: BaseException) -> Failure:
    """A Failure for ``exc`` raised while running boot stage ``stage``."""
    if isinstance(exc, ConfigError):
        errors = [d for d in exc.diagnostics if d.is_error] or exc.diagnostics
        first = errors[0] if errors else None
        item = f"config {format_path(first.path)}" if first is not None else "config"
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        message = first.message if first is not None else str(exc)
        # Which document: the user's config, or one of the image's base configs.
        where = ""
        if first is not None and first.file:
            line = f" line {first.position.line}" if first.position is not None else ""
            where = f" (in {first.file}{line})"
        return Failure(stage, item, _shorten(f"invalid config: {message}{where}{more}"))
    if isinstance(exc, StageError):
        return Failure(f"{stage} ({exc.stage})" if exc.stage != stage else stage,
                       exc.item or "-", _shorten(exc.cause))
    if isinstance(exc, ProvisionError):
        return Failure(stage, "-", _shorten(str(exc)))
    return Failure(stage, "-", _shorten(f"internal error: {type(exc).__name__}: {exc}"))
