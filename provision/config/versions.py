"""Spec versions of provision's own config format.

Each version has its own schema file in schemas/ and a small translate step
from the version before it; :func:`to_newest` walks the steps. Stages only
ever see the newest model.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple turns
# each field's annotation into a ForwardRef, compiled at import (see
# tests/test_validate_startup.py).
from collections.abc import Callable
from typing import Any, NamedTuple

Spec = dict[str, Any]


class SpecVersion(NamedTuple):  # not a dataclass: see provision.diagnostics
    version: str
    schema_file: str
    # Translates a config of the previous version (already validated by its
    # own schema) into this version. None for the first version.
    from_previous: Callable[[Spec], Spec] | None
    # This version's schema only adds optional fields to the previous one's,
    # so a config valid by the previous schema is valid by this one once
    # translated and need not be checked again (tests/test_versions.py proves
    # it from the two schema files; a version that changes or restricts
    # anything says False).
    widens: bool = False


def _from_1_0_0(spec: Spec) -> Spec:
    """1.1.0 adds optional sections (``network``; ``storage.grow``, ``passwd.defaultUser``,
    ``provision.phoneHome``); nothing of 1.0.0 changes meaning."""
    return {**spec, "provision": dict(spec["provision"])}


VERSIONS: tuple[SpecVersion, ...] = (
    SpecVersion("1.0.0", "provision-1.0.0.json", None),
    SpecVersion("1.1.0", "provision-1.1.0.json", _from_1_0_0, widens=True),
)

NEWEST = VERSIONS[-1].version


def supported() -> list[str]:
    return [v.version for v in VERSIONS]


def find(version: str) -> SpecVersion | None:
    for v in VERSIONS:
        if v.version == version:
            return v
    return None


def newest_schema_implied(version: str) -> bool:
    """Whether a config valid by ``version``'s schema is, translated, valid by the newest schema."""
    index = supported().index(version)
    return all(step.widens for step in VERSIONS[index + 1 :])


def to_newest(spec: Spec, version: str) -> Spec:
    index = supported().index(version)
    for step in VERSIONS[index + 1 :]:
        assert step.from_previous is not None
        spec = step.from_previous(spec)
        spec["provision"]["version"] = step.version
    return spec
