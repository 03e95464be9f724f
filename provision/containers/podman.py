"""podman: containers.conf, registries.conf (v2), storage.conf, auth.json and quadlets.

- /etc/containers/containers.conf: ``[engine] cgroup_manager``,
  ``[containers] log_driver``, and of the log options ``max-size`` (as
  ``log_size_max``, bytes) and ``tag`` (``log_tag``) — podman has no others.
- /etc/containers/registries.conf in the v2 format: one ``[[registry]]`` per
  prefix, mirrors as ``[[registry.mirror]]`` (location without scheme; an
  ``http://`` mirror is marked insecure), ``insecure = true`` for insecure
  registries. Entries the image has for other prefixes are kept. A v1 file
  (``[registries.search]``...) is refused: the two formats cannot be mixed.
- /etc/containers/storage.conf: ``[storage] driver`` and ``graphroot``
  (``runroot`` added when the file is new, as the format requires).
- /etc/containers/auth.json (0600); quadlets set REGISTRY_AUTH_FILE to it.
- Containers are quadlets (podman >= 4.4): /etc/containers/systemd/
  provision-<name>.container, plus .volume/.network quadlets for the declared
  volumes and networks a container uses, so podman creates them in order. The
  quadlet generator turns them into units at boot and honours [Install]; no
  links are made for them. A disabled container's quadlet has no [Install].
"""

from __future__ import annotations

import json
import re
from typing import Any

from provision.config.model import Container, Containers
from provision.containers import toml
from provision.containers.auth import auth_file
from provision.containers.files import FileWrite, RuntimeFiles
from provision.containers.merge import overlay, read_toml
from provision.containers.units import (
    BUILTIN_NETWORKS,
    ENV_DIR,
    PRELOAD_UNIT,
    RESTART,
    command_line,
    env_file_path,
    env_file_text,
    port_arg,
)
from provision.errors import ProvisionError
from provision.target.tree import TargetTree

