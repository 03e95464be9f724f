"""Human YAML: the hand-written form of a provision config (what Butane is to Ignition).

A document with ``variant: provision`` and ``version: 1.0.0`` at the top.
Keys are the machine spec's in snake_case (``size_mib``, ``http_headers``,
``password_hash``); sugar (``inline``/``local`` contents, ``storage.trees``,
``contents_local``, ``ssh_authorized_keys_local``, octal-string modes,
``password: {plain}``, ``with_mount_unit``, container shorthands) is expanded
by the modules of this package. See docs/transpile.md.

Local files are read relative to the files directory: the one set with
:func:`using_files_dir` (``provision transpile --files-dir``), else the
folder of the document when it is a file on disk (or the current directory
for stdin). A document fetched from elsewhere — user data at boot — has no
files directory: its ``local`` sugar is an error, so a remote config can
never read files of the machine that provisions.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from provision.config.kinds import Imported
from provision.diagnostics import has_errors
from provision.importers.human.context import Context
from provision.source.document import Document

_FILES_DIR: ContextVar[Path | None] = ContextVar("provision_human_files_dir", default=None)


@contextlib.contextmanager
def using_files_dir(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within the block, local files are read from ``path`` (None: each document's folder)."""
    token = _FILES_DIR.set(Path(path) if path is not None else None)
    try:
        yield
    finally:
        _FILES_DIR.reset(token)


def default_files_dir(document_name: str) -> Path | None:
    """The folder of a config file on disk; the current directory for stdin; else None."""
    if document_name == "-":
        return Path.cwd()
    path = Path(document_name)
    return path.parent if path.is_file() else None


def files_dir_for(document_name: str) -> Path | None:
    """The files directory in force for a document: the one set by :func:`using_files_dir`, else its own."""
    return _FILES_DIR.get() or default_files_dir(document_name)


def to_spec(document: Document) -> Imported:
    from provision.importers.human.translate import translate

    files_dir = files_dir_for(document.name)
    ctx = Context(document, files_dir)
    spec = translate(document.value, ctx)
    if has_errors(ctx.diagnostics):
        spec = None
    return Imported(spec, ctx.diagnostics, ctx.origins.source_path)
