"""docker: /etc/docker/daemon.json, credentials and ``docker run`` units.

daemon.json keys: ``registry-mirrors`` (docker only mirrors Docker Hub: its
daemon consults mirrors for docker.io images and for nothing else, so a
mirror for any other registry is refused rather than silently ignored),
``insecure-registries``, ``log-driver``, ``log-opts``, ``storage-driver``,
``data-root`` and ``exec-opts`` (``native.cgroupdriver=``). Lists are unioned
with what the image ships, ``log-opts`` merged key by key.

Credentials go to /root/.docker/config.json; units set DOCKER_CONFIG so the
CLI finds them whatever HOME a system service has.
"""

from __future__ import annotations

from typing import Any

from provision.config.model import Containers
from provision.containers.auth import auth_file
from provision.containers.files import FileWrite, RuntimeFiles
from provision.containers.merge import json_text, read_json, union
from provision.containers.units import (
    add_service,
    find_binary,
    service_unit,
)
from provision.errors import ProvisionError
from provision.target.tree import TargetTree

DAEMON_JSON = "/etc/docker/daemon.json"
DOCKER_CONFIG_DIR = "/root/.docker"
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
RUNTIME_UNIT = "docker.service"


def daemon_settings(existing: dict[str, Any], section: Containers) -> dict[str, Any]:
    out = dict(existing)
    mirrors: list[str] = []
    for mirror in section.registries.mirrors:
        if mirror.registry not in DOCKER_HUB:
            raise ProvisionError(
                f"docker can only mirror docker.io (registry-mirrors); a mirror for "
                f"{mirror.registry} needs containerd or podman"
            )
        mirrors += list(mirror.endpoints)
    if mirrors:
        out["registry-mirrors"] = union(existing.get("registry-mirrors"), mirrors)
    if section.registries.insecure:
        out["insecure-registries"] = union(existing.get("insecure-registries"), list(section.registries.insecure))
    settings = section.settings
    if settings.log_driver is not None:
        out["log-driver"] = settings.log_driver
    if settings.log_options:
        opts = existing.get("log-opts") if isinstance(existing.get("log-opts"), dict) else {}
        out["log-opts"] = {**(opts or {}), **settings.log_options}
    if settings.storage_driver is not None:
        out["storage-driver"] = settings.storage_driver
    if settings.data_root is not None:
        out["data-root"] = settings.data_root
    if settings.cgroup_driver is not None:
        old = existing.get("exec-opts") if isinstance(existing.get("exec-opts"), list) else []
        kept = [o for o in old or [] if not str(o).replace(" ", "").startswith("native.cgroupdriver=")]
        out["exec-opts"] = [*kept, f"native.cgroupdriver={settings.cgroup_driver}"]
    return out


def _network_pre(binary: str, section: Containers, names: tuple[str, ...]) -> list[list[str]]:
    """Create the declared networks a container joins, if missing (network create is not idempotent)."""
    pre = []
    for network in section.networks:
        if network.name not in names:
            continue
        create = [binary, "network", "create"]
        if network.driver:
            create += ["--driver", network.driver]
        if network.subnet:
            create += ["--subnet", network.subnet]
        create.append(network.name)
        script = f"{binary} network inspect {network.name} >/dev/null 2>&1 || exec {' '.join(create)}"
        pre.append(["/bin/sh", "-c", script])
    return pre


def _volume_pre(binary: str, section: Containers, sources: set[str]) -> list[list[str]]:
    """``volume create`` is idempotent; needed for a driver other than local."""
    return [
        [binary, "volume", "create", "--driver", v.driver, v.name]
        for v in section.volumes
        if v.name in sources and v.driver and v.driver != "local"
    ]


def docker_files(tree: TargetTree, section: Containers, preload: bool) -> RuntimeFiles:
    files = RuntimeFiles()
    existing = read_json(tree, DAEMON_JSON)
    merged = daemon_settings(existing, section)
    if merged != existing:
        files.writes.append(FileWrite(DAEMON_JSON, json_text(merged), what="docker daemon settings"))
    if section.registries.credentials:
        files.directories.append((DOCKER_CONFIG_DIR, 0o700))
        files.writes.append(auth_file(tree, f"{DOCKER_CONFIG_DIR}/config.json",
                                      section.registries.credentials, docker_cli=True))
    binary = find_binary(tree, "docker", "/usr/bin/docker")
    for container in section.containers:
        pre: list[list[str]] = []
        pre += _network_pre(binary, section, container.networks)
        pre += _volume_pre(binary, section, {v.source for v in container.volumes})
        env = {"DOCKER_CONFIG": DOCKER_CONFIG_DIR}
        text = service_unit(container, RUNTIME_UNIT, binary, [], pre, env, preload)
        add_service(files, container, text)
    return files

