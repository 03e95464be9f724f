"""Checks on node paths: syntax, one namespace for files, directories and links,
nothing under a configured link or file, no clash with systemd units."""

# No `from __future__ import annotations` here: with it, typing.NamedTuple turns
# each field's annotation into a ForwardRef, compiled at import (see
# tests/test_validate_startup.py).
from collections.abc import Iterator
from typing import NamedTuple

from provision.config import model
from provision.config.checks._common import (
    check_path,
    describe,
    duplicate_errors,
    parents,
    shared_by_checks,
)
from provision.diagnostics import ConfigPath, Diagnostic, error

UNIT_DIR = "/etc/systemd/system"


class Node(NamedTuple):
    kind: str  # "files", "directories" or "links"
    item: int  # position in its list
    path: str
    hard: bool = False

    @property
    def where(self) -> ConfigPath:
        return ("storage", self.kind, self.item, "path")


@shared_by_checks
def nodes(storage: model.Storage) -> tuple[Node, ...]:
    return (
        *(Node("files", i, f.path) for i, f in enumerate(storage.files)),
        *(Node("directories", i, d.path) for i, d in enumerate(storage.directories)),
        *(Node("links", i, link.path, bool(link.hard)) for i, link in enumerate(storage.links)),
    )


def check_node_paths(config: model.Config) -> Iterator[Diagnostic]:
    for node in nodes(config.storage):
        yield from check_path(node.path, node.where)
        if node.path == "/" and node.kind != "directories":
            yield error(f"a {node.kind[:-1]} cannot replace the root directory", node.where)


def check_duplicate_nodes(config: model.Config) -> Iterator[Diagnostic]:
    yield from duplicate_errors(
        ((n.path, n.where) for n in nodes(config.storage)),
        "path",
        "files, directories and links share one namespace",
    )


def check_parents(config: model.Config) -> Iterator[Diagnostic]:
    """A node below a configured link or file could not be created where the config says."""
    by_path: dict[str, Node] = {}
    for node in nodes(config.storage):
        by_path.setdefault(node.path, node)
    for node in nodes(config.storage):
        for parent in parents(node.path):
            other = by_path.get(parent)
            if other is None or other.kind == "directories":
                continue
            kind = "file" if other.kind == "files" else "link"
            yield error(
                f"path is below {parent}, which {describe(other.where[:3])} configures as a {kind}",
                node.where,
                "the node would be created through the link, outside the path the config names"
                if kind == "link"
                else None,
            )
            break


def unit_paths(systemd: model.Systemd) -> dict[str, str]:
    """Paths the units stage writes, mapped to a description of the writer."""
    out: dict[str, str] = {}
    for i, unit in enumerate(systemd.units):
        if unit.contents or unit.mask:
            out[f"{UNIT_DIR}/{unit.name}"] = describe(("systemd", "units", i))
        for j, dropin in enumerate(unit.dropins):
            if dropin.contents:
                out[f"{UNIT_DIR}/{unit.name}.d/{dropin.name}"] = describe(
                    ("systemd", "units", i, "dropins", j)
                )
    return out


def check_unit_collisions(config: model.Config) -> Iterator[Diagnostic]:
    written = unit_paths(config.systemd)
    if not written:
        return
    for node in nodes(config.storage):
        writer = written.get(node.path)
        if writer:
            yield error(
                f"path conflicts with the systemd unit or drop-in of {writer}",
                node.where,
                "configure the unit in one place only",
            )


CHECKS = (check_node_paths, check_duplicate_nodes, check_parents, check_unit_collisions)
