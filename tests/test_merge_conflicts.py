"""merge_specs reports conflicts (the child still wins) with paths into parent and child."""

from __future__ import annotations

from typing import Any

from provision.config.merge import merge_specs
from provision.diagnostics import ConfigPath


def conflicts(parent: dict[str, Any], child: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[ConfigPath, ConfigPath]]]:
    found: list[tuple[ConfigPath, ConfigPath]] = []

    def record(p: ConfigPath, c: ConfigPath) -> None:
        found.append((p, c))

    return merge_specs(parent, child, record), found


def test_scalar_set_differently_is_a_conflict_with_both_paths() -> None:
    parent = {"storage": {"files": [{"path": "/x"}, {"path": "/a", "mode": 420}]}}
    child = {"storage": {"files": [{"path": "/a", "mode": 384}]}}
    merged, found = conflicts(parent, child)
    assert found == [(("storage", "files", 1, "mode"), ("storage", "files", 0, "mode"))]
    assert merged["storage"]["files"][1]["mode"] == 384


def test_same_value_and_unions_are_not_conflicts() -> None:
    parent = {"passwd": {"users": [{"name": "a", "uid": 5, "groups": ["x"], "sshAuthorizedKeys": ["k1"]}]}}
    child = {"passwd": {"users": [{"name": "a", "uid": 5, "groups": ["y"], "sshAuthorizedKeys": ["k2"]}]}}
    merged, found = conflicts(parent, child)
    assert found == []
    assert merged["passwd"]["users"][0]["groups"] == ["x", "y"]


def test_replaced_list_of_objects_is_a_conflict() -> None:
    parent = {"containers": {"containers": [{"name": "w", "image": "i", "ports": [{"container": 80}]}]}}
    child = {"containers": {"containers": [{"name": "w", "ports": [{"container": 81}]}]}}
    merged, found = conflicts(parent, child)
    assert found == [(("containers", "containers", 0, "ports"), ("containers", "containers", 0, "ports"))]
    assert merged["containers"]["containers"][0]["ports"] == [{"container": 81}]


def test_node_of_another_kind_at_the_same_path_is_a_conflict() -> None:
    parent = {"storage": {"files": [{"path": "/a"}], "links": [{"path": "/b", "target": "/a"}]}}
    child = {"storage": {"directories": [{"path": "/x"}, {"path": "/b"}]}}
    merged, found = conflicts(parent, child)
    assert found == [(("storage", "links", 0), ("storage", "directories", 1))]
    assert merged["storage"]["links"] == []


def test_without_a_handler_nothing_changes() -> None:
    parent = {"systemd": {"units": [{"name": "a.service", "enabled": True}]}}
    child = {"systemd": {"units": [{"name": "a.service", "enabled": False}]}}
    assert merge_specs(parent, child) == child
