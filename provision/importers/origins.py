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

    def remap(self, moves: dict[ConfigPath, ConfigPath]) -> None:
        """Entries moved within the spec (merging reorders lists): ``moves`` maps old prefixes to new ones.

        All moves apply at once, to the recorded spec paths; a path under no moved prefix stays.
        """
        remapped: dict[ConfigPath, ConfigPath] = {}
        for spec_path, source in self._map.items():
            for cut in range(len(spec_path), 0, -1):
                new = moves.get(spec_path[:cut])
                if new is not None:
                    spec_path = (*new, *spec_path[cut:])
                    break
            remapped.setdefault(spec_path, source)
        self._map = remapped
