"""The containers stage: runtime files for docker, containerd and podman, units, preloads.

Files are parsed back (json, tomllib, our unit parser) and checked key by key;
generated units go through ``systemd-analyze verify --root`` when available.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accounts_fixtures import snapshot

from provision.config.build import build_config
from provision.errors import StageError
from provision.stages import crashpoint
from provision.stages.base import Target
from provision.stages.containers import ContainersStage
from provision.systemd_unit import parse_unit
from tests.standins.http_server import LoopbackHTTPServer, Reply

SYSTEMD_UNITS = Path("/lib/systemd/system")
HAVE_VERIFY = shutil.which("systemd-analyze") is not None and SYSTEMD_UNITS.is_dir()


def make_image(root: Path, systemd_units: bool = True) -> Path:
    """A root with systemd's units (for systemd-analyze), runtime units and stub runtime binaries."""
    lib = root / "usr/lib/systemd"
    lib.mkdir(parents=True)
    if systemd_units and SYSTEMD_UNITS.is_dir():
        shutil.copytree(SYSTEMD_UNITS, lib / "system", symlinks=True)
    else:
        (lib / "system").mkdir()
    for runtime in ("docker", "containerd", "podman"):
        (lib / f"system/{runtime}.service").write_text(
            f"[Unit]\nDescription={runtime}\n[Service]\nExecStart=/usr/bin/{runtime}\n"
        )
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/local/bin").mkdir(parents=True)
    for binary in ("usr/bin/docker", "usr/bin/containerd", "usr/bin/ctr", "usr/bin/podman",
                   "usr/local/bin/nerdctl", "usr/bin/sh", "usr/bin/rm"):
        shutil.copy("/bin/true", root / binary)
    (root / "bin").symlink_to("usr/bin")
    (root / "etc").mkdir()
    (root / "root").mkdir(mode=0o700)
    return root


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "root")


def config(section: dict[str, Any]) -> Any:
    return build_config({"provision": {"version": "1.0.0"}, "containers": section})


def apply(root: Path, section: dict[str, Any]) -> None:
    stage = ContainersStage()
    target = Target(root)
    stage.apply(stage.plan(config(section), target), target)


def meta(path: Path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def verify(root: Path, *units: str) -> None:
    if not HAVE_VERIFY:
        return
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}",
                           *[f"/etc/systemd/system/{u}" for u in units]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


WEB = {
    "name": "web",
    "image": "docker.io/library/nginx:1.27",
    "command": ["nginx", "-g", "daemon off;"],
    "env": {"GREETING": "hello world", "TOKEN": "s3cr3t-t0ken"},
    "ports": [{"host": 8080, "container": 80}, {"container": 53, "protocol": "udp", "hostIp": "127.0.0.1"}],
    "volumes": [{"source": "webdata", "target": "/data"}, {"source": "/srv/conf", "target": "/etc/nginx", "readOnly": True}],
    "networks": ["front"],
    "restart": "unless-stopped",
}
DOCKER = {
    "runtime": "docker",
    "settings": {"logDriver": "journald", "logOptions": {"tag": "{{.Name}}"}, "storageDriver": "overlay2",
                 "dataRoot": "/var/lib/docker2", "cgroupDriver": "systemd"},
    "registries": {
        "mirrors": [{"registry": "docker.io", "endpoints": ["https://mirror.example.com"]}],
        "insecure": ["registry.local:5000"],
        "credentials": [{"registry": "docker.io", "username": "bob", "password": "hunter2-pass"},
                        {"registry": "ghcr.io", "username": "ci", "password": "ghp_token"}],
    },
    "volumes": [{"name": "webdata"}],
    "networks": [{"name": "front", "subnet": "10.88.0.0/24"}],
    "containers": [WEB, {"name": "job", "image": "busybox", "restart": "on-failure",
                         "entrypoint": ["/bin/sh", "-c"], "command": ["echo $HOME 100%"]},
                   {"name": "off", "image": "busybox", "enabled": False, "restart": "no"}],
}


