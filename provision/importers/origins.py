"""Where each part of a translated spec came from in the source document.

Importers record, for each spec path they create, the source path that
produced it; :meth:`Origins.source_path` then maps any spec path (a
diagnostic's) back by its longest recorded prefix.
"""

from __future__ import annotations

from provision.diagnostics import ConfigPath


class Origins:
    def __init__(self) -> None:
        self._map: dict[ConfigPath, ConfigPath] = {}

    def record(self, spec_path: ConfigPath, source_path: ConfigPath) -> None:
        self._map.setdefault(tuple(spec_path), tuple(source_path))

    def source_path(self, spec_path: ConfigPath) -> ConfigPath | None:
        path = tuple(spec_path)
        while True:
            if path in self._map:
                return self._map[path]
            if not path:
                return None
            path = path[:-1]
