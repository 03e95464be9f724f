"""Semantic checks on files, directories and links: modes, overwrite, owners,
link targets."""

from __future__ import annotations

from typing import Any

import pytest
from checks_fixtures import only
from hypothesis import given
from hypothesis import strategies as st

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.config.checks.nodes import decimal_meant
from provision.diagnostics import Diagnostic, Severity


def check(**sections: Any) -> list[Diagnostic]:
    return run_checks(build_config({"provision": {"version": "1.0.0"}, **sections}))


@pytest.mark.parametrize(
    ("written", "meant"), [(644, 0o644), (755, 0o755), (600, 0o600), (777, 0o777), (400, 0o400)]
)
def test_a_mode_written_as_decimal_digits_warns_with_the_octal_value(
    written: int, meant: int
) -> None:
    diag = only(
        check(storage={"files": [{"path": "/a", "mode": written}]}),
        Severity.WARNING,
        ("storage", "files", 0, "mode"),
        "looks like octal",
    )
    assert diag.hint is not None and f"did you mean 0o{written} = {meant}?" in diag.hint
    assert check(storage={"files": [{"path": "/a", "mode": meant}]}) == []


@pytest.mark.parametrize(
    "mode", [0o644, 0o755, 0o600, 0o640, 0o750, 0o700, 0o444, 0o1777, 0o4755, 0o2775, 0, 0o7777]
)
def test_ordinary_modes_do_not_warn(mode: int) -> None:
    assert check(storage={"directories": [{"path": "/d", "mode": mode}]}) == []


def test_a_mode_out_of_range_is_an_error_with_a_hint_when_octal_was_meant() -> None:
    diag = only(
        check(storage={"directories": [{"path": "/d", "mode": 4755}]}),
        Severity.ERROR,
        ("storage", "directories", 0, "mode"),
        "out of range",
    )
    assert diag.hint is not None and "0o4755 = 2541" in diag.hint
    diag = only(
        check(storage={"files": [{"path": "/f", "mode": 0o10000}]}),
        Severity.ERROR,
        ("storage", "files", 0, "mode"),
        "out of range",
    )
    assert diag.hint is None


@given(st.integers(min_value=0, max_value=0o7777))
def test_a_decimal_hint_always_names_digits_that_are_the_written_number(mode: int) -> None:
    meant = decimal_meant(mode)
    if meant is not None:
        assert int(meant) == mode and int(meant, 8) != mode


def test_overwrite_without_a_source_is_an_error() -> None:
    only(
        check(storage={"files": [{"path": "/a", "overwrite": True}]}),
        Severity.ERROR,
        ("storage", "files", 0, "overwrite"),
        "overwrite must be false if contents.source is unspecified",
    )
    only(
        check(
            storage={
                "files": [{"path": "/a", "overwrite": True, "contents": {"compression": "gzip"}}]
            }
        ),
        Severity.ERROR,
        ("storage", "files", 0, "overwrite"),
        "overwrite",
    )
    assert (
        check(
            storage={
                "files": [{"path": "/a", "overwrite": True, "contents": {"source": "data:,x"}}]
            }
        )
        == []
    )
    assert check(storage={"files": [{"path": "/a", "overwrite": False}]}) == []


@pytest.mark.parametrize("kind", ["files", "directories", "links"])
@pytest.mark.parametrize("owner", ["user", "group"])
def test_owner_by_both_id_and_name_is_an_error(kind: str, owner: str) -> None:
    node: dict[str, Any] = {"path": "/n", owner: {"id": 1000, "name": "core"}}
    if kind == "links":
        node["target"] = "/t"
    only(
        check(storage={kind: [node]}),
        Severity.ERROR,
        ("storage", kind, 0, owner),
        "both id and name",
    )
    node[owner] = {"name": "core"}
    assert check(storage={kind: [node]}) == []


def test_owner_id_out_of_range() -> None:
    only(
        check(storage={"files": [{"path": "/a", "user": {"id": 2**32 - 1}}]}),
        Severity.ERROR,
        ("storage", "files", 0, "user", "id"),
        "out of range",
    )
    assert check(storage={"files": [{"path": "/a", "user": {"id": 2**32 - 2}}]}) == []


def test_an_empty_link_target_is_an_error() -> None:
    only(
        check(storage={"links": [{"path": "/l", "target": ""}]}),
        Severity.ERROR,
        ("storage", "links", 0, "target"),
        "link target is required",
    )
    assert check(storage={"links": [{"path": "/l", "target": "relative/ok"}]}) == []


def test_hard_links_need_an_absolute_target_that_is_not_a_directory() -> None:
    only(
        check(storage={"links": [{"path": "/l", "target": "x", "hard": True}]}),
        Severity.ERROR,
        ("storage", "links", 0, "target"),
        "not absolute",
    )
    found = check(
        storage={
            "directories": [{"path": "/d"}],
            "links": [{"path": "/l", "target": "/d", "hard": True}],
        }
    )
    only(
        found, Severity.ERROR, ("storage", "links", 0, "target"), "hard link target is a directory"
    )
    assert (
        check(
            storage={
                "files": [{"path": "/f"}],
                "links": [{"path": "/l", "target": "/f", "hard": True}],
            }
        )
        == []
    )


def test_an_owner_on_a_hard_link_is_ignored_with_a_warning() -> None:
    only(
        check(
            storage={"links": [{"path": "/l", "target": "/f", "hard": True, "group": {"id": 5}}]}
        ),
        Severity.WARNING,
        ("storage", "links", 0, "group"),
        "ignored for a hard link",
    )
    assert check(storage={"links": [{"path": "/l", "target": "/f", "group": {"id": 5}}]}) == []
