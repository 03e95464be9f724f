"""Checks on the containers section: a runtime to run them, unique names,
volumes and networks that exist, ports that do not clash. Messages never
quote environment values. Registries and daemon settings: registries.py."""

from __future__ import annotations

from collections.abc import Iterator

from provision.config import model
from provision.config.checks._common import check_path, describe, duplicate_errors
from provision.diagnostics import ConfigPath, Diagnostic, error

# As the containers stage treats them (provision/containers/units.py).
BUILTIN_NETWORKS = ("host", "bridge", "none", "default")
_ANY_ADDRESS = ("", "0.0.0.0", "::")


def _has_content(c: model.Containers) -> bool:
    return bool(
        c.containers or c.volumes or c.networks or c.preload
        or c.registries.mirrors or c.registries.insecure or c.registries.credentials
        or c.settings != model.RuntimeSettings()
    )  # fmt: skip


def check_runtime(config: model.Config) -> Iterator[Diagnostic]:
    c = config.containers
    if c.runtime is None and _has_content(c):
        yield error(
            "the containers section is configured but no runtime is set",
            ("containers",),
            'set "runtime" to docker, containerd or podman',
        )


def check_names(config: model.Config) -> Iterator[Diagnostic]:
    c = config.containers
    named: tuple[tuple[str, str, list[str]], ...] = (
        ("container name", "containers", [x.name for x in c.containers]),
        ("volume name", "volumes", [x.name for x in c.volumes]),
        ("network name", "networks", [x.name for x in c.networks]),
    )
    for what, key, names in named:
        yield from duplicate_errors(
            ((name, ("containers", key, i, "name")) for i, name in enumerate(names)), what
        )


def container_unit(name: str) -> str:
    """The unit that runs a container (the stage's naming; a test keeps them equal)."""
    return f"provision-{name}.service"


def check_unit_clash(config: model.Config) -> Iterator[Diagnostic]:
    """A container's unit must not be configured a second time by hand."""
    units = {u.name: i for i, u in enumerate(config.systemd.units) if u.contents or u.mask}
    nodes = {f.path for f in config.storage.files} | {k.path for k in config.storage.links}
    for i, container in enumerate(config.containers.containers):
        unit = container_unit(container.name)
        if unit in units:
            yield error(
                f"the container runs as {unit}, which systemd.units[{units[unit]}] also defines",
                ("containers", "containers", i, "name"),
                "rename the container or the unit",
            )
        elif f"/etc/systemd/system/{unit}" in nodes:
            yield error(
                f"the container runs as {unit}, which storage also writes",
                ("containers", "containers", i, "name"),
            )


def check_volumes(config: model.Config) -> Iterator[Diagnostic]:
    declared = {v.name for v in config.containers.volumes}
    for i, container in enumerate(config.containers.containers):
        base: ConfigPath = ("containers", "containers", i, "volumes")
        for j, volume in enumerate(container.volumes):
            if volume.source.startswith("/"):
                yield from check_path(volume.source, (*base, j, "source"))
            elif volume.source not in declared:
                yield error(
                    "volume source is neither an absolute path nor a declared volume",
                    (*base, j, "source"),
                    "declare it under containers.volumes, or give an absolute host path",
                )
            yield from check_path(volume.target, (*base, j, "target"))
        yield from duplicate_errors(
            ((v.target, (*base, j, "target")) for j, v in enumerate(container.volumes)),
            "volume target",
        )


def check_networks(config: model.Config) -> Iterator[Diagnostic]:
    declared = {n.name for n in config.containers.networks}
    for i, network in enumerate(config.containers.networks):
        if network.name in BUILTIN_NETWORKS:
            yield error("network name is reserved", ("containers", "networks", i, "name"))
        if network.subnet is not None and _subnet_problem(network.subnet):
            yield error(
                "subnet is not in CIDR notation",
                ("containers", "networks", i, "subnet"),
                "e.g. 10.88.0.0/16",
            )
    for i, container in enumerate(config.containers.containers):
        base: ConfigPath = ("containers", "containers", i, "networks")
        for j, name in enumerate(container.networks):
            if name not in declared and name not in BUILTIN_NETWORKS:
                yield error(
                    "network is not declared under containers.networks and is not host, bridge, none or default",
                    (*base, j),
                )
        exclusive = [n for n in container.networks if n in ("host", "none")]
        if exclusive and len(container.networks) > 1:
            yield error(f"network {exclusive[0]} cannot be combined with other networks", base)
        yield from duplicate_errors(
            ((n, (*base, j)) for j, n in enumerate(container.networks)), "network"
        )


def _subnet_problem(subnet: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return True
    return "/" not in subnet


def check_ports(config: model.Config) -> Iterator[Diagnostic]:
    """Two published ports binding the same host port, protocol and address clash."""
    bound: list[tuple[int, str, str, ConfigPath]] = []
    for i, container in enumerate(config.containers.containers):
        for j, port in enumerate(container.ports):
            where: ConfigPath = ("containers", "containers", i, "ports", j)
            address = port.host_ip or ""
            if address and _address_problem(address):
                yield error("hostIp is not an IP address", (*where, "hostIp"))
            if port.host is None:
                continue
            for host, protocol, other_address, other in bound:
                same_address = address == other_address or {address, other_address} & set(
                    _ANY_ADDRESS
                )
                if host == port.host and protocol == port.protocol and same_address:
                    yield error(
                        f"host port {port.host}/{port.protocol} is already published by {describe(other)}",
                        (*where, "host"),
                    )
                    break
            bound.append((port.host, port.protocol, address, where))


def _address_problem(address: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(address)
    except ValueError:
        return True
    return False


def check_env(config: model.Config) -> Iterator[Diagnostic]:
    for i, container in enumerate(config.containers.containers):
        for name, value in container.env.items():
            where: ConfigPath = ("containers", "containers", i, "env", name)
            if not name or "=" in name or any(c.isspace() or ord(c) < 32 for c in name):
                yield error(
                    "invalid environment variable name",
                    where,
                    "no '=', blanks or control characters",
                )
            if "\0" in value:
                yield error("environment variable value contains NUL", where)


CHECKS = (
    check_runtime,
    check_names,
    check_unit_clash,
    check_volumes,
    check_networks,
    check_ports,
    check_env,
)
