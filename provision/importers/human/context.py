"""State of one human-YAML translation: diagnostics, origins, local files, generated entries."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.diagnostics import ConfigPath, Diagnostic, error, warning
from provision.importers.origins import Origins
from provision.source.document import Document

# A local file larger than a whole config could never be carried in one.
MAX_LOCAL_BYTES = 16 * 1024 * 1024
FILES_DIR_HINT = "local paths are relative to --files-dir (default: the folder of the YAML file)"


@dataclass
class Generated:
    """A machine-form entry made by sugar, appended to the list at ``section``."""

    section: tuple[str, ...]  # ("storage", "files"), ("systemd", "units") ...
    entry: dict[str, Any]
    source: ConfigPath


@dataclass
class Context:
    document: Document
    files_dir: Path | None  # None: the document is not a local file; local sugar is refused
    diagnostics: list[Diagnostic] = field(default_factory=list)
    origins: Origins = field(default_factory=Origins)
    generated: list[Generated] = field(default_factory=list)

    # -- diagnostics ---------------------------------------------------------
    def bad(self, message: str, source: ConfigPath, hint: str | None = None, at_key: bool = False) -> None:
        self._add(error(message, source, hint), at_key)

    def warn(self, message: str, source: ConfigPath, hint: str | None = None, at_key: bool = False) -> None:
        self._add(warning(message, source, hint), at_key)

    def _add(self, diag: Diagnostic, at_key: bool) -> None:
        locate = self.document.locate_key if at_key else self.document.locate
        self.diagnostics.append(diag.at(self.document.name, locate(diag.path)))

    # -- local files ---------------------------------------------------------
    def local_path(self, value: object, source: ConfigPath, want_dir: bool = False) -> Path | None:
        """``value`` resolved inside the files directory, or None after reporting why not.

        The check is on the real path, so ``..``, an absolute path and a
        symlink leading out of the files directory are all refused.
        """
        if not isinstance(value, str) or not value:
            self.bad("a local path must be a non-empty string", source)
            return None
        if self.files_dir is None:
            self.bad(f"local files cannot be read for {self.document.name}: it is not a file on disk",
                     source, "run provision transpile on the YAML file (with --files-dir) and use its output")
            return None
        if os.path.isabs(value):
            self.bad(f"local path {value!r} is absolute", source, FILES_DIR_HINT)
            return None
        base = self.files_dir.resolve()
        resolved = (base / value).resolve()
        if resolved != base and base not in resolved.parents:
            self.bad(f"local path {value!r} escapes the files directory {str(base)!r}", source, FILES_DIR_HINT)
            return None
        if not resolved.exists():
            self.bad(f"local {'directory' if want_dir else 'file'} {value!r} not found in {str(base)!r}",
                     source, FILES_DIR_HINT)
            return None
        if want_dir != resolved.is_dir():
            kind = "not a directory" if want_dir else "a directory, not a file"
            self.bad(f"local path {value!r} is {kind}", source)
            return None
        return resolved

    def read_local(self, value: object, source: ConfigPath) -> bytes | None:
        path = self.local_path(value, source)
        if path is None:
            return None
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_LOCAL_BYTES + 1)
        except OSError as exc:
            self.bad(f"cannot read local file {value!r}: {exc.strerror or exc}", source)
            return None
        if len(data) > MAX_LOCAL_BYTES:
            self.bad(f"local file {value!r} is larger than {MAX_LOCAL_BYTES // (1024 * 1024)} MiB", source,
                     "fetch large contents by URL (source: https://...) instead of embedding them")
            return None
        return data

    def read_local_text(self, value: object, source: ConfigPath) -> str | None:
        data = self.read_local(value, source)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.bad(f"local file {value!r} is not UTF-8 text", source)
            return None

    def generate(self, section: tuple[str, ...], entry: dict[str, Any], source: ConfigPath) -> None:
        self.generated.append(Generated(section, entry, source))
