"""The newest config model (spec 1.1.0) as typed, immutable value classes.

Stages only ever see these. Field names are the spec's camelCase names in
snake_case; ``None`` means "not set" (the stage applies the documented
default). Build one from a validated dict with :func:`provision.config.build.build_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

# Not stdlib dataclasses (and named apart from them, model_class, model_field,
# model_fields, copy_with, FrozenModelError, so nobody mistakes one for the other): the model is imported on every boot, and dataclasses
# (plus the inspect module it imports) and the __init__ it execs per class
# cost more start-up time than validating a large config.


class _Missing:
    """The default of a field that has none (it is required)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenModelError(AttributeError):
    """A model field was assigned or deleted after construction."""


class Field:
    """One model field: its name, annotation (a string, unevaluated) and default."""

    __slots__ = ("annotation", "default", "default_factory", "name")

    def __init__(self, default: Any = MISSING, default_factory: Callable[[], Any] | None = None) -> None:
        self.name = ""
        self.annotation = ""
        self.default = default
        self.default_factory = default_factory


def model_field(*, default: Any = MISSING, default_factory: Callable[[], Any] | None = None) -> Any:
    """Declare a field's default (the type checker reads it as it reads ``dataclasses.field``)."""
    return Field(default, default_factory)


class _Model:
    """Construction and value semantics shared by every model class."""

    __fields__: tuple[Field, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.__fields__
        if len(args) > len(fields):
            raise TypeError(f"{self.__class__.__name__}() takes {len(fields)} positional arguments "
                            f"but {len(args)} were given")
        names = [f.name for f in fields]
        values = dict(zip(names[:len(args)], args, strict=True))
        if twice := values.keys() & kwargs.keys():
            raise TypeError(f"{self.__class__.__name__}() got multiple values for {sorted(twice)}")
        if unknown := kwargs.keys() - set(names):
            raise TypeError(f"{self.__class__.__name__}() got unexpected keyword arguments {sorted(unknown)}")
        values.update(kwargs)
        for f in fields[len(args):]:
            if f.name in values:
                continue
            if f.default is not MISSING:
                values[f.name] = f.default
            elif f.default_factory is not None:
                values[f.name] = f.default_factory()
            else:
                raise TypeError(f"{self.__class__.__name__}() missing required argument {f.name!r}")
        # Bypass the write-once __setattr__: this is the one place fields are set.
        self.__dict__.update(values)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in self.__fields__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined, no-any-return]

    def __hash__(self) -> int:
        return hash((self.__class__, *(
            tuple(sorted(v.items())) if isinstance(v, dict) else v for v in self._values()
        )))

    def __setattr__(self, name: str, value: Any) -> None:
        # Write-once: __init__ sets each field, nothing may change it after.
        if name in self.__dict__:
            raise FrozenModelError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenModelError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__fields__)
        return f"{self.__class__.__name__}({shown})"


T = TypeVar("T")
M = TypeVar("M", bound=_Model)


@dataclass_transform(frozen_default=True, field_specifiers=(model_field,))
def model_class(cls: type[T]) -> type[T]:
    """Record the field table of a model class (a _Model subclass) in declaration order."""
    fields = []
    # Not inspect.get_annotations: importing inspect costs start-up time.
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        declared = cls.__dict__.get(name, MISSING)
        f = declared if isinstance(declared, Field) else Field(declared)
        f.name, f.annotation = name, annotation
        if isinstance(declared, Field):
            delattr(cls, name)  # like dataclasses: no class attribute for field() specifiers
        fields.append(f)
    cls.__fields__ = tuple(fields)  # type: ignore[attr-defined]
    return cls


def model_fields(obj: _Model | type[_Model]) -> tuple[Field, ...]:
    """The field table of a model class or instance, in declaration order."""
    return obj.__fields__


def is_model_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, _Model)


def copy_with(obj: M, **changes: Any) -> M:
    """A copy of ``obj`` with some fields changed (what ``dataclasses.replace`` does for dataclasses)."""
    return obj.__class__(**{**{f.name: getattr(obj, f.name) for f in obj.__fields__}, **changes})


@model_class
class HTTPHeader(_Model):
    name: str
    value: str = ""


@model_class
class Verification(_Model):
    hash: str | None = None


@model_class
class Resource(_Model):
    source: str | None = None
    compression: str | None = None
    http_headers: tuple[HTTPHeader, ...] = ()
    verification: Verification = model_field(default_factory=Verification)


@model_class
class NodeOwner(_Model):
    id: int | None = None
    name: str | None = None


@model_class
class File(_Model):
    path: str
    overwrite: bool | None = None
    user: NodeOwner = model_field(default_factory=NodeOwner)
    group: NodeOwner = model_field(default_factory=NodeOwner)
    contents: Resource | None = None
    append: tuple[Resource, ...] = ()
    mode: int | None = None


