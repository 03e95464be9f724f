"""State shared by the cloud-config translators: the spec being built and its origins."""

from __future__ import annotations

from typing import Any

from provision.diagnostics import ConfigPath, Diagnostic, warning
from provision.importers.origins import Origins
from provision.source.document import Document


class Context:
    def __init__(self, document: Document) -> None:
        self.document = document
        self.spec: dict[str, Any] = {}
        self.diagnostics: list[Diagnostic] = []
        self.origins = Origins()
        self.default_user: str | None = None
        self.disable_root = True
        self.prefer_fqdn = False
        # fstab fields a short `mounts` entry is completed with (mount_default_fields).
        self.mount_defaults: list[str | None] = [None, None, "auto", "defaults,nofail", "0", "2"]
        self.device_aliases: dict[str, str] = {}

    def add(self, section: tuple[str, ...], entry: dict[str, Any], source: ConfigPath) -> int:
        """Append ``entry`` to the list at ``section`` (e.g. ("storage", "files")); return its index."""
        node = self.spec
        for key in section[:-1]:
            node = node.setdefault(key, {})
        entries = node.setdefault(section[-1], [])
        entries.append(entry)
        index = len(entries) - 1
        self.origins.record((*section, index), source)
        return index

    def find(self, section: tuple[str, ...], key: str, value: object) -> dict[str, Any] | None:
        node: Any = self.spec
        for part in section:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        for entry in node or []:
            if entry.get(key) == value:
                return entry  # type: ignore[no-any-return]
        return None

    def warn(self, message: str, source: ConfigPath, hint: str | None = None, at_key: bool = False) -> None:
        diag = warning(message, source, hint)
        if at_key:  # point at the key itself, not at its value on the next line
            diag = diag.at(self.document.name, self.document.locate_key(source))
        self.diagnostics.append(diag)

    def unsupported(self, what: str, source: ConfigPath, why: str = "") -> None:
        self.warn(f"{what} is not supported" + (f": {why}" if why else ""), source, at_key=True)

    def bad(self, message: str, source: ConfigPath, hint: str | None = None) -> None:
        from provision.diagnostics import error

        self.diagnostics.append(error(message, source, hint))