# ---- docker -------------------------------------------------------------------

def test_docker_daemon_json(image: Path) -> None:
    apply(image, DOCKER)
    daemon = json.loads((image / "etc/docker/daemon.json").read_text())
    assert daemon == {
        "registry-mirrors": ["https://mirror.example.com"],
        "insecure-registries": ["registry.local:5000"],
        "log-driver": "journald",
        "log-opts": {"tag": "{{.Name}}"},
        "storage-driver": "overlay2",
        "data-root": "/var/lib/docker2",
        "exec-opts": ["native.cgroupdriver=systemd"],
    }
    assert meta(image / "etc/docker/daemon.json") == (0o644, 0, 0)


def test_docker_merges_into_the_images_daemon_json(image: Path) -> None:
    (image / "etc/docker").mkdir()
    (image / "etc/docker/daemon.json").write_text(json.dumps({
        "log-level": "warn", "registry-mirrors": ["https://old.example.com"],
        "exec-opts": ["native.cgroupdriver=cgroupfs", "native.umask=normal"],
        "log-opts": {"max-size": "10m"}, "insecure-registries": ["registry.local:5000"],
    }))
    apply(image, DOCKER)
    daemon = json.loads((image / "etc/docker/daemon.json").read_text())
    assert daemon["log-level"] == "warn"
    assert daemon["registry-mirrors"] == ["https://old.example.com", "https://mirror.example.com"]
    assert daemon["insecure-registries"] == ["registry.local:5000"]
    assert daemon["exec-opts"] == ["native.umask=normal", "native.cgroupdriver=systemd"]
    assert daemon["log-opts"] == {"max-size": "10m", "tag": "{{.Name}}"}


def test_docker_refuses_mirrors_of_other_registries(image: Path) -> None:
    before = snapshot(image)
    section = {"runtime": "docker", "registries": {"mirrors": [{"registry": "quay.io", "endpoints": ["https://m"]}]}}
    with pytest.raises(StageError, match=r"docker can only mirror docker\.io"):
        apply(image, section)
    assert snapshot(image) == before


def test_docker_credentials(image: Path, caplog: pytest.LogCaptureFixture) -> None:
    (image / "root/.docker").mkdir()
    (image / "root/.docker/config.json").write_text(json.dumps({"auths": {"quay.io": {"auth": "eDp5"}}, "detachKeys": "ctrl-x"}))
    caplog.set_level(logging.DEBUG)
    stage = ContainersStage()
    plan = stage.plan(config(DOCKER), Target(image))
    stage.apply(plan, Target(image))
    path = image / "root/.docker/config.json"
    assert meta(path) == (0o600, 0, 0) and meta(path.parent) == (0o700, 0, 0)
    data = json.loads(path.read_text())
    assert data["detachKeys"] == "ctrl-x" and data["auths"]["quay.io"] == {"auth": "eDp5"}
    assert base64.b64decode(data["auths"]["https://index.docker.io/v1/"]["auth"]) == b"bob:hunter2-pass"
    assert base64.b64decode(data["auths"]["ghcr.io"]["auth"]) == b"ci:ghp_token"
    shown = " ".join(f"{a.kind} {a.item} {a.detail}" for a in plan.actions) + caplog.text + repr(plan)
    for secret in ("hunter2-pass", "ghp_token", "s3cr3t-t0ken"):
        assert secret not in shown


def unit_values(path: Path, section: str, key: str) -> list[str]:
    return parse_unit(path.read_text()).values(section, key)