@model_class
class Directory(_Model):
    path: str
    overwrite: bool | None = None
    user: NodeOwner = model_field(default_factory=NodeOwner)
    group: NodeOwner = model_field(default_factory=NodeOwner)
    mode: int | None = None


@model_class
class Link(_Model):
    path: str
    target: str
    overwrite: bool | None = None
    user: NodeOwner = model_field(default_factory=NodeOwner)
    group: NodeOwner = model_field(default_factory=NodeOwner)
    hard: bool | None = None


@model_class
class Partition(_Model):
    label: str | None = None
    number: int = 0
    size_mib: int | None = None
    start_mib: int | None = None
    type_guid: str | None = None
    guid: str | None = None
    wipe_partition_entry: bool = False
    should_exist: bool = True
    resize: bool = False


@model_class
class Disk(_Model):
    device: str
    wipe_table: bool = False
    partitions: tuple[Partition, ...] = ()


@model_class
class Raid(_Model):
    name: str
    level: str
    devices: tuple[str, ...] = ()
    spares: int = 0
    options: tuple[str, ...] = ()


@model_class
class Luks(_Model):
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
    # spec 1.1.0: enrolled with systemd-cryptenroll (provision.disks.cryptenroll).
    systemd_tpm2: dict[str, Any] | None = None


@model_class
class Subvolume(_Model):
    name: str
    path: str | None = None
    mount_options: tuple[str, ...] = ()


@model_class
class Filesystem(_Model):
    device: str
    format: str | None = None
    path: str | None = None
    wipe_filesystem: bool = False
    label: str | None = None
    uuid: str | None = None
    options: tuple[str, ...] = ()
    mount_options: tuple[str, ...] = ()
    subvolumes: tuple[Subvolume, ...] = ()


@model_class
class Grow(_Model):
    """Partitions (and what they hold) grown to fill their disks (spec 1.1.0)."""

    devices: tuple[str, ...] | None = None  # None: the image decides
    resize_filesystems: bool | None = None


@model_class
class Storage(_Model):
    disks: tuple[Disk, ...] = ()
    raid: tuple[Raid, ...] = ()
    luks: tuple[Luks, ...] = ()
    filesystems: tuple[Filesystem, ...] = ()
    files: tuple[File, ...] = ()
    directories: tuple[Directory, ...] = ()
    links: tuple[Link, ...] = ()
    grow: Grow | None = None


@model_class
class Dropin(_Model):
    name: str
    contents: str | None = None


@model_class
class Unit(_Model):
    name: str
    enabled: bool | None = None
    mask: bool | None = None
    contents: str | None = None
    dropins: tuple[Dropin, ...] = ()


@model_class
class Systemd(_Model):
    units: tuple[Unit, ...] = ()


@model_class
class User(_Model):
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


@model_class
class Group(_Model):
    name: str
    gid: int | None = None
    password_hash: str | None = None
    system: bool = False
    should_exist: bool = True


@model_class
class DefaultUser(_Model):
    """The image's default user, as the config wants it (spec 1.1.0)."""

    create: bool | None = None
    ssh_authorized_keys: tuple[str, ...] = ()


@model_class
class Passwd(_Model):
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    default_user: DefaultUser | None = None


@model_class
class KernelArguments(_Model):
    should_exist: tuple[str, ...] = ()
    should_not_exist: tuple[str, ...] = ()


@model_class
class PortMapping(_Model):
    container: int
    host: int | None = None
    protocol: str = "tcp"
    host_ip: str | None = None


@model_class
class VolumeMount(_Model):
    source: str
    target: str
    read_only: bool = False


