"""Semantic checks on the containers section."""

from __future__ import annotations

from typing import Any

import pytest
from checks_fixtures import only

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.diagnostics import Diagnostic, Severity

C = ("containers", "containers")


def check(**section: Any) -> list[Diagnostic]:
    section.setdefault("runtime", "podman")
    return run_checks(build_config({"provision": {"version": "1.0.0"}, "containers": section}))


def web(**kw: Any) -> dict[str, Any]:
    return {"name": "web", "image": "docker.io/library/nginx:1.27", **kw}


def test_a_full_valid_section() -> None:
    assert (
        check(
            runtime="docker",
            settings={"dataRoot": "/var/lib/docker", "logDriver": "journald"},
            registries={
                "mirrors": [
                    {
                        "registry": "docker.io",
                        "endpoints": ["https://mirror.example:5000", "http://10.0.0.2"],
                    }
                ],
                "insecure": ["registry.lan:5000"],
                "credentials": [{"registry": "ghcr.io", "username": "u", "password": "p"}],
            },
            volumes=[{"name": "data"}],
            networks=[{"name": "front", "subnet": "10.89.0.0/24"}],
            containers=[
                web(
                    volumes=[
                        {"source": "data", "target": "/data"},
                        {"source": "/srv/www", "target": "/usr/share/nginx/html", "readOnly": True},
                    ],
                    networks=["front"],
                    ports=[
                        {"host": 80, "container": 80},
                        {"host": 80, "container": 80, "protocol": "udp"},
                    ],
                    env={"TZ": "UTC", "nginx.conf-path": "/etc/nginx"},
                ),
                web(
                    name="api",
                    ports=[{"host": 8080, "container": 80, "hostIp": "127.0.0.1"}],
                    networks=["host"],
                ),
            ],
        )
        == []
    )


@pytest.mark.parametrize(
    "section",
    [
        {"containers": [web()]},
        {"volumes": [{"name": "data"}]},
        {"registries": {"insecure": ["r:5000"]}},
        {"settings": {"dataRoot": "/d"}},
    ],
)
def test_anything_configured_needs_a_runtime(section: dict[str, Any]) -> None:
    found = run_checks(build_config({"provision": {"version": "1.0.0"}, "containers": section}))
    diag = only(found, Severity.ERROR, ("containers",), "no runtime")
    assert diag.hint is not None and "podman" in diag.hint


def test_duplicate_names() -> None:
    only(
        check(containers=[web(), web()]),
        Severity.ERROR,
        (*C, 1, "name"),
        "duplicate container name",
    )
    only(
        check(volumes=[{"name": "v"}, {"name": "v"}]),
        Severity.ERROR,
        ("containers", "volumes", 1, "name"),
        "duplicate volume name",
    )
    only(
        check(networks=[{"name": "n"}, {"name": "n"}]),
        Severity.ERROR,
        ("containers", "networks", 1, "name"),
        "duplicate network name",
    )


def test_volume_sources_must_be_absolute_or_declared() -> None:
    diag = only(
        check(containers=[web(volumes=[{"source": "data", "target": "/data"}])]),
        Severity.ERROR,
        (*C, 0, "volumes", 0, "source"),
        "neither an absolute path nor a declared volume",
    )
    assert diag.hint is not None and "containers.volumes" in diag.hint
    only(
        check(containers=[web(volumes=[{"source": "./data", "target": "/data"}])]),
        Severity.ERROR,
        (*C, 0, "volumes", 0, "source"),
        "neither",
    )
    only(
        check(containers=[web(volumes=[{"source": "/srv/../etc", "target": "/data"}])]),
        Severity.ERROR,
        (*C, 0, "volumes", 0, "source"),
        "not normalised",
    )
    only(
        check(containers=[web(volumes=[{"source": "/a", "target": "data"}])]),
        Severity.ERROR,
        (*C, 0, "volumes", 0, "target"),
        "not absolute",
    )
    only(
        check(
            containers=[
                web(volumes=[{"source": "/a", "target": "/d"}, {"source": "/b", "target": "/d"}])
            ]
        ),
        Severity.ERROR,
        (*C, 0, "volumes", 1, "target"),
        "duplicate volume target",
    )


def test_networks_must_be_declared_or_builtin() -> None:
    only(
        check(containers=[web(networks=["back"])]),
        Severity.ERROR,
        (*C, 0, "networks", 0),
        "not declared",
    )
    for builtin in ("host", "bridge", "none", "default"):
        assert check(containers=[web(networks=[builtin])]) == []
    only(
        check(networks=[{"name": "back"}], containers=[web(networks=["host", "back"])]),
        Severity.ERROR,
        (*C, 0, "networks"),
        "cannot be combined",
    )
    only(
        check(networks=[{"name": "host"}]),
        Severity.ERROR,
        ("containers", "networks", 0, "name"),
        "reserved",
    )
    only(
        check(networks=[{"name": "n", "subnet": "10.0.0.0"}]),
        Severity.ERROR,
        ("containers", "networks", 0, "subnet"),
        "CIDR",
    )
    only(
        check(networks=[{"name": "n", "subnet": "10.0.0.0/33"}]),
        Severity.ERROR,
        ("containers", "networks", 0, "subnet"),
        "CIDR",
    )


