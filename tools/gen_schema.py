"""Write schemas/provision-<version>.json, one file per spec version.

1.1.0 is 1.0.0 plus the ``network`` section, ``storage.grow``,
``passwd.defaultUser``, ``provision.phoneHome`` and ``storage.luks[].systemdTpm2``; older versions stay as they
were released (configs written for them keep validating against them).

The schema is data; this script is only the convenient way to write it with
shared definitions and descriptions. Run it after editing; a test checks the
committed JSON equals its output.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

J = dict[str, Any]


def obj(props: J, required: list[str] | None = None, desc: str = "") -> J:
    out: J = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    if desc:
        out["description"] = desc
    return out


def s(desc: str, **kw: Any) -> J:
    return {"type": "string", "description": desc, **kw}


def i(desc: str, **kw: Any) -> J:
    return {"type": "integer", "description": desc, **kw}


def b(desc: str) -> J:
    return {"type": "boolean", "description": desc}


def arr(items: J, desc: str) -> J:
    return {"type": "array", "items": items, "description": desc}


def ref(name: str, desc: str = "") -> J:
    out: J = {"$ref": f"#/$defs/{name}"}
    if desc:
        out["description"] = desc
    return out


RESOURCE = obj(
    {
        "source": s(
            "URL of the contents: data:, http:, https:, tftp:, s3: or gs:. Omitted: no contents "
            "(an empty file is created if none exists)."
        ),
        "compression": {
            "enum": ["gzip"],
            "description": "Compression of the fetched data; it is decompressed before use.",
        },
        "httpHeaders": arr(
            obj(
                {
                    "name": s("Header name.", minLength=1),
                    "value": s("Header value."),
                },
                ["name"],
            ),
            "Extra HTTP headers sent with the request (http and https sources only).",
        ),
        "verification": obj(
            {
                "hash": s(
                    "Expected hash of the decompressed data: sha256-<64 hex> or sha512-<128 hex>."
                )
            },
            desc="How the fetched data is verified.",
        ),
    },
    desc="A piece of data fetched from a URL, optionally compressed and verified.",
)

NODE_OWNER = obj(
    {
        "id": i("Numeric id.", minimum=0),
        "name": s("Name, resolved against the target root's passwd or group file."),
    },
    desc="Owner by id or by name (not both).",
)

NODE_COMMON: J = {
    "path": s("Absolute, normalised path of the node inside the target root."),
    "overwrite": b(
        "Replace a node that already exists at the path. Default false: an existing node is an error."
    ),
    "user": ref("nodeOwner", "Owning user; default root."),
    "group": ref("nodeOwner", "Owning group; default root."),
}

FILE = obj(
    {
        **NODE_COMMON,
        "contents": ref("resource", "Contents of the file."),
        "append": arr(ref("resource"), "Data appended to the file, in order."),
        "mode": i("Permission bits as a decimal integer (0644 octal is 420). Default 0644."),
    },
    ["path"],
    "A regular file.",
)
DIRECTORY = obj(
    {**NODE_COMMON, "mode": i("Permission bits as a decimal integer. Default 0755.")},
    ["path"],
    "A directory.",
)
LINK = obj(
    {
        **NODE_COMMON,
        "target": s("Target of the link."),
        "hard": b("A hard link instead of a symbolic one; the target must be absolute."),
    },
    ["path", "target"],
    "A symbolic or hard link.",
)

PARTITION = obj(
    {
        "label": s("GPT partition name (at most 36 characters, no colon)."),
        "number": i("Partition number; 0 means the next free one.", minimum=0),
        "sizeMiB": i("Size in MiB; 0 means as large as possible.", minimum=0),
        "startMiB": i("Start in MiB; 0 means the start of the largest free block.", minimum=0),
        "typeGuid": s("Partition type GUID. Default Linux filesystem data."),
        "guid": s("Unique partition GUID."),
        "wipePartitionEntry": b(
            "Allow deleting and recreating a partition that does not match the spec."
        ),
        "shouldExist": b("false: the partition must not exist (deleted if wipePartitionEntry)."),
        "resize": b("Grow a partition that matches in everything but size."),
    },
    desc="A GPT partition.",
)
DISK = obj(
    {
        "device": s("Block device path, or a /dev/disk/by-* link."),
        "wipeTable": b("Wipe the partition table before partitioning."),
        "partitions": arr(ref("partition"), "Partitions on the disk."),
    },
    ["device"],
    "A disk to partition.",
)
RAID = obj(
    {
        "name": s("Array name; the device becomes /dev/md/<name>.", minLength=1),
        "level": {
            "enum": ["linear", "raid0", "0", "raid1", "1", "raid4", "4", "raid5", "5",
                     "raid6", "6", "raid10", "10"],
            "description": "RAID level.",
        },
        "devices": arr(s("Member device."), "Member devices."),
        "spares": i("Number of spare devices among the members.", minimum=0),
        "options": arr(s("Option."), "Extra mdadm --create options."),
    },
    ["name", "level", "devices"],
    "A software RAID array.",
)
LUKS = obj(
    {
        "name": s("Name of the opened device (/dev/mapper/<name>).", minLength=1),
        "device": s("Device to encrypt."),
        "keyFile": ref("resource", "Key file contents; omitted: a random key kept in the target root."),
        "label": s("LUKS label."),
        "uuid": s("LUKS UUID."),
        "options": arr(s("Option."), "Extra cryptsetup luksFormat options."),
        "discard": b("Allow discards through the encrypted device."),
        "openOptions": arr(s("Option."), "Extra cryptsetup open options (also in crypttab)."),
        "wipeVolume": b("Wipe the device before formatting."),
        "clevis": obj(
            {
                "tpm2": b("Bind to this machine's TPM2."),
                "tang": arr(
                    obj(
                        {
                            "url": s("The Tang server's URL (http or https)."),
                            "thumbprint": s("Thumbprint of the server's signing key (tang-show-keys)."),
                            "advertisement": s("The server's advertisement (JSON); fetched when unset."),
                        },
                        ["url"],
                        "A Tang server.",
                    ),
                    "Tang servers to bind to.",
                ),
                "threshold": i("How many of the pins must answer to unlock (default 1).", minimum=0),
                "custom": obj(
                    {
                        "pin": s("A clevis pin: tpm2, tang or sss."),
                        "config": s("The pin's JSON config, passed to clevis as written."),
                        "needsNetwork": b("Unlocking needs the network (crypttab _netdev)."),
                    },
                    desc="A clevis pin and config given as is; excludes tpm2, tang and threshold.",
                ),
            },
            desc="Bind the volume with clevis (TPM2, Tang, Shamir threshold); the key it was made with is "
            "removed when random, and no key file is kept in the root.",
        ),
        "cex": obj({"enabled": b("Use an IBM CEX secure key.")}, desc="IBM CEX (s390x) support; not supported."),
    },
    ["name", "device"],
    "A LUKS2 encrypted volume.",
)
SUBVOLUME = obj(
    {
        "name": s("Subvolume name (path relative to the filesystem's top level).", minLength=1),
        "path": s("Where to mount the subvolume in the target root while provisioning."),
        "mountOptions": arr(s("Mount option."), "Extra mount options."),
    },
    ["name"],
    "A btrfs subvolume.",
)
FILESYSTEM = obj(
    {
        "device": s("Block device holding the filesystem."),
        "format": {
            "enum": ["ext4", "btrfs", "xfs", "vfat", "swap", "none"],
            "description": "Filesystem type.",
        },
        "path": s("Mount point in the target root while provisioning."),
        "wipeFilesystem": b("Wipe an existing filesystem that does not match."),
        "label": s("Filesystem label."),
        "uuid": s("Filesystem UUID."),
        "options": arr(s("Option."), "Extra mkfs options."),
        "mountOptions": arr(s("Option."), "Options used when mounting."),
        "subvolumes": arr(ref("subvolume"), "btrfs subvolumes to create (btrfs only)."),
    },
    ["device"],
    "A filesystem.",
)
DROPIN = obj(
    {"name": s("Drop-in file name, ending in .conf."), "contents": s("Drop-in contents.")},
    ["name"],
    "A systemd unit drop-in.",
)
UNIT = obj(
    {
        "name": s("Unit name with its suffix (.service, .timer, ...)."),
        "enabled": b("true: enable (started on first boot); false: disable."),
        "mask": b("Mask the unit (a link to /dev/null)."),
        "contents": s("Unit file contents."),
        "dropins": arr(ref("dropin"), "Drop-ins for the unit."),
    },
    ["name"],
    "A systemd unit.",
)
USER = obj(
    {
        "name": s("User name.", minLength=1),
        "passwordHash": s("crypt(3) password hash. Secret: never logged. An empty string locks the account ('!'); a new user without one gets '*' (no password, key login still works)."),
        "sshAuthorizedKeys": arr(s("OpenSSH public key line."), "SSH keys for ~/.ssh/authorized_keys.d/provision."),
        "uid": i("User id.", minimum=0),
        "gecos": s("GECOS (comment) field."),
        "homeDir": s("Home directory."),
        "noCreateHome": b("Do not create the home directory."),
        "primaryGroup": s("Primary group name."),
        "groups": arr(s("Group name."), "Supplementary groups."),
        "noUserGroup": b("Do not create a group with the user's name."),
        "noLogInit": b("Do not add the user to lastlog/faillog."),
        "shell": s("Login shell."),
        "system": b("A system account."),
        "shouldExist": b("false: the user is removed if present."),
    },
    ["name"],
    "A user account.",
)
GROUP = obj(
    {
        "name": s("Group name.", minLength=1),
        "gid": i("Group id.", minimum=0),
        "passwordHash": s("Group password hash. Secret: never logged. An empty string locks the group password ('!')."),
        "system": b("A system group."),
        "shouldExist": b("false: the group is removed if present."),
    },
    ["name"],
    "A group.",
)
CONTAINER = obj(
    {
        "name": s("Container name; also names its unit.", pattern="^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
        "image": s("Image reference (registry/name:tag or @digest).", minLength=1),
        "command": arr(s("Argument."), "Command and arguments (overrides the image's CMD)."),
        "entrypoint": arr(s("Argument."), "Entrypoint (overrides the image's ENTRYPOINT)."),
        "env": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Environment variables.",
        },
        "ports": arr(
            obj(
                {
                    "host": i("Host port.", minimum=1, maximum=65535),
                    "container": i("Container port.", minimum=1, maximum=65535),
                    "protocol": {"enum": ["tcp", "udp"], "description": "Protocol; default tcp."},
                    "hostIp": s("Host address to bind; default all."),
                },
                ["container"],
            ),
            "Published ports.",
        ),
        "volumes": arr(
            obj(
                {
                    "source": s("Absolute host path, or the name of a declared volume."),
                    "target": s("Absolute path inside the container."),
                    "readOnly": b("Mount read-only."),
                },
                ["source", "target"],
            ),
            "Mounted volumes.",
        ),
        "networks": arr(s("Name of a declared network, or host/bridge/none."), "Networks joined."),
        "restart": {
            "enum": ["no", "always", "on-failure", "unless-stopped"],
            "description": "Restart policy; default always.",
        },
        "user": s("User (name or uid[:gid]) to run the process as."),
        "enabled": b("Start at boot; default true."),
    },
    ["name", "image"],
    "A container started at boot by a systemd unit.",
)
CONTAINERS = obj(
    {
        "runtime": {"enum": ["docker", "containerd", "podman"], "description": "Container runtime."},
        "settings": obj(
            {
                "logDriver": s("Log driver (docker: json-file, journald, ...)."),
                "logOptions": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Log driver options.",
                },
                "storageDriver": s("Storage driver (overlay2, overlay, btrfs, ...)."),
                "dataRoot": s("Absolute path of the runtime's data directory."),
                "cgroupDriver": {"enum": ["systemd", "cgroupfs"], "description": "cgroup driver."},
            },
            desc="Daemon settings; merged into the configuration the image ships.",
        ),
        "registries": obj(
            {
                "mirrors": arr(
                    obj(
                        {
                            "registry": s("Registry host being mirrored, e.g. docker.io."),
                            "endpoints": arr(s("Mirror URL."), "Mirror endpoints, tried in order."),
                        },
                        ["registry", "endpoints"],
                    ),
                    "Registry mirrors.",
                ),
                "insecure": arr(s("host[:port]"), "Registries reached over plain HTTP or unverified TLS."),
                "credentials": arr(
                    obj(
                        {
                            "registry": s("Registry host."),
                            "username": s("User name."),
                            "password": s("Password or token. Secret: never logged; stored mode 0600."),
                        },
                        ["registry", "username", "password"],
                    ),
                    "Registry credentials.",
                ),
            },
            desc="Registry configuration.",
        ),
        "volumes": arr(
            obj(
                {
                    "name": s("Volume name.", pattern="^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
                    "driver": s("Volume driver; default local."),
                },
                ["name"],
            ),
            "Named volumes containers may use.",
        ),
        "networks": arr(
            obj(
                {
                    "name": s("Network name.", pattern="^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
                    "driver": s("Network driver; default bridge."),
                    "subnet": s("Subnet in CIDR notation."),
                },
                ["name"],
            ),
            "Networks containers may join.",
        ),
        "containers": arr(ref("container"), "Containers to run at boot."),
        "preload": arr(
            ref("resource"),
            "Image tarballs (docker save / OCI archive) fetched now and loaded on first boot.",
        ),
    },
    desc="Container runtime configuration and containers to run.",
)

SCHEMA: J = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://provision.invalid/schemas/provision-1.0.0.json",
    "title": "provision config spec 1.0.0",
    "type": "object",
    "additionalProperties": False,
    "required": ["provision"],
    "properties": {
        "provision": obj(
            {
                "version": s("Config spec version.", const="1.0.0"),
                "config": obj(
                    {
                        "merge": arr(ref("resource"), "Configs merged over this one, in order."),
                        "replace": ref("resource", "A config that replaces this one."),
                    },
                    desc="References to other configs.",
                ),
                "timeouts": obj(
                    {
                        "httpResponseHeaders": i("Seconds to wait for response headers; default 10.", minimum=0),
                        "httpTotal": i("Seconds for a whole HTTP fetch; 0 means no limit.", minimum=0),
                    },
                    desc="Fetch timeouts.",
                ),
                "security": obj(
                    {
                        "tls": obj(
                            {
                                "certificateAuthorities": arr(
                                    ref("resource"), "Extra CA certificates (PEM) trusted for https."
                                )
                            },
                            desc="TLS settings.",
                        )
                    },
                    desc="Security settings.",
                ),
                "proxy": obj(
                    {
                        "httpProxy": s("Proxy for http URLs."),
                        "httpsProxy": s("Proxy for https URLs."),
                        "noProxy": arr(s("Host or domain."), "Hosts reached without the proxy."),
                    },
                    desc="HTTP proxies used while fetching.",
                ),
            },
            ["version"],
            "Metadata about the config itself.",
        ),
        "storage": obj(
            {
                "disks": arr(ref("disk"), "Disks to partition."),
                "raid": arr(ref("raid"), "Software RAID arrays."),
                "luks": arr(ref("luks"), "LUKS encrypted volumes."),
                "filesystems": arr(ref("filesystem"), "Filesystems."),
                "files": arr(ref("file"), "Files."),
                "directories": arr(ref("directory"), "Directories."),
                "links": arr(ref("link"), "Links."),
            },
            desc="Disks, filesystems and the nodes written into them.",
        ),
        "systemd": obj({"units": arr(ref("unit"), "Units.")}, desc="systemd units."),
        "passwd": obj(
            {"users": arr(ref("user"), "Users."), "groups": arr(ref("group"), "Groups.")},
            desc="Users and groups.",
        ),
        "kernelArguments": obj(
            {
                "shouldExist": arr(s("Argument."), "Kernel arguments that must be present."),
                "shouldNotExist": arr(s("Argument."), "Kernel arguments that must be absent."),
            },
            desc="Kernel command-line arguments: written into the boot loader's entries on first boot, then one reboot into them (as Ignition does).",
        ),
        "containers": CONTAINERS,
    },
    "$defs": {
        "resource": RESOURCE,
        "nodeOwner": NODE_OWNER,
        "file": FILE,
        "directory": DIRECTORY,
        "link": LINK,
        "disk": DISK,
        "partition": PARTITION,
        "raid": RAID,
        "luks": LUKS,
        "filesystem": FILESYSTEM,
        "subvolume": SUBVOLUME,
        "unit": UNIT,
        "dropin": DROPIN,
        "user": USER,
        "group": GROUP,
        "container": CONTAINER,
    },
}


GROW = obj(
    {
        "devices": arr(
            s("A mount point in the target (/, /var) or a device path (/dev/vdb1, /dev/disk/by-label/data)."),
            "What to grow: each partition is extended over the free space after it, then what it holds "
            "(ext2/3/4, XFS, btrfs, an LVM physical volume). Omitted: the image decides (the root when "
            "its settings say grow_root); empty: nothing is grown.",
        ),
        "resizeFilesystems": b("Grow what each partition holds as well; default true."),
    },
    desc="Growing partitions and filesystems to fill their disks (cloud-init's growpart and resize_rootfs; spec 1.1.0).",
)
DEFAULT_USER = obj(
    {
        "create": b("Create the image's default user (named in its settings); default true."),
        "sshAuthorizedKeys": arr(s("An SSH public key line."), "Keys for the default user, besides the platform's."),
    },
    desc="The image's default user (cloud-init's default_user; spec 1.1.0).",
)


PHONE_HOME_FIELDS = ["pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "pub_key_dsa",
                     "instance_id", "hostname", "fqdn"]
PHONE_HOME = obj(
    {
        "url": s("Where to POST (form-encoded) once the machine is provisioned; $INSTANCE_ID is replaced "
                 "by the instance's id.", minLength=1),
        "post": arr({"enum": PHONE_HOME_FIELDS, "description": "A field to send."},
                    "Fields to send; default all of them."),
        "tries": i("Attempts before giving up; default 10.", minimum=1, maximum=100),
    },
    ["url"],
    "Tell a URL the machine is provisioned, as cloud-init's phone_home module (spec 1.1.0).",
)
NAMESERVERS = obj(
    {
        "addresses": arr(s("IPv4 or IPv6 address."), "DNS servers."),
        "search": arr(s("Domain."), "DNS search domains."),
    },
    desc="DNS servers and search domains.",
)
ROUTE = obj(
    {
        "to": s('Destination in CIDR notation, or "default".'),
        "via": s("Gateway address; omitted: a route on the link."),
        "metric": i("Route metric (lower is preferred).", minimum=0),
        "table": i("Routing table number; default the main table.", minimum=1),
        "onLink": b("The gateway is reachable on the link even outside the interface's subnets."),
    },
    ["to"],
    "A static route.",
)
INTERFACE = obj(
    {
        "name": s(
            "Interface name; for ethernet entries with match, only this config's name for the entry.",
            minLength=1,
        ),
        "type": {
            "enum": ["ethernet", "bond", "vlan", "bridge"],
            "description": "Kind of interface; default ethernet (a physical device).",
        },
        "match": obj(
            {
                "name": s("Kernel name, shell glob allowed (en*)."),
                "macAddress": s("Permanent MAC address, aa:bb:cc:dd:ee:ff."),
                "driver": s("Kernel driver name (virtio_net, ixgbe, ...)."),
            },
            desc="Which device an ethernet entry configures; every field given must match. Omitted: the device named name.",
        ),
        "setName": s("Rename the matched device to this name (ethernet entries with match).", minLength=1),
        "macAddress": s("MAC address to set on the interface."),
        "mtu": i("MTU in bytes.", minimum=68, maximum=65535),
        "dhcp4": b("Ask DHCPv4 for an address."),
        "dhcp6": b("Ask DHCPv6 for an address."),
        "acceptRa": b("Accept IPv6 router advertisements; default the renderer's."),
        "addresses": arr(s("Address with prefix length (192.0.2.10/24, 2001:db8::10/64)."), "Static addresses."),
        "gateway4": s("IPv4 default gateway."),
        "gateway6": s("IPv6 default gateway."),
        "routes": arr(ref("route"), "Static routes."),
        "nameservers": ref("nameservers", "DNS servers and search domains used with this interface."),
        "optional": b("Boot does not wait for this interface to come up."),
        "members": arr(s("Interface name (an entry of network.interfaces)."), "Bond or bridge members."),
        "bond": obj(
            {
                "mode": {
                    "enum": ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
                             "balance-tlb", "balance-alb"],
                    "description": "Bonding mode; default balance-rr.",
                },
                "miiMonitorInterval": i("MII link monitoring interval in milliseconds.", minimum=0),
                "lacpRate": {"enum": ["slow", "fast"], "description": "LACPDU rate (802.3ad)."},
                "transmitHashPolicy": {
                    "enum": ["layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"],
                    "description": "Transmit hash policy (balance-xor, 802.3ad, balance-tlb).",
                },
                "primary": s("Preferred member (active-backup, balance-tlb, balance-alb)."),
                "upDelay": i("Milliseconds before enabling a member after link up.", minimum=0),
                "downDelay": i("Milliseconds before disabling a member after link down.", minimum=0),
                "minLinks": i("Members that must be up for the bond to be up.", minimum=0),
                "adSelect": {"enum": ["stable", "bandwidth", "count"], "description": "802.3ad aggregation selection."},
                "arpInterval": i("ARP monitoring interval in milliseconds.", minimum=0),
                "arpIpTargets": arr(s("IPv4 address."), "ARP monitoring targets."),
            },
            desc="Bond settings (type bond).",
        ),
        "vlan": obj(
            {
                "id": i("VLAN id.", minimum=0, maximum=4095),
                "link": s("Name of the interface (an entry of network.interfaces) the VLAN is on."),
            },
            ["id", "link"],
            "VLAN settings (type vlan).",
        ),
        "bridge": obj(
            {
                "stp": b("Run the spanning tree protocol."),
                "forwardDelay": i("Forward delay in seconds.", minimum=0),
                "priority": i("Bridge priority.", minimum=0, maximum=65535),
                "helloTime": i("Hello time in seconds.", minimum=0),
                "maxAge": i("Max age in seconds.", minimum=0),
            },
            desc="Bridge settings (type bridge).",
        ),
    },
    ["name"],
    "A network interface: a physical device (matched), a bond, a VLAN or a bridge.",
)
NETWORK = obj(
    {
        "renderer": {
            "enum": ["auto", "networkd", "networkmanager", "netplan", "ifupdown"],
            "description": "Which network configuration the image uses; default auto: detected from the target "
            "(netplan, then NetworkManager, then ifupdown, then systemd-networkd).",
        },
        "interfaces": arr(ref("interface"), "Interfaces to configure."),
        "nameservers": ref("nameservers", "DNS servers and search domains for the whole system."),
    },
    desc="Network configuration written into the target for its network manager (spec 1.1.0).",
)
SYSTEMD_TPM2 = obj(
    {
        "device": s("The TPM2 to enroll with: auto (default), a device path, or a TPM2 TCTI "
                    "(driver:config).", minLength=1),
        "pcrs": arr(i("A PCR index.", minimum=0, maximum=23),
                    "PCRs the key is sealed against (default: systemd-cryptenroll's, PCR 7)."),
        "pin": s("A PIN asked at boot besides the TPM2 (needs systemd 251 or newer). A secret: "
                 "never logged.", minLength=1),
    },
    desc="Bind the volume to this machine's TPM2 with systemd-cryptenroll instead of clevis "
    "(spec 1.1.0; experimental). The image needs systemd 251 or newer; the random key the "
    "volume was made with is removed.",
)


def schema_for(version: str) -> J:
    """The schema of one spec version."""
    schema = copy.deepcopy(SCHEMA)
    if version == "1.0.0":
        return schema
    schema["$id"] = f"https://provision.invalid/schemas/provision-{version}.json"
    schema["title"] = f"provision config spec {version}"
    schema["properties"]["provision"]["properties"]["version"]["const"] = version
    schema["properties"]["storage"]["properties"]["grow"] = GROW
    schema["properties"]["passwd"]["properties"]["defaultUser"] = DEFAULT_USER
    schema["properties"]["provision"]["properties"]["phoneHome"] = PHONE_HOME
    schema["properties"]["network"] = NETWORK
    schema["$defs"]["luks"]["properties"]["systemdTpm2"] = SYSTEMD_TPM2
    schema["$defs"].update({"interface": INTERFACE, "route": ROUTE, "nameservers": NAMESERVERS})
    return schema


VERSIONS = ("1.0.0", "1.1.0")


def render(version: str = VERSIONS[-1]) -> str:
    return json.dumps(schema_for(version), indent=2, sort_keys=False) + "\n"


def output(version: str) -> Path:
    return Path(__file__).resolve().parent.parent / "schemas" / f"provision-{version}.json"


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        raise SystemExit(0 if all(output(v).read_text() == render(v) for v in VERSIONS) else 1)
    for v in VERSIONS:
        output(v).write_text(render(v))