@model_class
class Container(_Model):
    name: str
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: dict[str, str] = model_field(default_factory=dict)
    ports: tuple[PortMapping, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    networks: tuple[str, ...] = ()
    restart: str = "always"
    user: str | None = None
    enabled: bool = True

    def __repr__(self) -> str:  # environment values are often secrets: names only
        return (f"Container(name={self.name!r}, image={self.image!r}, "
                f"env=<{len(self.env)} values: {', '.join(sorted(self.env))}>)")


@model_class
class RuntimeSettings(_Model):
    log_driver: str | None = None
    log_options: dict[str, str] = model_field(default_factory=dict)
    storage_driver: str | None = None
    data_root: str | None = None
    cgroup_driver: str | None = None


@model_class
class RegistryMirror(_Model):
    registry: str
    endpoints: tuple[str, ...] = ()


@model_class
class RegistryCredential(_Model):
    registry: str
    username: str
    password: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"RegistryCredential(registry={self.registry!r}, username={self.username!r}, password=<redacted>)"


@model_class
class Registries(_Model):
    mirrors: tuple[RegistryMirror, ...] = ()
    insecure: tuple[str, ...] = ()
    credentials: tuple[RegistryCredential, ...] = ()


@model_class
class NamedVolume(_Model):
    name: str
    driver: str | None = None


@model_class
class Network(_Model):
    name: str
    driver: str | None = None
    subnet: str | None = None


@model_class
class Containers(_Model):
    runtime: str | None = None
    settings: RuntimeSettings = model_field(default_factory=RuntimeSettings)
    registries: Registries = model_field(default_factory=Registries)
    volumes: tuple[NamedVolume, ...] = ()
    networks: tuple[Network, ...] = ()
    containers: tuple[Container, ...] = ()
    preload: tuple[Resource, ...] = ()


# --- network (spec 1.1.0) ---


@model_class
class NetMatch(_Model):
    """Which device(s) an ethernet entry applies to; all given fields must match."""

    name: str | None = None  # may be a shell glob (en*)
    mac_address: str | None = None
    driver: str | None = None


@model_class
class NetRoute(_Model):
    to: str  # CIDR, or "default"
    via: str | None = None
    metric: int | None = None
    table: int | None = None
    on_link: bool = False


@model_class
class NameServers(_Model):
    addresses: tuple[str, ...] = ()
    search: tuple[str, ...] = ()


@model_class
class BondSettings(_Model):
    mode: str = "balance-rr"
    mii_monitor_interval: int | None = None
    lacp_rate: str | None = None
    transmit_hash_policy: str | None = None
    primary: str | None = None
    up_delay: int | None = None
    down_delay: int | None = None
    min_links: int | None = None
    ad_select: str | None = None
    arp_interval: int | None = None
    arp_ip_targets: tuple[str, ...] = ()


@model_class
class VlanSettings(_Model):
    id: int
    link: str


@model_class
class BridgeSettings(_Model):
    stp: bool | None = None
    forward_delay: int | None = None
    priority: int | None = None
    hello_time: int | None = None
    max_age: int | None = None


@model_class
class NetInterface(_Model):
    """One interface: a physical one (matched), a bond, a VLAN or a bridge."""

    name: str
    type: str = "ethernet"  # ethernet, bond, vlan, bridge
    match: NetMatch | None = None
    set_name: str | None = None  # rename the matched device (ethernet only)
    mac_address: str | None = None  # MAC to set (bonds, bridges, cloned MACs)
    mtu: int | None = None
    dhcp4: bool = False
    dhcp6: bool = False
    accept_ra: bool | None = None
    addresses: tuple[str, ...] = ()
    gateway4: str | None = None
    gateway6: str | None = None
    routes: tuple[NetRoute, ...] = ()
    nameservers: NameServers = model_field(default_factory=NameServers)
    optional: bool = False
    members: tuple[str, ...] = ()  # bond and bridge members, by name
    bond: BondSettings | None = None
    vlan: VlanSettings | None = None
    bridge: BridgeSettings | None = None


@model_class
class Networking(_Model):
    renderer: str = "auto"  # auto, networkd, networkmanager, netplan, ifupdown
    interfaces: tuple[NetInterface, ...] = ()
    nameservers: NameServers = model_field(default_factory=NameServers)


@model_class
class ConfigReferences(_Model):
    merge: tuple[Resource, ...] = ()
    replace: Resource | None = None


@model_class
class Timeouts(_Model):
    http_response_headers: int | None = None
    http_total: int | None = None


@model_class
class TLS(_Model):
    certificate_authorities: tuple[Resource, ...] = ()


@model_class
class Security(_Model):
    tls: TLS = model_field(default_factory=TLS)


@model_class
class Proxy(_Model):
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()


@model_class
class PhoneHome(_Model):
    """cloud-init's phone_home: POST to a URL once provisioned (spec 1.1.0)."""

    url: str
    post: tuple[str, ...] | None = None  # None: every field
    tries: int | None = None


@model_class
class Meta(_Model):
    version: str
    config: ConfigReferences = model_field(default_factory=ConfigReferences)
    timeouts: Timeouts = model_field(default_factory=Timeouts)
    security: Security = model_field(default_factory=Security)
    proxy: Proxy = model_field(default_factory=Proxy)
    phone_home: PhoneHome | None = None


@model_class
class Config(_Model):
    """A whole config in the newest model."""

    provision: Meta
    storage: Storage = model_field(default_factory=Storage)
    systemd: Systemd = model_field(default_factory=Systemd)
    passwd: Passwd = model_field(default_factory=Passwd)
    kernel_arguments: KernelArguments = model_field(default_factory=KernelArguments)
    containers: Containers = model_field(default_factory=Containers)
    network: Networking = model_field(default_factory=Networking)
