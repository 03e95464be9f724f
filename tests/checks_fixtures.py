"""Shared helpers for the semantic-check tests."""

from __future__ import annotations

from provision.diagnostics import Diagnostic, Severity


def only(found: list[Diagnostic], severity: Severity, path: tuple[object, ...], text: str) -> Diagnostic:
    """The one finding there must be: its severity, config path and (part of) its message."""
    assert len(found) == 1, found
    [diag] = found
    assert diag.severity is severity and diag.path == path and text in diag.message, diag
    return diag
