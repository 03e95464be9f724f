"""The pieces the containers stage writes with: TOML emitter, systemd quoting, env files."""

from __future__ import annotations

import math
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.config.model import Container, Containers, NamedVolume, PortMapping, VolumeMount
from provision.containers import toml
from provision.containers.units import (
    check_references,
    command_line,
    env_file_text,
    port_arg,
    systemd_quote,
)
from provision.errors import ProvisionError

keys = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
scalars = (
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False)
)


def tables(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    values: st.SearchStrategy[Any] = scalars | st.lists(scalars, max_size=4)
    if depth > 0:
        values = values | tables(depth - 1) | st.lists(tables(depth - 1), min_size=1, max_size=3)
    return st.dictionaries(keys, values, max_size=5)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isinf(a) and a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(tables())
def test_toml_round_trips_through_tomllib(data: dict[str, Any]) -> None:
    assert _same(tomllib.loads(toml.dumps(data)), data)


def test_toml_layout_of_a_nested_config() -> None:
    text = toml.dumps({"version": 2, "plugins": {"io.containerd.grpc.v1.cri": {"registry": {"config_path": "/x"}}},
                       "registry": [{"prefix": "a", "mirror": [{"location": "m"}]}]})
    assert text == (
        'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/x"\n\n'
        '[[registry]]\nprefix = "a"\n\n[[registry.mirror]]\nlocation = "m"\n'
    )


@pytest.mark.parametrize(("arg", "quoted"), [
    ("plain", "plain"),
    ("two words", '"two words"'),
    ("", '""'),
    ("$HOME", "$$HOME"),
    ("100%", "100%%"),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("line\nbreak", '"line\\nbreak"'),
    (";", "\\;"),
])
def test_systemd_quote(arg: str, quoted: str) -> None:
    assert systemd_quote(arg) == quoted


def test_command_line_joins_quoted_words() -> None:
    assert command_line(["/bin/sh", "-c", "echo $x"]) == '/bin/sh -c "echo $$x"'


@pytest.mark.parametrize(("port", "arg"), [
    (PortMapping(container=80), "80/tcp"),
    (PortMapping(container=80, host=8080), "8080:80/tcp"),
    (PortMapping(container=53, protocol="udp", host_ip="127.0.0.1"), "127.0.0.1::53/udp"),
    (PortMapping(container=443, host=8443, host_ip="::1"), "[::1]:8443:443/tcp"),
])
def test_port_arguments(port: PortMapping, arg: str) -> None:
    assert port_arg(port) == arg


def test_env_file_and_its_refusals() -> None:
    assert env_file_text(Container("a", "x", env={"A": "1", "B": "two words"})) == b"A=1\nB=two words\n"
    for env in ({"A": "x\ny"}, {"A=B": "x"}, {"": "x"}, {"#A": "x"}, {"A B": "x"}):
        with pytest.raises(ProvisionError):
            env_file_text(Container("a", "x", env=env))


def test_declared_volumes_and_builtin_networks_pass() -> None:
    section = Containers(volumes=(NamedVolume("data"),), containers=(
        Container("a", "x", volumes=(VolumeMount("data", "/d"), VolumeMount("/abs", "/e")),
                  networks=("host",)),))
    check_references(section)
