"""cloud-config parts merged as cloud-init merges them, remembering where each value came from.

cloud-init's default for user-data parts is ``dict(replace)+list()+str()``: a
top-level key of a later part replaces the earlier value whole. A part may
ask for another merge with ``merge_how`` / ``merge_type`` in its body or a
``Merge-Type`` / ``X-Merge-Type`` header, e.g. ``list(append)+dict(recurse_array)+str()``
so that two parts' ``runcmd`` lists are concatenated. Supported: dict
``replace``/``no_replace``/``recurse_array``/``recurse_list``/``allow_delete``; list
``append``/``prepend``/``replace``/``no_replace``/``recurse_dict``/``recurse_array``;
str ``append``. cloud-init's ``recurse_str`` is accepted and has no effect.

Every node of the merged value maps to (part index, path within the part),
so a diagnostic about the merged config points at the line that set it.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from provision.diagnostics import ConfigPath

DEFAULT = "dict(replace)+list()+str()"
_ONE = re.compile(r"\s*([a-z_]+)\s*\(([^)]*)\)\s*")


class MergeSpecError(ValueError):
    pass


class Mergers(NamedTuple):
    dict_opts: frozenset[str]
    list_opts: frozenset[str]
    str_opts: frozenset[str]


def parse_merge_string(text: str) -> Mergers:
    """``list(append)+dict(no_replace,recurse_list)+str()`` -> the options per type."""
    found: dict[str, frozenset[str]] = {}
    for piece in text.split("+"):
        match = _ONE.fullmatch(piece)
        if match is None or match.group(1) not in ("dict", "list", "str"):
            raise MergeSpecError(f"{piece.strip()!r} is not a merger such as list(append) or dict(replace)")
        found[match.group(1)] = frozenset(o.strip() for o in match.group(2).split(",") if o.strip())
    return _mergers(found)


def parse_merge_list(value: Any) -> Mergers:
    """The list form: ``[{name: list, settings: [append]}, ...]`` (or a string)."""
    if isinstance(value, str):
        return parse_merge_string(value)
    if not isinstance(value, list):
        raise MergeSpecError("merge_how must be a string or a list of {name, settings}")
    found: dict[str, frozenset[str]] = {}
    for item in value:
        if not isinstance(item, dict) or item.get("name") not in ("dict", "list", "str"):
            raise MergeSpecError("each merge_how entry needs a name: dict, list or str")
        settings = item.get("settings") or []
        if not isinstance(settings, list):
            raise MergeSpecError("merge_how settings must be a list")
        found[item["name"]] = frozenset(str(s) for s in settings)
    return _mergers(found)


def _mergers(found: dict[str, frozenset[str]]) -> Mergers:
    # cloud-init: a type without a merger named is not merged (the new value wins).
    known = {"dict": {"replace", "no_replace", "recurse_array", "recurse_list", "recurse_str", "allow_delete"},
             "list": {"append", "prepend", "replace", "no_replace", "recurse_dict", "recurse_array",
                      "recurse_list", "recurse_str"},
             "str": {"append"}}
    for name, opts in found.items():
        unknown = opts - known[name]
        if unknown:
            raise MergeSpecError(f"unknown {name} merge option {sorted(unknown)[0]!r}")
    return Mergers(found.get("dict", frozenset({"no_replace"})), found.get("list", frozenset({"replace"})),
                   found.get("str", frozenset()))


Origin = tuple[int, ConfigPath]  # (part index, path in that part)


class Merged:
    """The merged cloud-config and, per merged path, where it came from."""

    def __init__(self) -> None:
        self.value: dict[str, Any] = {}
        self._origins: dict[ConfigPath, Origin] = {}
        self.parts = 0

    def origin(self, path: ConfigPath) -> Origin | None:
        """(part, path in part) for a merged path: by its longest recorded prefix."""
        for cut in range(len(path), -1, -1):
            found = self._origins.get(path[:cut])
            if found is not None:
                part, where = found
                return part, (*where, *path[cut:])
        return None

    def add(self, part: int, value: dict[str, Any], mergers: Mergers) -> None:
        if not self.parts:  # the first part is the starting point, as in cloud-init
            self.value = dict(value)
            self._set((), part, ())
        else:
            self.value = self._merge(self.value, value, mergers, (), part, ())
        self.parts += 1

    # -- origins ----------------------------------------------------------------

    def _set(self, path: ConfigPath, part: int, where: ConfigPath) -> None:
        for key in [k for k in self._origins if k[:len(path)] == path]:
            del self._origins[key]
        self._origins[path] = (part, where)

    def _pin(self, path: ConfigPath) -> None:
        """Record the current origin of ``path`` explicitly before its parent changes shape."""
        found = self.origin(path)
        if found is not None and path not in self._origins:
            self._origins[path] = found

    def _shift(self, path: ConfigPath, by: int, count: int) -> None:
        """List entries at ``path`` moved ``by`` places (prepend)."""
        for i in range(count):
            self._pin((*path, i))
        moved = {}
        for key in list(self._origins):
            if len(key) > len(path) and key[:len(path)] == path and isinstance(key[len(path)], int):
                moved[(*path, key[len(path)] + by, *key[len(path) + 1:])] = self._origins.pop(key)  # type: ignore[operator]
        self._origins.update(moved)

    # -- merging (cloud-init's mergers/m_dict.py, m_list.py, m_str.py) --------

    def _merge(self, old: Any, new: Any, m: Mergers, path: ConfigPath, part: int, where: ConfigPath) -> Any:
        if isinstance(old, dict) and isinstance(new, dict):
            return self._dict(old, new, m, path, part, where)
        if isinstance(old, list) and isinstance(new, list):
            return self._list(old, new, m, path, part, where)
        if isinstance(old, str) and isinstance(new, str) and "append" in m.str_opts:
            return old + new
        self._set(path, part, where)
        return new

    def _dict(self, old: dict[str, Any], new: dict[str, Any], m: Mergers, path: ConfigPath, part: int,
              where: ConfigPath) -> dict[str, Any]:
        result = dict(old)
        replace = "replace" in m.dict_opts
        recurse_list = bool({"recurse_array", "recurse_list"} & m.dict_opts)
        for key, value in new.items():
            here, src = (*path, key), (*where, key)
            if key not in result:
                result[key] = value
                self._set(here, part, src)
            elif value is None and "allow_delete" in m.dict_opts:
                self._pin(path)
                del result[key]
            elif replace:
                result[key] = value
                self._set(here, part, src)
            elif isinstance(value, dict) or (isinstance(value, list) and recurse_list):
                self._pin(here)
                result[key] = self._merge(result[key], value, m, here, part, src)
            # otherwise the earlier value stays (no_replace)
        return result

    def _list(self, old: list[Any], new: list[Any], m: Mergers, path: ConfigPath, part: int,
              where: ConfigPath) -> list[Any]:
        self._pin(path)
        if "append" in m.list_opts:
            for j in range(len(new)):
                self._set((*path, len(old) + j), part, (*where, j))
            return [*old, *new]
        if "prepend" in m.list_opts:
            self._shift(path, len(new), len(old))
            for j in range(len(new)):
                self._set((*path, j), part, (*where, j))
            return [*new, *old]
        result = list(old)
        for j in range(min(len(old), len(new))):
            if "no_replace" in m.list_opts:
                continue
            self._pin((*path, j))
            item = new[j]
            recurse = (isinstance(item, dict) and "recurse_dict" in m.list_opts) or (
                isinstance(item, list) and {"recurse_array", "recurse_list"} & m.list_opts)
            if recurse:
                result[j] = self._merge(old[j], item, m, (*path, j), part, (*where, j))
            else:
                result[j] = item
                self._set((*path, j), part, (*where, j))
        return result
