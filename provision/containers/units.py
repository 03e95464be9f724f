"""systemd units that run containers (docker, nerdctl) and load preloaded images.

Restart policy maps onto systemd's, which supervises the container (the
runtime's own ``--restart`` would fight ``--rm`` and systemd): ``no`` ->
``Restart=no``, ``always`` -> ``Restart=always``, ``on-failure`` ->
``Restart=on-failure``, ``unless-stopped`` -> ``Restart=always`` (a
``systemctl stop`` is the explicit stop that systemd already respects).

Environment variables go to an env file (0600, read by ``--env-file``) so
values never land in a world-readable unit or in ``ps`` output.
"""

from __future__ import annotations

from collections.abc import Iterable

from provision.config.model import Container, Containers, PortMapping, VolumeMount
from provision.containers.files import FileWrite, RuntimeFiles
from provision.errors import ProvisionError
from provision.target.tree import TargetTree

PRELOAD_UNIT = "provision-images-load.service"
PRELOAD_DIR = "/var/lib/provision/images"
PRELOAD_MARKER = f"{PRELOAD_DIR}/.load-pending"
ENV_DIR = "/etc/provision/containers"
UNIT_DIR = "/etc/systemd/system"
RESTART = {"no": "no", "always": "always", "on-failure": "on-failure", "unless-stopped": "always"}
# Names with their own meaning to docker/podman/nerdctl: not declared networks.
BUILTIN_NETWORKS = frozenset({"host", "bridge", "none", "default"})


def unit_name(container: Container) -> str:
    return f"provision-{container.name}.service"


def systemd_quote(arg: str) -> str:
    """One word of a systemd command line: specifiers (%) and variables ($) made literal."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if text == ";":
        return "\\;"
    if text and not any(c in text for c in " \t\n\"'\\"):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def command_line(argv: Iterable[str]) -> str:
    return " ".join(systemd_quote(a) for a in argv)


def find_binary(tree: TargetTree, name: str, default: str) -> str:
    """Where the target has ``name`` (systemd wants absolute paths); ``default`` if nowhere."""
    for directory in ("/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/sbin"):
        state = tree.state(f"{directory}/{name}")
        if state is not None and state.kind in ("file", "link"):
            return f"{directory}/{name}"
    return default


def env_file_text(container: Container) -> bytes:
    for key, value in container.env.items():
        bad_name = not key or key.startswith("#") or any(c in key for c in "= \t\n")
        if bad_name or "\n" in value:
            # The env-file format is NAME=VALUE per line, "#" starting a comment.
            raise ProvisionError(
                f"container {container.name}: environment variable {key.split(chr(10))[0]!r} "
                "cannot be written to an env file (a name that is empty, starts with '#' or "
                "holds '=' or whitespace, or a newline in the value)"
            )
    return "".join(f"{k}={v}\n" for k, v in container.env.items()).encode()


def env_file_path(container: Container) -> str:
    return f"{ENV_DIR}/{container.name}.env"


def port_arg(port: PortMapping) -> str:
    host = f"{port.host_ip}:" if port.host_ip else ""
    if port.host_ip and ":" in port.host_ip:
        host = f"[{port.host_ip}]:"
    if port.host is not None:
        host += f"{port.host}:"
    elif port.host_ip:
        host += ":"
    return f"{host}{port.container}/{port.protocol}"


def volume_arg(volume: VolumeMount) -> str:
    return f"{volume.source}:{volume.target}" + (":ro" if volume.read_only else "")


def check_references(section: Containers) -> None:
    """Named volumes and networks a container uses must be declared (no silent typos)."""
    volumes = {v.name for v in section.volumes}
    networks = {n.name for n in section.networks}
    for container in section.containers:
        for volume in container.volumes:
            if not volume.source.startswith("/") and volume.source not in volumes:
                raise ProvisionError(f"container {container.name}: volume {volume.source!r} is not declared in containers.volumes")
        for network in container.networks:
            if network not in networks and network not in BUILTIN_NETWORKS:
                raise ProvisionError(f"container {container.name}: network {network!r} is not declared in containers.networks")


def run_args(container: Container, runtime_args: list[str]) -> list[str]:
    """``run --rm --name N ... IMAGE CMD`` for docker and nerdctl (same flags)."""
    args = ["run", "--rm", "--name", container.name, *runtime_args]
    if container.env:
        args += ["--env-file", env_file_path(container)]
    for port in container.ports:
        args += ["--publish", port_arg(port)]
    for volume in container.volumes:
        args += ["--volume", volume_arg(volume)]
    for network in container.networks:
        args += ["--network", network]
    if container.user:
        args += ["--user", container.user]
    command = list(container.command)
    if container.entrypoint:
        # --entrypoint takes one executable; the rest of the entrypoint leads the command.
        args += ["--entrypoint", container.entrypoint[0]]
        command = [*container.entrypoint[1:], *command]
    return [*args, container.image, *command]


def service_unit(
    container: Container,
    runtime_unit: str,
    binary: str,
    runtime_args: list[str],
    pre: list[list[str]],
    env: dict[str, str],
    preload: bool,
) -> str:
    after = ["network-online.target", runtime_unit] + ([PRELOAD_UNIT] if preload else [])
    wants = ["network-online.target"] + ([PRELOAD_UNIT] if preload else [])
    lines = [
        "# Written by provision: runs container " + container.name,
        "[Unit]",
        f"Description=Container {container.name} ({container.image})",
        f"Requires={runtime_unit}",
        f"Wants={' '.join(wants)}",
        f"After={' '.join(after)}",
        "",
        "[Service]",
        "Type=simple",
    ]
    lines += [f"Environment={k}={v}" for k, v in sorted(env.items())]  # our own paths only
    lines += [f"ExecStartPre=-{command_line([binary, 'rm', '--force', container.name])}"]
    lines += [f"ExecStartPre={command_line(argv)}" for argv in pre]
    lines += [
        f"ExecStart={command_line([binary, *run_args(container, runtime_args)])}",
        f"ExecStop={command_line([binary, 'stop', container.name])}",
        f"Restart={RESTART[container.restart]}",
        "RestartSec=5s",
        # Pulling a big image may take a while; a start timeout would kill it mid-pull.
        "TimeoutStartSec=infinity",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def preload_unit(runtime_unit: str | None, load_commands: list[list[str]], files: list[str]) -> str:
    # podman has no daemon: nothing to require, only local filesystems.
    needs = [f"Requires={runtime_unit}", f"After={runtime_unit}"] if runtime_unit else [
        "After=local-fs.target"
    ]
    lines = [
        "# Written by provision: loads preloaded images once, on the first boot",
        "[Unit]",
        "Description=Load container images preloaded by provision",
        *needs,
        f"ConditionPathExists={PRELOAD_MARKER}",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
    ]
    lines += [f"ExecStart={command_line(argv)}" for argv in load_commands]
    # Only after every load succeeded: a failed load is retried on the next boot.
    lines += [f"ExecStartPost={command_line(['/bin/rm', '-f', *files, PRELOAD_MARKER])}"]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def add_service(files: RuntimeFiles, container: Container, text: str) -> None:
    """Queue a container's service unit, its environment file (0600) and its enablement."""
    if container.env:
        files.directories.append((ENV_DIR, 0o700))
        files.writes.append(FileWrite(env_file_path(container), env_file_text(container),
                                      mode=0o600, secret=True, what="container environment"))
    path = f"{UNIT_DIR}/{unit_name(container)}"
    files.writes.append(FileWrite(path, text.encode(), what="container unit"))
    (files.enable if container.enabled else files.disable).append(path)
