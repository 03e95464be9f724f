"""containerd: config.toml, registry hosts files and ``nerdctl run`` units.

config.toml is merged (read with tomllib, written with our emitter); the
keys depend on its schema version — 2 (containerd 1.x, also read by 2.x) or 3
(containerd 2.x) — taken from the image's file, 2 when there is none:
``root`` (data root), the CRI plugin's ``registry.config_path``
(/etc/containerd/certs.d), ``SystemdCgroup`` of the runc runtime and the
snapshotter (storage driver). Mirrors and insecure registries are per-registry
``certs.d/<registry>/hosts.toml`` files, which containerd's CRI and nerdctl
both read.

Containers run through nerdctl, not ``ctr run``: ctr has no port publishing,
named volumes or networks. The image must ship nerdctl (and the CNI plugins
for ports and networks). nerdctl's own settings (cgroup manager,
snapshotter) go to /etc/nerdctl/nerdctl.toml, its credentials to the
docker-format /root/.docker/config.json. Log driver and options are nerdctl
run flags (containerd itself has no log driver).
"""

from __future__ import annotations

from typing import Any

from provision.config.model import Containers
from provision.containers import toml
from provision.containers.auth import auth_file
from provision.containers.files import FileWrite, RuntimeFiles
from provision.containers.merge import overlay, read_toml
from provision.containers.units import (
    add_service,
    find_binary,
    service_unit,
)
from provision.errors import ProvisionError
from provision.target.tree import TargetTree

CONFIG_TOML = "/etc/containerd/config.toml"
CERTS_DIR = "/etc/containerd/certs.d"
NERDCTL_TOML = "/etc/nerdctl/nerdctl.toml"
DOCKER_CONFIG_DIR = "/root/.docker"
RUNTIME_UNIT = "containerd.service"
# Docker's storage-driver names -> containerd snapshotters.
SNAPSHOTTERS = {"overlay2": "overlayfs", "overlay": "overlayfs", "overlayfs": "overlayfs",
                "btrfs": "btrfs", "zfs": "zfs", "native": "native", "vfs": "native",
                "devmapper": "devmapper"}
UPSTREAM = {"docker.io": "https://registry-1.docker.io"}


