"""The symlinks ``systemctl --root=DIR enable UNIT`` makes, computed without systemctl.

From a unit's ``[Install]`` section: ``WantedBy=``/``RequiredBy=``
give ``/etc/systemd/system/<target>.wants|.requires/<unit>``,
``Alias=`` gives ``/etc/systemd/system/<alias>``, ``Also=`` enables further
units, and a template enabled without an instance uses ``DefaultInstance=``
(no links without one). Each link points at the unit file's path as found in
the unit search path, as systemctl writes it. The same list, removed, is
what ``systemctl disable`` does (``Also=`` units included).

The unit files come from the image, which nobody validated: a value that is
not a unit name (DefaultInstance= not an instance name) is skipped with a
warning, and every computed link is checked to lie in ``UNIT_DIR`` before it
is returned. Config units are refused earlier, at validate
(:func:`provision.systemd_unit.install_problems`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from provision.systemd_unit import (
    UnitSyntaxError,
    expand_specifiers,
    instance_problem,
    parse_unit,
    unit_name_problem,
)

log = logging.getLogger(__name__)

UNIT_DIR = "/etc/systemd/system"
# Persistent unit search path, highest priority first (systemd.unit(5)).
SEARCH_PATH = (UNIT_DIR, "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
# UpheldBy= is left out on purpose: systemctl 252 (what we verify against) ignores it.
_DEPENDENCY_DIRS = {"WantedBy": ".wants", "RequiredBy": ".requires"}


@dataclass(frozen=True)
class UnitName:
    prefix: str  # "foo" of foo@bar.service / foo.service
    instance: str | None  # "bar"; "" for the template foo@.service; None when not templated
    suffix: str  # ".service"

    @classmethod
    def parse(cls, name: str) -> UnitName:
        stem, dot, suffix = name.rpartition(".")
        if not dot:
            return cls(name, None, "")
        if "@" in stem:
            prefix, _, instance = stem.partition("@")
            return cls(prefix, instance, "." + suffix)
        return cls(stem, None, "." + suffix)

    @property
    def is_template(self) -> bool:
        return self.instance == ""

    @property
    def template(self) -> str:
        return f"{self.prefix}@{self.suffix}" if self.instance is not None else self.full

    @property
    def full(self) -> str:
        if self.instance is None:
            return self.prefix + self.suffix
        return f"{self.prefix}@{self.instance}{self.suffix}"

    def with_instance(self, instance: str) -> UnitName:
        return UnitName(self.prefix, instance, self.suffix)


def _expand(value: str, unit: UnitName) -> str:
    return expand_specifiers(value, unit.full)


def _list_values(values: list[str]) -> list[str]:
    """Space-separated list settings; an empty assignment resets the list."""
    items: list[str] = []
    for value in values:
        if not value:
            items.clear()
        else:
            items.extend(value.split())
    return items


def _is_unit_name(name: str) -> bool:
    """A valid unit name: links made from [Install] must stay in the unit directory."""
    return unit_name_problem(name) is None


def _inside_unit_dir(path: str) -> bool:
    """The last guard: ``UNIT_DIR/<unit>`` or ``UNIT_DIR/<unit>.wants|.requires/<unit>``."""
    if not path.startswith(UNIT_DIR + "/"):
        return False
    parts = path[len(UNIT_DIR) + 1:].split("/")
    if len(parts) == 1:
        return _is_unit_name(parts[0])
    if len(parts) == 2:
        directory, dot, kind = parts[0].rpartition(".")
        return bool(dot) and "." + kind in _DEPENDENCY_DIRS.values() and _is_unit_name(directory) \
            and _is_unit_name(parts[1])
    return False


@dataclass(frozen=True)
class EnableLink:
    path: str  # the link, inside the root
    target: str  # what it points to


# (unit file name) -> (path found in the search path, contents) or None.
UnitReader = Callable[[str], "tuple[str, str] | None"]


def find_unit(name: UnitName, read: UnitReader) -> tuple[str, str] | None:
    """The unit's file: an instance's own file first, then its template's."""
    candidates = [name.full] if name.instance is None or name.is_template else [name.full, name.template]
    for candidate in candidates:
        found = read(candidate)
        if found is not None:
            return found
    return None


def enable_links(name: str, read: UnitReader) -> tuple[list[EnableLink], list[str]]:
    """The links enabling ``name`` implies, plus warnings (no [Install], no file, ...)."""
    links: list[EnableLink] = []
    warnings: list[str] = []
    seen: set[str] = set()
    queue = [name]
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        unit = UnitName.parse(current)
        found = find_unit(unit, read)
        if found is None:
            warnings.append(f"{current}: no unit file in the target; nothing to link")
            continue
        path, text = found
        try:
            parsed = parse_unit(text)
        except UnitSyntaxError as exc:
            warnings.append(f"{current}: {exc}; not linked")
            continue
        linked: UnitName | None = unit
        if unit.is_template:
            default = [v for v in parsed.values("Install", "DefaultInstance") if v]
            if not default:
                warnings.append(f"{current}: a template without DefaultInstance=; enable an instance")
                linked = None
            else:
                instance = _expand(default[-1], unit)
                if instance_problem(instance) is None:
                    linked = unit.with_instance(instance)
                else:
                    warnings.append(f"{current}: DefaultInstance={default[-1]} is not an instance name; not linked")
                    linked = None
        if linked is not None and not _is_unit_name(linked.full):
            warnings.append(f"{current}: {linked.full} is not a unit name; not linked")
            linked = None
        if linked is not None:
            unit = linked
            for key, suffix in _DEPENDENCY_DIRS.items():
                for target in _list_values(parsed.values("Install", key)):
                    target = _expand(target, unit)
                    if not _is_unit_name(target):
                        warnings.append(f"{current}: {key}={target} is not a unit name; ignored")
                        continue
                    links.append(EnableLink(f"{UNIT_DIR}/{target}{suffix}/{unit.full}", path))
            for alias in _list_values(parsed.values("Install", "Alias")):
                if not _is_unit_name(_expand(alias, unit)):
                    warnings.append(f"{current}: Alias={alias} is not a unit name; ignored")
                    continue
                alias_name = UnitName.parse(_expand(alias, unit))
                if alias_name.is_template and unit.instance:
                    alias_name = alias_name.with_instance(unit.instance)
                if alias_name.full != unit.full:
                    links.append(EnableLink(f"{UNIT_DIR}/{alias_name.full}", path))
        for also in _list_values(parsed.values("Install", "Also")):
            also_name = _expand(also, UnitName.parse(current))
            if _is_unit_name(also_name):
                queue.append(also_name)
            else:
                warnings.append(f"{current}: Also={also} is not a unit name; ignored")
        if not parsed.has_section("Install") and current == name:
            warnings.append(f"{current}: no [Install] section; only the preset is written")
    unique = []
    for link in dict.fromkeys(links):
        if _inside_unit_dir(link.path):
            unique.append(link)
        else:
            warnings.append(f"{name}: {link.path} would not be in {UNIT_DIR}; not linked")
    return unique, warnings
