"""The newest config model (spec 1.0.0) as typed, immutable dataclasses.

Stages only ever see these. Field names are the spec's camelCase names in
snake_case; ``None`` means "not set" (the stage applies the documented
default). Build one from a validated dict with :func:`provision.config.build.build_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HTTPHeader:
    name: str
    value: str = ""


@dataclass(frozen=True)
class Verification:
    hash: str | None = None


@dataclass(frozen=True)
class Resource:
    source: str | None = None
    compression: str | None = None
    http_headers: tuple[HTTPHeader, ...] = ()
    verification: Verification = field(default_factory=Verification)


@dataclass(frozen=True)
class NodeOwner:
    id: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class File:
    path: str
    overwrite: bool | None = None
    user: NodeOwner = field(default_factory=NodeOwner)
    group: NodeOwner = field(default_factory=NodeOwner)
    contents: Resource | None = None
    append: tuple[Resource, ...] = ()
    mode: int | None = None


@dataclass(frozen=True)
class Directory:
    path: str
    overwrite: bool | None = None
    user: NodeOwner = field(default_factory=NodeOwner)
    group: NodeOwner = field(default_factory=NodeOwner)
    mode: int | None = None


@dataclass(frozen=True)
class Link:
    path: str
    target: str
    overwrite: bool | None = None
    user: NodeOwner = field(default_factory=NodeOwner)
    group: NodeOwner = field(default_factory=NodeOwner)
    hard: bool | None = None


@dataclass(frozen=True)
class Partition:
    label: str | None = None
    number: int = 0
    size_mib: int | None = None
    start_mib: int | None = None
    type_guid: str | None = None
    guid: str | None = None
    wipe_partition_entry: bool = False
    should_exist: bool = True
    resize: bool = False


@dataclass(frozen=True)
class Disk:
    device: str
    wipe_table: bool = False
    partitions: tuple[Partition, ...] = ()


@dataclass(frozen=True)
class Raid:
    name: str
    level: str
    devices: tuple[str, ...] = ()
    spares: int = 0
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Luks:
    name: str
    device: str
    key_file: Resource | None = None
    label: str | None = None
    uuid: str | None = None
    options: tuple[str, ...] = ()
    discard: bool = False
    open_options: tuple[str, ...] = ()
    wipe_volume: bool = False
    # Not supported yet: kept so validation can refuse them instead of dropping them.
    clevis: dict[str, Any] | None = None
    cex: dict[str, Any] | None = None


@dataclass(frozen=True)
class Subvolume:
    name: str
    path: str | None = None
    mount_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filesystem:
    device: str
    format: str | None = None
    path: str | None = None
    wipe_filesystem: bool = False
    label: str | None = None
    uuid: str | None = None
    options: tuple[str, ...] = ()
    mount_options: tuple[str, ...] = ()
    subvolumes: tuple[Subvolume, ...] = ()


@dataclass(frozen=True)
class Storage:
    disks: tuple[Disk, ...] = ()
    raid: tuple[Raid, ...] = ()
    luks: tuple[Luks, ...] = ()
    filesystems: tuple[Filesystem, ...] = ()
    files: tuple[File, ...] = ()
    directories: tuple[Directory, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Dropin:
    name: str
    contents: str | None = None


@dataclass(frozen=True)
class Unit:
    name: str
    enabled: bool | None = None
    mask: bool | None = None
    contents: str | None = None
    dropins: tuple[Dropin, ...] = ()


@dataclass(frozen=True)
class Systemd:
    units: tuple[Unit, ...] = ()


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str | None = None
    ssh_authorized_keys: tuple[str, ...] = ()
    uid: int | None = None
    gecos: str | None = None
    home_dir: str | None = None
    no_create_home: bool = False
    primary_group: str | None = None
    groups: tuple[str, ...] = ()
    no_user_group: bool = False
    no_log_init: bool = False
    shell: str | None = None
    system: bool = False
    should_exist: bool = True


@dataclass(frozen=True)
class Group:
    name: str
    gid: int | None = None
    password_hash: str | None = None
    system: bool = False
    should_exist: bool = True


@dataclass(frozen=True)
class Passwd:
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()


@dataclass(frozen=True)
class KernelArguments:
    should_exist: tuple[str, ...] = ()
    should_not_exist: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortMapping:
    container: int
    host: int | None = None
    protocol: str = "tcp"
    host_ip: str | None = None


@dataclass(frozen=True)
class VolumeMount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortMapping, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    networks: tuple[str, ...] = ()
    restart: str = "always"
    user: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class RuntimeSettings:
    log_driver: str | None = None
    log_options: dict[str, str] = field(default_factory=dict)
    storage_driver: str | None = None
    data_root: str | None = None
    cgroup_driver: str | None = None


@dataclass(frozen=True)
class RegistryMirror:
    registry: str
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistryCredential:
    registry: str
    username: str
    password: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"RegistryCredential(registry={self.registry!r}, username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True)
class Registries:
    mirrors: tuple[RegistryMirror, ...] = ()
    insecure: tuple[str, ...] = ()
    credentials: tuple[RegistryCredential, ...] = ()


@dataclass(frozen=True)
class NamedVolume:
    name: str
    driver: str | None = None


@dataclass(frozen=True)
class Network:
    name: str
    driver: str | None = None
    subnet: str | None = None


@dataclass(frozen=True)
class Containers:
    runtime: str | None = None
    settings: RuntimeSettings = field(default_factory=RuntimeSettings)
    registries: Registries = field(default_factory=Registries)
    volumes: tuple[NamedVolume, ...] = ()
    networks: tuple[Network, ...] = ()
    containers: tuple[Container, ...] = ()
    preload: tuple[Resource, ...] = ()


@dataclass(frozen=True)
class ConfigReferences:
    merge: tuple[Resource, ...] = ()
    replace: Resource | None = None


@dataclass(frozen=True)
class Timeouts:
    http_response_headers: int | None = None
    http_total: int | None = None


@dataclass(frozen=True)
class TLS:
    certificate_authorities: tuple[Resource, ...] = ()


@dataclass(frozen=True)
class Security:
    tls: TLS = field(default_factory=TLS)


@dataclass(frozen=True)
class Proxy:
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()


@dataclass(frozen=True)
class Meta:
    version: str
    config: ConfigReferences = field(default_factory=ConfigReferences)
    timeouts: Timeouts = field(default_factory=Timeouts)
    security: Security = field(default_factory=Security)
    proxy: Proxy = field(default_factory=Proxy)


@dataclass(frozen=True)
class Config:
    """A whole config in the newest model."""

    provision: Meta
    storage: Storage = field(default_factory=Storage)
    systemd: Systemd = field(default_factory=Systemd)
    passwd: Passwd = field(default_factory=Passwd)
    kernel_arguments: KernelArguments = field(default_factory=KernelArguments)
    containers: Containers = field(default_factory=Containers)