CONTAINERS_CONF = "/etc/containers/containers.conf"
REGISTRIES_CONF = "/etc/containers/registries.conf"
STORAGE_CONF = "/etc/containers/storage.conf"
AUTH_JSON = "/etc/containers/auth.json"
QUADLET_DIR = "/etc/containers/systemd"
_SIZE = re.compile(r"^(\d+)([kmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def quadlet_stem(name: str) -> str:
    return f"provision-{name}"


def _size(value: str) -> int:
    match = _SIZE.match(value.strip())
    if not match:
        raise ProvisionError(f"log option max-size={value!r}: expected a size like 10m")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def containers_settings(existing: dict[str, Any], section: Containers) -> dict[str, Any]:
    settings = section.settings
    ours: dict[str, Any] = {}
    if settings.cgroup_driver is not None:
        ours["engine"] = {"cgroup_manager": settings.cgroup_driver}
    containers: dict[str, Any] = {}
    if settings.log_driver is not None:
        containers["log_driver"] = settings.log_driver
    for key, value in settings.log_options.items():
        if key == "max-size":
            containers["log_size_max"] = _size(value)
        elif key == "tag":
            containers["log_tag"] = value
        else:
            raise ProvisionError(f"podman has no log option {key!r} (max-size and tag are supported)")
    if containers:
        ours["containers"] = containers
    return overlay(existing, ours)


def _location(url: str) -> tuple[str, bool]:
    """A mirror URL as a registries.conf location, and whether it is plain HTTP."""
    if url.startswith("http://"):
        return url[len("http://"):].rstrip("/"), True
    return url.removeprefix("https://").rstrip("/"), False


def registries_settings(existing: dict[str, Any], section: Containers) -> dict[str, Any]:
    if "registries" in existing:
        raise ProvisionError(
            f"{REGISTRIES_CONF} uses the v1 format ([registries.*]); provision writes v2 "
            "([[registry]]) and the two cannot be mixed — convert the image's file"
        )
    entries: list[dict[str, Any]] = [dict(e) for e in existing.get("registry") or []]

    def entry_for(prefix: str) -> dict[str, Any]:
        for entry in entries:
            if entry.get("prefix", entry.get("location")) == prefix:
                return entry
        entry = {"prefix": prefix, "location": prefix}
        entries.append(entry)
        return entry

    for mirror in section.registries.mirrors:
        entry = entry_for(mirror.registry)
        mirrors = [dict(m) for m in entry.get("mirror") or []]
        for url in mirror.endpoints:
            location, insecure = _location(url)
            mirrors = [m for m in mirrors if m.get("location") != location]
            mirrors.append({"location": location, "insecure": insecure})
        # Ours first: mirrors are tried in order.
        ours = [m for m in mirrors if m["location"] in {_location(u)[0] for u in mirror.endpoints}]
        entry["mirror"] = ours + [m for m in mirrors if m not in ours]
    for registry in section.registries.insecure:
        entry_for(registry)["insecure"] = True
    if not entries:
        return existing
    out = dict(existing)
    out["registry"] = entries
    return out


def storage_settings(existing: dict[str, Any], section: Containers) -> dict[str, Any]:
    settings = section.settings
    ours: dict[str, Any] = {}
    if settings.storage_driver is not None:
        ours["driver"] = "overlay" if settings.storage_driver == "overlay2" else settings.storage_driver
    if settings.data_root is not None:
        ours["graphroot"] = settings.data_root
    if not ours:
        return existing
    if "storage" not in existing:
        ours.setdefault("driver", "overlay")
        ours["runroot"] = "/run/containers/storage"
        ours.setdefault("graphroot", "/var/lib/containers/storage")
    return overlay(existing, {"storage": ours})


def _entrypoint_arg(container: Container) -> list[str]:
    if not container.entrypoint:
        return []
    value = container.entrypoint[0] if len(container.entrypoint) == 1 else json.dumps(list(container.entrypoint))
    return [f"--entrypoint={value}"]


def container_quadlet(container: Container, section: Containers, preload: bool, auth: bool) -> str:
    declared_volumes = {v.name for v in section.volumes}
    declared_networks = {n.name for n in section.networks}
    after = ["network-online.target"] + ([PRELOAD_UNIT] if preload else [])
    lines = [
        "# Written by provision: runs container " + container.name,
        "[Unit]",
        f"Description=Container {container.name} ({container.image})",
        f"Wants={' '.join(after)}",
        f"After={' '.join(after)}",
        "",
        "[Container]",
        f"ContainerName={container.name}",
        f"Image={container.image}",
    ]
    if container.env:
        lines.append(f"EnvironmentFile={env_file_path(container)}")
    lines += [f"PublishPort={port_arg(p)}" for p in container.ports]
    for volume in container.volumes:
        source = volume.source
        if source in declared_volumes:
            source = f"{quadlet_stem(source)}.volume"
        lines.append(f"Volume={source}:{volume.target}" + (":ro" if volume.read_only else ""))
    for network in container.networks:
        if network in declared_networks and network not in BUILTIN_NETWORKS:
            lines.append(f"Network={quadlet_stem(network)}.network")
        else:
            lines.append(f"Network={network}")
    if container.user:
        lines.append(f"User={container.user}")
    extra = _entrypoint_arg(container)
    if extra:
        lines.append(f"PodmanArgs={command_line(extra)}")
    if container.command:
        lines.append(f"Exec={command_line(container.command)}")
    lines += ["", "[Service]"]
    if auth:
        lines.append(f"Environment=REGISTRY_AUTH_FILE={AUTH_JSON}")
    lines += [f"Restart={RESTART[container.restart]}", "TimeoutStartSec=infinity", ""]
    if container.enabled:
        # The quadlet generator turns this into a wants link; without it the
        # unit exists (systemctl start works) but does not start at boot.
        lines += ["[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def volume_quadlet(name: str, driver: str | None) -> str:
    lines = ["# Written by provision", "[Volume]", f"VolumeName={name}"]
    if driver:
        lines.append(f"Driver={driver}")
    return "\n".join(lines) + "\n"


def network_quadlet(name: str, driver: str | None, subnet: str | None) -> str:
    lines = ["# Written by provision", "[Network]", f"NetworkName={name}"]
    if driver:
        lines.append(f"Driver={driver}")
    if subnet:
        lines.append(f"Subnet={subnet}")
    return "\n".join(lines) + "\n"


def _toml_write(tree: TargetTree, path: str, existing: dict[str, Any], merged: dict[str, Any], what: str) -> list[FileWrite]:
    return [] if merged == existing else [FileWrite(path, toml.dumps(merged).encode(), what=what)]


def podman_files(tree: TargetTree, section: Containers, preload: bool) -> RuntimeFiles:
    files = RuntimeFiles()
    for path, merge, what in (
        (CONTAINERS_CONF, containers_settings, "podman settings"),
        (REGISTRIES_CONF, registries_settings, "podman registries"),
        (STORAGE_CONF, storage_settings, "podman storage"),
    ):
        existing = read_toml(tree, path)
        files.writes += _toml_write(tree, path, existing, merge(existing, section), what)
    auth = bool(section.registries.credentials)
    if auth:
        files.writes.append(auth_file(tree, AUTH_JSON, section.registries.credentials, docker_cli=False))
    used_volumes: set[str] = set()
    used_networks: set[str] = set()
    for container in section.containers:
        if container.env:
            files.directories.append((ENV_DIR, 0o700))
            files.writes.append(FileWrite(env_file_path(container), env_file_text(container),
                                          mode=0o600, secret=True, what="container environment"))
        used_volumes |= {v.source for v in container.volumes}
        used_networks |= set(container.networks)
        text = container_quadlet(container, section, preload, auth)
        files.writes.append(FileWrite(f"{QUADLET_DIR}/{quadlet_stem(container.name)}.container",
                                      text.encode(), what="container quadlet"))
    for volume in section.volumes:
        if volume.name in used_volumes:
            files.writes.append(FileWrite(f"{QUADLET_DIR}/{quadlet_stem(volume.name)}.volume",
                                          volume_quadlet(volume.name, volume.driver).encode(),
                                          what="volume quadlet"))
    for network in section.networks:
        if network.name in used_networks and network.name not in BUILTIN_NETWORKS:
            files.writes.append(FileWrite(f"{QUADLET_DIR}/{quadlet_stem(network.name)}.network",
                                          network_quadlet(network.name, network.driver, network.subnet).encode(),
                                          what="network quadlet"))
    return files

