"""Helpers shared by the semantic checks: path syntax, GUIDs, duplicate finding."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

from provision.diagnostics import ConfigPath, Diagnostic, error

K = TypeVar("K", bound=Hashable)
A = TypeVar("A")
R = TypeVar("R")


def shared_by_checks(derive: Callable[[A], R]) -> Callable[[A], R]:
    """``derive``, remembered for the last argument it was given (by identity).

    Several checks walk the same list derived from one config (every node,
    every resource); the model is immutable, so they can share one list
    instead of each building 1,000 entries again. The argument is held, so
    its identity cannot be reused while it is remembered.
    """
    last: list[tuple[A, R]] = []

    def shared(arg: A) -> R:
        if not last or last[0][0] is not arg:
            last[:] = [(arg, derive(arg))]
        return last[0][1]

    return shared

GUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


def is_guid(value: str) -> bool:
    return re.fullmatch(GUID_PATTERN, value) is not None


GUID_HINT = 'a GUID looks like "0FC63DAF-8483-4772-8E79-3D69D8477DE4"'


def clean_path(path: str) -> str:
    """The normalised form of an absolute path (what the user most likely meant)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


NAME_MAX = 255  # bytes in one path component (Linux, every common filesystem)
PATH_MAX = 4096  # bytes in a path, its terminating NUL included


def length_problem(path: str) -> str | None:
    """Why ``path`` is too long for the kernel to use (ENAMETOOLONG at apply); None when it is not."""
    if len(path) * 4 <= NAME_MAX:
        return None  # at most 4 bytes a character: no part of it can be too long (the usual case)
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) >= PATH_MAX:
        return f"path is {len(encoded)} bytes long; the limit is {PATH_MAX - 1}"
    for part in encoded.split(b"/"):
        if len(part) > NAME_MAX:
            return f"a path component is {len(part)} bytes long; the limit is {NAME_MAX}"
    return None


def path_problem(path: str) -> tuple[str, str | None] | None:
    """Why ``path`` is not an absolute, normalised path, with a hint; None when it is."""
    if not path:
        return "path is empty", None
    if "\0" in path:
        return "path contains a NUL character", None
    if not path.startswith("/"):
        return "path is not absolute", f'paths start with "/", e.g. "/{path}"'
    if path != "/" and (path.endswith("/") or "//" in path or _has_dot_part(path)):
        return "path is not normalised", f'did you mean "{clean_path(path)}"?'
    too_long = length_problem(path)
    if too_long:
        return too_long, None
    return None


def _has_dot_part(path: str) -> bool:
    return "/." in path and any(part in (".", "..") for part in path.split("/"))


def check_path(path: str, where: ConfigPath) -> Iterator[Diagnostic]:
    problem = path_problem(path)
    if problem:
        yield error(problem[0], where, problem[1])


def parents(path: str) -> Iterator[str]:
    """Proper ancestors of a normalised absolute path, nearest first, without "/"."""
    while True:
        path = path.rpartition("/")[0]
        if not path:
            return
        yield path


def find_duplicates(
    items: Iterable[tuple[K, ConfigPath]],
) -> Iterator[tuple[ConfigPath, ConfigPath]]:
    """Yield (later path, first path) for every item whose key was seen before."""
    first: dict[K, ConfigPath] = {}
    for key, where in items:
        if key in first:
            yield where, first[key]
        else:
            first[key] = where


def describe(where: ConfigPath) -> str:
    """A config path as a user reads it in a message: ``storage.files[3]``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def duplicate_errors(
    items: Iterable[tuple[K, ConfigPath]], what: str, hint: str | None = None
) -> Iterator[Diagnostic]:
    for where, first in find_duplicates(items):
        yield error(f"duplicate {what}; already used by {describe(first)}", where, hint)