def _nested(*keys: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        out = {key: out}
    return out


def snapshotter(section: Containers) -> str | None:
    driver = section.settings.storage_driver
    if driver is None:
        return None
    if driver not in SNAPSHOTTERS:
        raise ProvisionError(f"containerd has no snapshotter for storage driver {driver!r}")
    return SNAPSHOTTERS[driver]


def config_settings(existing: dict[str, Any], section: Containers) -> dict[str, Any]:
    version = existing.get("version", 2)
    if version not in (2, 3):
        raise ProvisionError(f"{CONFIG_TOML}: config version {version} is not supported (2 or 3)")
    if version == 2:
        images = runtime = ("plugins", "io.containerd.grpc.v1.cri")
        snap_at: tuple[str, ...] = (*runtime, "containerd", "snapshotter")
    else:
        images = ("plugins", "io.containerd.cri.v1.images")
        runtime = ("plugins", "io.containerd.cri.v1.runtime")
        snap_at = (*images, "snapshotter")
    ours: dict[str, Any] = {"version": version}
    settings = section.settings
    if settings.data_root is not None:
        ours["root"] = settings.data_root
    if section.registries.mirrors or section.registries.insecure:
        ours = overlay(ours, _nested(*images, "registry", "config_path", value=CERTS_DIR))
    if settings.cgroup_driver is not None:
        runc = (*runtime, "containerd", "runtimes", "runc")
        ours = overlay(ours, _nested(*runc, "runtime_type", value="io.containerd.runc.v2"))
        ours = overlay(ours, _nested(*runc, "options", "SystemdCgroup",
                                     value=settings.cgroup_driver == "systemd"))
    snap = snapshotter(section)
    if snap is not None:
        ours = overlay(ours, _nested(*snap_at, value=snap))
    if list(ours) == ["version"]:
        return existing  # nothing to say: leave the image's file (or its absence) alone
    return overlay(existing, ours)


def _endpoint(url: str) -> str:
    return url if "://" in url else f"https://{url}"


def hosts_files(tree: TargetTree, section: Containers) -> list[FileWrite]:
    """certs.d/<registry>/hosts.toml: mirrors first, then the registry itself for insecure ones."""
    hosts: dict[str, dict[str, Any]] = {}
    for mirror in section.registries.mirrors:
        entry = hosts.setdefault(mirror.registry, {})
        for url in mirror.endpoints:
            entry[_endpoint(url)] = {"capabilities": ["pull", "resolve"]}
    for registry in section.registries.insecure:
        entry = hosts.setdefault(registry, {})
        entry[f"https://{registry}"] = {"capabilities": ["pull", "resolve", "push"], "skip_verify": True}
        entry[f"http://{registry}"] = {"capabilities": ["pull", "resolve", "push"]}
    writes = []
    for registry, entries in hosts.items():
        path = f"{CERTS_DIR}/{registry}/hosts.toml"
        existing = read_toml(tree, path)
        server = existing.get("server") or UPSTREAM.get(registry, f"https://{registry}")
        merged = overlay(existing, {"server": server, "host": entries})
        # containerd tries hosts in file order: keep ours (mirrors) ahead of the image's.
        others = {k: v for k, v in (existing.get("host") or {}).items() if k not in entries}
        merged["host"] = {**{k: merged["host"][k] for k in entries}, **others}
        writes.append(FileWrite(path, toml.dumps(merged).encode(), what=f"{registry} registry hosts"))
    return writes


def nerdctl_settings(existing: dict[str, Any], section: Containers) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    if section.settings.cgroup_driver is not None:
        ours["cgroup_manager"] = section.settings.cgroup_driver
    snap = snapshotter(section)
    if snap is not None:
        ours["snapshotter"] = snap
    return overlay(existing, ours)


def _toml_write(tree: TargetTree, path: str, merged: dict[str, Any], existing: dict[str, Any], what: str) -> list[FileWrite]:
    if merged == existing:
        return []
    return [FileWrite(path, toml.dumps(merged).encode(), what=what)]


def _network_pre(binary: str, section: Containers, names: tuple[str, ...]) -> list[list[str]]:
    pre = []
    for network in section.networks:
        if network.name in names:
            create = [binary, "network", "create"]
            create += ["--driver", network.driver] if network.driver else []
            create += ["--subnet", network.subnet] if network.subnet else []
            script = (f"{binary} network inspect {network.name} >/dev/null 2>&1 || "
                      f"exec {' '.join([*create, network.name])}")
            pre.append(["/bin/sh", "-c", script])
    return pre


def containerd_files(tree: TargetTree, section: Containers, preload: bool) -> RuntimeFiles:
    files = RuntimeFiles()
    for volume in section.volumes:
        if volume.driver not in (None, "local"):
            raise ProvisionError(f"volume {volume.name}: nerdctl supports only the local volume driver")
    existing = read_toml(tree, CONFIG_TOML)
    files.writes += _toml_write(tree, CONFIG_TOML, config_settings(existing, section), existing,
                                "containerd settings")
    files.writes += hosts_files(tree, section)
    nerdctl_existing = read_toml(tree, NERDCTL_TOML)
    nerdctl = nerdctl_settings(nerdctl_existing, section)
    if nerdctl:
        files.writes += _toml_write(tree, NERDCTL_TOML, nerdctl, nerdctl_existing, "nerdctl settings")
    if section.registries.credentials:
        files.directories.append((DOCKER_CONFIG_DIR, 0o700))
        files.writes.append(auth_file(tree, f"{DOCKER_CONFIG_DIR}/config.json",
                                      section.registries.credentials, docker_cli=True))
    binary = find_binary(tree, "nerdctl", "/usr/local/bin/nerdctl")
    log_args: list[str] = []
    if section.settings.log_driver is not None:
        log_args += ["--log-driver", section.settings.log_driver]
    for key, value in section.settings.log_options.items():
        log_args += ["--log-opt", f"{key}={value}"]
    for container in section.containers:
        pre = _network_pre(binary, section, container.networks)
        env = {"DOCKER_CONFIG": DOCKER_CONFIG_DIR}
        text = service_unit(container, RUNTIME_UNIT, binary, log_args, pre, env, preload)
        add_service(files, container, text)
    return files