def test_docker_units(image: Path) -> None:
    apply(image, DOCKER)
    unit = image / "etc/systemd/system/provision-web.service"
    assert unit_values(unit, "Unit", "Requires") == ["docker.service"]
    assert unit_values(unit, "Unit", "After") == ["network-online.target docker.service"]
    assert unit_values(unit, "Service", "Restart") == ["always"]  # unless-stopped
    assert unit_values(unit, "Service", "ExecStartPre")[0] == "-/usr/bin/docker rm --force web"
    assert "network inspect front" in unit_values(unit, "Service", "ExecStartPre")[1]
    assert unit_values(unit, "Service", "ExecStart") == [
        "/usr/bin/docker run --rm --name web --env-file /etc/provision/containers/web.env "
        "--publish 8080:80/tcp --publish 127.0.0.1::53/udp --volume webdata:/data "
        "--volume /srv/conf:/etc/nginx:ro --network front docker.io/library/nginx:1.27 "
        'nginx -g "daemon off;"'
    ]
    assert "s3cr3t" not in unit.read_text()
    env = image / "etc/provision/containers/web.env"
    assert env.read_text() == "GREETING=hello world\nTOKEN=s3cr3t-t0ken\n"
    assert meta(env) == (0o600, 0, 0) and meta(env.parent) == (0o700, 0, 0)
    job = image / "etc/systemd/system/provision-job.service"
    assert unit_values(job, "Service", "Restart") == ["on-failure"]
    # $ and % are literal for systemd; the entrypoint's tail leads the command.
    assert unit_values(job, "Service", "ExecStart")[0].endswith(
        '--entrypoint /bin/sh busybox -c "echo $$HOME 100%%"')
    assert unit_values(image / "etc/systemd/system/provision-off.service", "Service", "Restart") == ["no"]
    wants = image / "etc/systemd/system/multi-user.target.wants"
    assert sorted(os.listdir(wants)) == ["provision-job.service", "provision-web.service"]
    assert os.readlink(wants / "provision-web.service") == "/etc/systemd/system/provision-web.service"
    preset = (image / "etc/systemd/system-preset/21-provision-containers.preset").read_text()
    assert preset == "enable provision-web.service\nenable provision-job.service\ndisable provision-off.service\n"
    verify(image, "provision-web.service", "provision-job.service", "provision-off.service")


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl not installed")
def test_systemctl_sees_units_enabled(image: Path) -> None:
    apply(image, DOCKER)
    for unit, state in (("provision-web.service", "enabled"), ("provision-off.service", "disabled")):
        proc = subprocess.run(["systemctl", f"--root={image}", "is-enabled", unit],
                              capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() == state, (unit, proc.stdout, proc.stderr)


def test_disabling_later_removes_links(image: Path) -> None:
    apply(image, DOCKER)
    changed = json.loads(json.dumps(DOCKER))
    changed["containers"][0]["enabled"] = False
    apply(image, changed)
    assert not (image / "etc/systemd/system/multi-user.target.wants/provision-web.service").exists()
    assert (image / "etc/systemd/system/provision-web.service").exists()


def test_undeclared_volume_or_network_is_refused(image: Path) -> None:
    for key, value in (("volumes", [{"source": "nodecl", "target": "/x"}]), ("networks", ["nonet"])):
        section = {"runtime": "docker", "containers": [{"name": "a", "image": "x", key: value}]}
        with pytest.raises(StageError, match="not declared"):
            apply(image, section)
    assert not (image / "etc/systemd/system/provision-a.service").exists()


def test_env_value_with_newline_is_refused(image: Path) -> None:
    section = {"runtime": "docker", "containers": [{"name": "a", "image": "x", "env": {"K": "a\nb"}}]}
    with pytest.raises(StageError, match="newline") as info:
        apply(image, section)
    assert "a\nb" not in str(info.value)


# ---- containerd -------------------------------------------------------------------

CONTAINERD = {
    "runtime": "containerd",
    "settings": {"dataRoot": "/var/lib/ctd", "cgroupDriver": "systemd", "storageDriver": "overlay2",
                 "logDriver": "json-file", "logOptions": {"max-size": "5m"}},
    "registries": {
        "mirrors": [{"registry": "docker.io", "endpoints": ["https://mirror.example.com", "http://10.0.0.5:5000"]},
                    {"registry": "quay.io", "endpoints": ["mirror.quay.local"]}],
        "insecure": ["registry.local:5000"],
        "credentials": [{"registry": "ghcr.io", "username": "ci", "password": "ghp_token"}],
    },
    "containers": [{"name": "app", "image": "ghcr.io/acme/app:1", "ports": [{"host": 80, "container": 8080}],
                    "restart": "always"}],
}


def test_containerd_config_v2(image: Path) -> None:
    apply(image, CONTAINERD)
    config_toml = tomllib.loads((image / "etc/containerd/config.toml").read_text())
    cri = config_toml["plugins"]["io.containerd.grpc.v1.cri"]
    assert config_toml["version"] == 2 and config_toml["root"] == "/var/lib/ctd"
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    hub = tomllib.loads((image / "etc/containerd/certs.d/docker.io/hosts.toml").read_text())
    assert hub["server"] == "https://registry-1.docker.io"
    assert list(hub["host"]) == ["https://mirror.example.com", "http://10.0.0.5:5000"]
    assert hub["host"]["https://mirror.example.com"]["capabilities"] == ["pull", "resolve"]
    quay = tomllib.loads((image / "etc/containerd/certs.d/quay.io/hosts.toml").read_text())
    assert list(quay["host"]) == ["https://mirror.quay.local"]
    local = tomllib.loads((image / "etc/containerd/certs.d/registry.local:5000/hosts.toml").read_text())
    assert local["host"]["https://registry.local:5000"]["skip_verify"] is True
    assert "http://registry.local:5000" in local["host"]
    nerdctl = tomllib.loads((image / "etc/nerdctl/nerdctl.toml").read_text())
    assert nerdctl == {"cgroup_manager": "systemd", "snapshotter": "overlayfs"}
    auth = image / "root/.docker/config.json"
    assert meta(auth) == (0o600, 0, 0)
    unit = image / "etc/systemd/system/provision-app.service"
    assert unit_values(unit, "Unit", "Requires") == ["containerd.service"]
    assert unit_values(unit, "Service", "ExecStart") == [
        "/usr/local/bin/nerdctl run --rm --name app --log-driver json-file --log-opt max-size=5m "
        "--publish 80:8080/tcp ghcr.io/acme/app:1"]
    verify(image, "provision-app.service")


def test_containerd_merges_v3_config_and_hosts(image: Path) -> None:
    (image / "etc/containerd/certs.d/docker.io").mkdir(parents=True)
    (image / "etc/containerd/config.toml").write_text(
        'version = 3\noom_score = -999\n\n[plugins."io.containerd.cri.v1.runtime"]\nenable_selinux = true\n'
        '\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "pause:3.9"\n')
    (image / "etc/containerd/certs.d/docker.io/hosts.toml").write_text(
        'server = "https://docker.io"\n\n[host."https://image-mirror.internal"]\ncapabilities = ["pull"]\n')
    apply(image, CONTAINERD)
    config_toml = tomllib.loads((image / "etc/containerd/config.toml").read_text())
    assert config_toml["version"] == 3 and config_toml["oom_score"] == -999
    runtime = config_toml["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["enable_selinux"] is True
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    images = config_toml["plugins"]["io.containerd.cri.v1.images"]
    assert images["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert images["snapshotter"] == "overlayfs"
    assert config_toml["plugins"]["io.containerd.grpc.v1.cri"] == {"sandbox_image": "pause:3.9"}
    hub = tomllib.loads((image / "etc/containerd/certs.d/docker.io/hosts.toml").read_text())
    assert hub["server"] == "https://docker.io"  # the image's choice is kept
    assert list(hub["host"]) == ["https://mirror.example.com", "http://10.0.0.5:5000", "https://image-mirror.internal"]


# ---- podman -------------------------------------------------------------------------

PODMAN = {
    "runtime": "podman",
    "settings": {"cgroupDriver": "cgroupfs", "logDriver": "journald", "logOptions": {"max-size": "10m", "tag": "x"},
                 "storageDriver": "overlay2", "dataRoot": "/var/lib/pods"},
    "registries": {
        "mirrors": [{"registry": "docker.io", "endpoints": ["https://mirror.example.com/v2", "http://10.0.0.5:5000"]}],
        "insecure": ["registry.local:5000"],
        "credentials": [{"registry": "docker.io", "username": "bob", "password": "hunter2-pass"}],
    },
    "volumes": [{"name": "webdata", "driver": "local"}],
    "networks": [{"name": "front", "driver": "bridge", "subnet": "10.89.0.0/24"}],
    "containers": [WEB, {"name": "multi", "image": "busybox", "entrypoint": ["/bin/sh", "-c"],
                         "command": ["sleep 1"], "user": "1000:1000", "networks": ["host"]},
                   {"name": "off", "image": "busybox", "enabled": False}],
}


def test_podman_configuration_files(image: Path) -> None:
    apply(image, PODMAN)
    conf = tomllib.loads((image / "etc/containers/containers.conf").read_text())
    assert conf == {"engine": {"cgroup_manager": "cgroupfs"},
                    "containers": {"log_driver": "journald", "log_size_max": 10 << 20, "log_tag": "x"}}
    registries = tomllib.loads((image / "etc/containers/registries.conf").read_text())
    assert registries["registry"] == [
        {"prefix": "docker.io", "location": "docker.io",
         "mirror": [{"location": "mirror.example.com/v2", "insecure": False},
                    {"location": "10.0.0.5:5000", "insecure": True}]},
        {"prefix": "registry.local:5000", "location": "registry.local:5000", "insecure": True},
    ]
    storage = tomllib.loads((image / "etc/containers/storage.conf").read_text())
    assert storage == {"storage": {"driver": "overlay", "graphroot": "/var/lib/pods",
                                   "runroot": "/run/containers/storage"}}
    auth = image / "etc/containers/auth.json"
    assert meta(auth) == (0o600, 0, 0)
    assert base64.b64decode(json.loads(auth.read_text())["auths"]["docker.io"]["auth"]) == b"bob:hunter2-pass"


def test_podman_merges_registries_and_storage(image: Path) -> None:
    (image / "etc/containers").mkdir()
    (image / "etc/containers/registries.conf").write_text(
        'unqualified-search-registries = ["docker.io", "quay.io"]\n\n'
        '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n'
        '[[registry.mirror]]\nlocation = "old-mirror.local"\n\n'
        '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\nblocked = true\n')
    (image / "etc/containers/storage.conf").write_text(
        '[storage]\ndriver = "btrfs"\nrunroot = "/run/x"\ngraphroot = "/var/lib/containers/storage"\n\n'
        '[storage.options]\nmount_program = "/usr/bin/fuse-overlayfs"\n')
    apply(image, PODMAN)
    registries = tomllib.loads((image / "etc/containers/registries.conf").read_text())
    assert registries["unqualified-search-registries"] == ["docker.io", "quay.io"]
    hub = registries["registry"][0]
    assert [m["location"] for m in hub["mirror"]] == ["mirror.example.com/v2", "10.0.0.5:5000", "old-mirror.local"]
    assert registries["registry"][1] == {"prefix": "quay.io", "location": "quay.io", "blocked": True}
    storage = tomllib.loads((image / "etc/containers/storage.conf").read_text())
    assert storage["storage"]["runroot"] == "/run/x" and storage["storage"]["driver"] == "overlay"
    assert storage["storage"]["options"] == {"mount_program": "/usr/bin/fuse-overlayfs"}


def test_podman_refuses_v1_registries_conf(image: Path) -> None:
    (image / "etc/containers").mkdir()
    (image / "etc/containers/registries.conf").write_text('[registries.search]\nregistries = ["docker.io"]\n')
    with pytest.raises(StageError, match="v1 format"):
        apply(image, PODMAN)


def test_podman_quadlets(image: Path) -> None:
    apply(image, PODMAN)
    quadlets = image / "etc/containers/systemd"
    assert sorted(os.listdir(quadlets)) == [
        "provision-front.network", "provision-multi.container", "provision-off.container",
        "provision-web.container", "provision-webdata.volume"]
    web = parse_unit((quadlets / "provision-web.container").read_text())
    assert web.values("Container", "Image") == ["docker.io/library/nginx:1.27"]
    assert web.values("Container", "ContainerName") == ["web"]
    assert web.values("Container", "EnvironmentFile") == ["/etc/provision/containers/web.env"]
    assert web.values("Container", "PublishPort") == ["8080:80/tcp", "127.0.0.1::53/udp"]
    assert web.values("Container", "Volume") == ["provision-webdata.volume:/data", "/srv/conf:/etc/nginx:ro"]
    assert web.values("Container", "Network") == ["provision-front.network"]
    assert web.values("Container", "Exec") == ['nginx -g "daemon off;"']
    assert web.values("Service", "Restart") == ["always"]
    assert web.values("Service", "Environment") == ["REGISTRY_AUTH_FILE=/etc/containers/auth.json"]
    assert web.values("Install", "WantedBy") == ["multi-user.target"]
    multi = parse_unit((quadlets / "provision-multi.container").read_text())
    assert multi.values("Container", "PodmanArgs") == ['"--entrypoint=[\\"/bin/sh\\", \\"-c\\"]"']
    assert multi.values("Container", "User") == ["1000:1000"]
    assert multi.values("Container", "Network") == ["host"]
    assert not parse_unit((quadlets / "provision-off.container").read_text()).has_section("Install")
    volume = parse_unit((quadlets / "provision-webdata.volume").read_text())
    assert volume.values("Volume", "VolumeName") == ["webdata"]
    network = parse_unit((quadlets / "provision-front.network").read_text())
    assert network.values("Network", "Subnet") == ["10.89.0.0/24"]
    # Quadlets are generated at boot: no links of ours.
    assert not (image / "etc/systemd/system/multi-user.target.wants").exists()


# ---- preload -----------------------------------------------------------------------

@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as s:
        yield s


TARBALL = b"fake image tarball\n" * 1000


@pytest.mark.parametrize(("runtime", "loader"), [
    ("docker", "/usr/bin/docker load --input"),
    ("containerd", "/usr/bin/ctr --namespace default images import"),
    ("podman", "/usr/bin/podman load --input"),
])
def test_preload_fetched_verified_and_loaded_by_a_oneshot(
    image: Path, server: LoopbackHTTPServer, runtime: str, loader: str
) -> None:
    server.route("/img.tar.gz", Reply(body=gzip.compress(TARBALL)))
    digest = hashlib.sha512(TARBALL).hexdigest()
    section = {"runtime": runtime,
               "preload": [{"source": server.url("/img.tar.gz"), "compression": "gzip",
                            "verification": {"hash": f"sha512-{digest}"}}],
               "containers": [{"name": "app", "image": "app:local"}]}
    apply(image, section)
    images = image / "var/lib/provision/images"
    tars = sorted(p for p in os.listdir(images) if p.endswith(".tar"))
    assert len(tars) == 1 and (images / tars[0]).read_bytes() == TARBALL
    assert meta(images / tars[0]) == (0o600, 0, 0) and meta(images) == (0o700, 0, 0)
    assert (images / ".load-pending").exists()
    unit = image / "etc/systemd/system/provision-images-load.service"
    parsed = parse_unit(unit.read_text())
    assert parsed.values("Service", "Type") == ["oneshot"]
    assert parsed.values("Service", "ExecStart") == [f"{loader} /var/lib/provision/images/{tars[0]}"]
    assert parsed.values("Service", "ExecStartPost") == [
        f"/bin/rm -f /var/lib/provision/images/{tars[0]} /var/lib/provision/images/.load-pending"]
    assert parsed.values("Unit", "ConditionPathExists") == ["/var/lib/provision/images/.load-pending"]
    assert (image / "etc/systemd/system/multi-user.target.wants/provision-images-load.service").is_symlink()
    if runtime == "podman":
        app = parse_unit((image / "etc/containers/systemd/provision-app.container").read_text())
    else:
        app = parse_unit((image / "etc/systemd/system/provision-app.service").read_text())
        verify(image, "provision-app.service", "provision-images-load.service")
    assert "provision-images-load.service" in app.values("Unit", "After")[0]
    # Verified tarballs already in place are neither fetched nor written again.
    before = snapshot(image, skip_backups=False)
    assert ContainersStage().plan(config(section), Target(image)).changes == []
    apply(image, section)
    assert server.count("/img.tar.gz") == 1
    assert snapshot(image, skip_backups=False) == before


def test_preload_with_a_bad_hash_changes_nothing(image: Path, server: LoopbackHTTPServer) -> None:
    server.route("/img.tar", Reply(body=TARBALL))
    before = snapshot(image)
    section = {"runtime": "docker", "settings": {"logDriver": "journald"},
               "preload": [{"source": server.url("/img.tar"), "verification": {"hash": "sha256-" + "0" * 64}}]}
    with pytest.raises(StageError, match="preload"):
        apply(image, section)
    assert snapshot(image) == before


# ---- idempotence and crashes -------------------------------------------------------

@pytest.mark.parametrize("section", [DOCKER, CONTAINERD, PODMAN], ids=["docker", "containerd", "podman"])
def test_second_apply_is_a_no_op(image: Path, section: dict[str, Any]) -> None:
    apply(image, section)
    before = snapshot(image, skip_backups=False)
    plan = ContainersStage().plan(config(section), Target(image))
    assert plan.changes == [], plan.changes
    apply(image, section)
    assert snapshot(image, skip_backups=False) == before


DOCKER_PRELOAD = {**DOCKER, "preload": [
    {"source": "data:;base64," + base64.b64encode(TARBALL).decode(),
     "verification": {"hash": "sha256-" + hashlib.sha256(TARBALL).hexdigest()}}]}


@pytest.mark.slow
@pytest.mark.parametrize("section", [DOCKER_PRELOAD, PODMAN], ids=["docker", "podman"])
def test_killed_after_any_item_converges(tmp_path: Path, section: dict[str, Any]) -> None:
    reference = make_image(tmp_path / "reference", systemd_units=False)
    apply(reference, section)
    expected = snapshot(reference)
    kill_at = 1
    while True:
        root = make_image(tmp_path / f"kill{kill_at}", systemd_units=False)
        pid = os.fork()
        if pid == 0:
            try:
                crashpoint._limit, crashpoint._count = kill_at, 0
                apply(root, section)
            finally:
                os._exit(0)  # finished without reaching the crash point
        _, status = os.waitpid(pid, 0)
        crashed = os.waitstatus_to_exitcode(status) == crashpoint.EXIT_STATUS
        apply(root, section)
        assert snapshot(root) == expected, kill_at
        shutil.rmtree(root)
        if not crashed:
            break
        kill_at += 1
    assert kill_at > 5


def test_hostile_symlinks_stay_inside_the_root(image: Path, tmp_path: Path) -> None:
    outside = tmp_path / "host-etc-docker"
    outside.mkdir()
    (outside / "daemon.json").write_text('{"host": true}\n')
    (image / "etc/docker").symlink_to(str(outside))  # absolute: <root><outside> inside the root
    apply(image, DOCKER)
    assert (outside / "daemon.json").read_text() == '{"host": true}\n'
    assert sorted(os.listdir(outside)) == ["daemon.json"]
    inside = image / str(outside).lstrip("/") / "daemon.json"
    assert json.loads(inside.read_text())["log-driver"] == "journald"
    # A credentials directory that is a symlink is refused, not followed.
    shutil.rmtree(image / "root/.docker")
    (image / "root/.docker").symlink_to("../../../../../../..")
    with pytest.raises(StageError, match="in the way"):
        ContainersStage().plan(config(DOCKER), Target(image))
    assert not Path("/config.json").exists() and not (image / "config.json").exists()
