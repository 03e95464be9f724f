"""Semantic checks on node paths: syntax, one namespace, links and files as
parents, collisions with systemd units."""

from __future__ import annotations

from typing import Any

import pytest

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.diagnostics import Diagnostic, Severity


def check(**sections: Any) -> list[Diagnostic]:
    return run_checks(build_config({"provision": {"version": "1.0.0"}, **sections}))


def only(
    found: list[Diagnostic], severity: Severity, path: tuple[object, ...], text: str
) -> Diagnostic:
    """The single diagnostic in ``found``; it must have this severity, path and text."""
    assert len(found) == 1, found
    [diag] = found
    assert diag.severity is severity and diag.path == path and text in diag.message, diag
    return diag


def test_relative_path_is_an_error_with_a_hint() -> None:
    diag = only(
        check(storage={"files": [{"path": "etc/motd"}]}),
        Severity.ERROR,
        ("storage", "files", 0, "path"),
        "not absolute",
    )
    assert diag.hint is not None and '"/etc/motd"' in diag.hint
    assert check(storage={"files": [{"path": "/etc/motd"}]}) == []


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("/etc/../motd", "/motd"),
        ("/etc//motd", "/etc/motd"),
        ("/etc/", "/etc"),
        ("/etc/./motd", "/etc/motd"),
    ],
)
def test_unnormalised_paths_suggest_the_clean_form(path: str, clean: str) -> None:
    diag = only(
        check(storage={"directories": [{"path": path}]}),
        Severity.ERROR,
        ("storage", "directories", 0, "path"),
        "not normalised",
    )
    assert diag.hint == f'did you mean "{clean}"?'
    assert check(storage={"directories": [{"path": clean}]}) == []


def test_a_file_cannot_be_the_root_directory_but_a_directory_can() -> None:
    only(
        check(storage={"files": [{"path": "/"}]}),
        Severity.ERROR,
        ("storage", "files", 0, "path"),
        "root",
    )
    assert check(storage={"directories": [{"path": "/", "mode": 0o755}]}) == []


def test_files_directories_and_links_share_one_namespace() -> None:
    found = check(
        storage={"files": [{"path": "/srv/a"}], "links": [{"path": "/srv/a", "target": "/b"}]}
    )
    diag = only(found, Severity.ERROR, ("storage", "links", 0, "path"), "duplicate path")
    assert "storage.files[0].path" in diag.message
    assert (
        check(
            storage={"files": [{"path": "/srv/a"}], "links": [{"path": "/srv/b", "target": "/b"}]}
        )
        == []
    )


def test_duplicate_files() -> None:
    found = check(storage={"files": [{"path": "/a"}, {"path": "/b"}, {"path": "/a"}]})
    only(found, Severity.ERROR, ("storage", "files", 2, "path"), "duplicate path")


def test_a_path_under_a_configured_symlink_is_an_error() -> None:
    found = check(
        storage={
            "links": [{"path": "/opt/app", "target": "/srv/app"}],
            "files": [{"path": "/opt/app/conf/x.ini"}],
        }
    )
    diag = only(found, Severity.ERROR, ("storage", "files", 0, "path"), "below /opt/app")
    assert "storage.links[0]" in diag.message and "link" in diag.message
    # The same file next to the link is fine.
    assert (
        check(
            storage={
                "links": [{"path": "/opt/app", "target": "/srv/app"}],
                "files": [{"path": "/opt/app.ini"}],
            }
        )
        == []
    )


def test_a_path_under_a_configured_file_is_an_error() -> None:
    found = check(storage={"files": [{"path": "/etc/x"}], "directories": [{"path": "/etc/x/y"}]})
    only(found, Severity.ERROR, ("storage", "directories", 0, "path"), "as a file")
    assert (
        check(storage={"directories": [{"path": "/etc/x"}], "files": [{"path": "/etc/x/y"}]}) == []
    )


def test_a_file_at_a_unit_path_collides_with_the_unit() -> None:
    unit = {"name": "web.service", "contents": "[Service]\nExecStart=/bin/true\n"}
    found = check(
        storage={"files": [{"path": "/etc/systemd/system/web.service"}]}, systemd={"units": [unit]}
    )
    diag = only(
        found, Severity.ERROR, ("storage", "files", 0, "path"), "conflicts with the systemd unit"
    )
    assert "systemd.units[0]" in diag.message
    # Writing the unit as a file and only enabling it in systemd.units is a common, valid pattern.
    assert (
        check(
            storage={"files": [{"path": "/etc/systemd/system/web.service"}]},
            systemd={"units": [{"name": "web.service"}]},
        )
        == []
    )


def test_a_link_at_a_masked_unit_path_collides() -> None:
    found = check(
        storage={"links": [{"path": "/etc/systemd/system/a.service", "target": "/dev/null"}]},
        systemd={"units": [{"name": "a.service", "mask": True}]},
    )
    only(found, Severity.ERROR, ("storage", "links", 0, "path"), "conflicts")


def test_a_file_at_a_dropin_path_collides_with_the_dropin() -> None:
    unit = {
        "name": "a.service",
        "dropins": [{"name": "10-x.conf", "contents": "[Service]\nNice=5\n"}],
    }
    found = check(
        storage={"files": [{"path": "/etc/systemd/system/a.service.d/10-x.conf"}]},
        systemd={"units": [unit]},
    )
    diag = only(found, Severity.ERROR, ("storage", "files", 0, "path"), "conflicts")
    assert "systemd.units[0].dropins[0]" in diag.message
    assert (
        check(
            storage={"files": [{"path": "/etc/systemd/system/a.service.d/20-y.conf"}]},
            systemd={"units": [unit]},
        )
        == []
    )