def test_host_ports_must_not_clash() -> None:
    found = check(
        containers=[
            web(ports=[{"host": 80, "container": 80}]),
            web(name="b", ports=[{"host": 80, "container": 8080}]),
        ]
    )
    diag = only(
        found, Severity.ERROR, (*C, 1, "ports", 0, "host"), "host port 80/tcp is already published"
    )
    assert "containers.containers[0].ports[0]" in diag.message
    # All addresses (no hostIp) clash with a specific one; two specific ones do not.
    found = check(
        containers=[
            web(
                ports=[
                    {"host": 53, "container": 53, "protocol": "udp"},
                    {"host": 53, "container": 53, "protocol": "udp", "hostIp": "10.0.0.1"},
                ]
            )
        ]
    )
    only(found, Severity.ERROR, (*C, 0, "ports", 1, "host"), "53/udp")
    assert (
        check(
            containers=[
                web(
                    ports=[
                        {"host": 53, "container": 53, "hostIp": "10.0.0.1"},
                        {"host": 53, "container": 53, "hostIp": "10.0.0.2"},
                        {"container": 9000},
                        {"container": 9000},
                    ]
                )
            ]
        )
        == []
    )
    only(
        check(containers=[web(ports=[{"host": 1, "container": 1, "hostIp": "localhost"}])]),
        Severity.ERROR,
        (*C, 0, "ports", 0, "hostIp"),
        "not an IP",
    )


def test_environment_names() -> None:
    only(
        check(containers=[web(env={"A=B": "x"})]),
        Severity.ERROR,
        (*C, 0, "env", "A=B"),
        "invalid environment variable name",
    )
    only(
        check(containers=[web(env={"A B": "x"})]), Severity.ERROR, (*C, 0, "env", "A B"), "invalid"
    )
    only(check(containers=[web(env={"": "x"})]), Severity.ERROR, (*C, 0, "env", ""), "invalid")
    diag = only(
        check(containers=[web(env={"TOKEN": "s3cr3t\0"})]),
        Severity.ERROR,
        (*C, 0, "env", "TOKEN"),
        "NUL",
    )
    assert "s3cr3t" not in diag.message


def test_registries() -> None:
    creds = [
        {"registry": "ghcr.io", "username": "a", "password": "pw-one"},
        {"registry": "ghcr.io", "username": "b", "password": "pw-two"},
    ]
    diag = only(
        check(registries={"credentials": creds}),
        Severity.ERROR,
        ("containers", "registries", "credentials", 1, "registry"),
        "duplicate registry",
    )
    assert "pw-" not in diag.message
    mirrors = [{"registry": "docker.io", "endpoints": ["mirror.example"]}]
    only(
        check(registries={"mirrors": mirrors}),
        Severity.ERROR,
        ("containers", "registries", "mirrors", 0, "endpoints", 0),
        "http or https URL",
    )
    mirrors = [
        {"registry": "docker.io", "endpoints": ["https://m"]},
        {"registry": "docker.io", "endpoints": ["https://n"]},
    ]
    only(
        check(registries={"mirrors": mirrors}),
        Severity.ERROR,
        ("containers", "registries", "mirrors", 1, "registry"),
        "duplicate mirrored registry",
    )
    only(
        check(registries={"insecure": ["http://r:5000"]}),
        Severity.ERROR,
        ("containers", "registries", "insecure", 0),
        "not a URL",
    )


def test_data_root_must_be_absolute() -> None:
    only(
        check(settings={"dataRoot": "var/lib/docker"}),
        Severity.ERROR,
        ("containers", "settings", "dataRoot"),
        "not absolute",
    )


def test_a_container_unit_defined_again_by_hand_clashes() -> None:
    from provision.containers.units import unit_name

    assert (
        unit_name(
            build_config(
                {"provision": {"version": "1.0.0"}, "containers": {"containers": [web()]}}
            ).containers.containers[0]
        )
        == "provision-web.service"
    )
    config = {
        "provision": {"version": "1.0.0"},
        "containers": {"runtime": "docker", "containers": [web()]},
        "systemd": {
            "units": [
                {"name": "provision-web.service", "contents": "[Service]\nExecStart=/bin/true\n"}
            ]
        },
    }
    only(
        run_checks(build_config(config)),
        Severity.ERROR,
        (*C, 0, "name"),
        "systemd.units[0] also defines",
    )
    # Enabling or adding a drop-in to the generated unit is fine.
    config["systemd"] = {
        "units": [
            {
                "name": "provision-web.service",
                "dropins": [{"name": "x.conf", "contents": "[Service]\nNice=5\n"}],
            }
        ]
    }
    assert run_checks(build_config(config)) == []
    config["systemd"] = {}
    config["storage"] = {"files": [{"path": "/etc/systemd/system/provision-web.service"}]}
    only(run_checks(build_config(config)), Severity.ERROR, (*C, 0, "name"), "storage also writes")
