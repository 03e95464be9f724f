"""A run killed at any point converges on rerun to the tree an uninterrupted run makes.

The run is killed after each applied item in turn (the documented seam
PROVISION_TEST_CRASH_AFTER=N, which os._exit()s like a kill) and at random
moments with SIGKILL; the rerun must produce exactly the same tree: no
doubled appends, no stray scratch files, same modes and owners.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import REPO, data_url, make_root, manifest

from provision.stages.crashpoint import ENV, EXIT_STATUS

# Every stage that works inside the root: users, files, network, units and containers.
DRIVER = (
    "import sys, json, hashlib; from pathlib import Path; sys.path.insert(0, 'tests');"
    "from apply_fixtures import config;"
    "from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages;"
    "spec = json.load(open(sys.argv[1]));"
    "digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest();"
    "apply_config(ApplyRequest(config(spec), digest, Path(sys.argv[2])),"
    " load_stages(['users', 'files', 'network', 'units', 'containers']))"
)

SPEC: dict[str, Any] = {
    "storage": {
        "directories": [{"path": "/var/lib/app", "user": {"name": "core"}, "mode": 0o750},
                        {"path": "/srv", "mode": 0o700}],
        "files": [
            {"path": "/etc/hosts", "append": [{"source": data_url("10.0.0.1 db\n")},
                                              {"source": data_url("10.0.0.2 cache\n")}]},
            {"path": "/etc/motd", "mode": 0o600},
            {"path": "/etc/app/app.conf", "contents": {"source": data_url("a=1\n")},
             "append": [{"source": data_url("b=2\n")}], "user": {"name": "core"}},
            {"path": "/etc/issue", "overwrite": True, "contents": {"source": data_url("welcome\n")}},
            {"path": "/var/lib/app/state", "contents": {"source": data_url("s")}, "mode": 0o640},
        ],
        "links": [{"path": "/usr/local/bin/app", "target": "/etc/app/app.conf"},
                  {"path": "/etc/app/hard", "target": "/etc/app/app.conf", "hard": True}],
    },
    "systemd": {"units": [
        {"name": "app.service", "enabled": True,
         "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=web.service\n",
         "dropins": [{"name": "env.conf", "contents": "[Service]\nEnvironment=A=1\n"}]},
        {"name": "job@.service", "contents": "[Service]\nExecStart=/bin/true %i\n[Install]\nWantedBy=multi-user.target\n"},
        {"name": "job@one.service", "enabled": True},
        {"name": "cups.service", "mask": True},
    ]},
    # Users and containers call the crash point too: every one of their items is a kill point.
    "passwd": {
        "groups": [{"name": "appgrp", "gid": 3200}],
        "users": [{"name": "app", "uid": 3201, "groups": ["appgrp"], "sshAuthorizedKeys": [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q app@ci"]}],
    },
    "network": {
        "renderer": "networkd",
        "interfaces": [{"name": "eth0", "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1"},
                       {"name": "v5", "type": "vlan", "vlan": {"id": 5, "link": "eth0"}, "dhcp4": True}],
        "nameservers": {"addresses": ["192.0.2.53"]},
    },
    "containers": {
        "runtime": "podman",
        "settings": {"storageDriver": "overlay"},
        "containers": [{"name": "web", "image": "docker.io/library/nginx:1.27", "env": {"MODE": "prod"},
                        "ports": [{"host": 8080, "container": 80}]}],
    },
}


def base_root(path: Path) -> Path:
    root = make_root(path)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc/motd").write_text("image motd\n")
    (root / "etc/issue").write_text("old issue\n")
    return root


def run(spec_path: Path, root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if k != ENV}
    full.update(env or {})
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(spec_path), str(root)], cwd=REPO,
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes]) -> int:
    _out, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, EXIT_STATUS, -signal.SIGKILL):
        raise AssertionError(err.decode())
    return proc.returncode


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("crash")
    spec_path = base / "spec.json"
    spec_path.write_text(json.dumps(SPEC))
    root = base_root(base / "reference")
    assert finish(run(spec_path, root)) == 0
    tree = manifest(root)
    # Sanity: the reference itself is what the config says.
    assert (root / "etc/hosts").read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n10.0.0.2 cache\n"
    assert (root / "etc/app/app.conf").read_text() == "a=1\nb=2\n"
    assert "Address=192.0.2.10/24" in (root / "etc/systemd/network/10-provision-eth0.network").read_text()
    return spec_path, tree


def test_killed_after_every_item_converges(expected: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    spec_path, tree = expected
    crashed_at = []
    for n in range(1, 120):
        root = base_root(tmp_path / f"n{n}")
        if finish(run(spec_path, root, {ENV: str(n)})) == 0:
            break  # n is past the last item: the run finished
        crashed_at.append(n)
        # Killed again at the same count during the resumed run, then left to finish.
        finish(run(spec_path, root, {ENV: str(n)}))
        assert finish(run(spec_path, root)) == 0
        assert manifest(root) == tree, f"after a kill at item {n}"
        shutil.rmtree(root)
    assert len(crashed_at) >= 30  # every item of the config was a kill point


@pytest.mark.slow
def test_sigkill_at_random_moments_converges(expected: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    spec_path, tree = expected
    rng = random.Random(5)
    for attempt in range(12):
        root = base_root(tmp_path / f"k{attempt}")
        proc = run(spec_path, root)
        time.sleep(rng.uniform(0.05, 0.6))  # interpreter start-up is part of the window
        proc.send_signal(signal.SIGKILL)
        finish(proc)
        assert finish(run(spec_path, root)) == 0
        assert manifest(root) == tree, f"after SIGKILL in attempt {attempt}"
        shutil.rmtree(root)


def test_resume_after_a_kill_keeps_users_and_skips_finished_stages(tmp_path: Path) -> None:
    """Through the CLI with the users stage: a kill in the files stage, then a rerun."""
    from apply_fixtures import run_cli, write_config

    spec = {"passwd": {"users": [{"name": "svc", "uid": 3100, "noCreateHome": True}]},
            "storage": {"files": [{"path": f"/etc/svc/f{i}", "user": {"name": "svc"},
                                   "contents": {"source": data_url(f"{i}\n")}} for i in range(4)]}}
    cfg = write_config(tmp_path / "c.json", spec)
    reference = base_root(tmp_path / "reference")
    assert run_cli("apply", "--stages", "users,files", "--root", str(reference), str(cfg)).returncode == 0
    resumed_after_users = 0
    for n in (1, 3, 5, 8):
        root = base_root(tmp_path / f"n{n}")
        killed = run_cli("apply", "--stages", "users,files", "--root", str(root), str(cfg), env={ENV: str(n)})
        assert killed.returncode == EXIT_STATUS
        status = run_cli("status", "--root", str(root))
        assert status.returncode == 1 and "unfinished" in status.stdout
        record = json.loads((root / "etc/.provision/result.json").read_text())
        users_done = next(s for s in record["stages"] if s["name"] == "users")["status"] == "applied"
        again = run_cli("apply", "--stages", "users,files", "--root", str(root), str(cfg))
        assert again.returncode == 0, again.stderr
        if users_done:  # killed in the files stage: the finished users stage is not run again
            resumed_after_users += 1
            assert "users: already applied" in again.stdout
        assert manifest(root) == manifest(reference), f"after a kill at item {n}"
        rows = [line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("svc:")]
        assert len(rows) == 1  # no doubled user
    assert resumed_after_users >= 2


# The instance stage applies a generated config through the users and files
# stages: its pre-images must not take the place of the config's own.
INSTANCE_DRIVER = DRIVER.replace(
    "load_stages(['users', 'files', 'network', 'units', 'containers'])",
    "load_stages(['users', 'instance', 'files'])").replace(
    "Path(sys.argv[2]))",
    "Path(sys.argv[2]), instance=InstanceData(platform='aws', instance_id='i-1',"
    " local_hostname='web-1.example', public_keys=(PublicKey(sys.argv[3]),)))").replace(
    "from apply_fixtures import config;",
    "from apply_fixtures import config; from provision.instance.data import InstanceData, PublicKey;")
INSTANCE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f aws"


def test_killed_with_the_instance_stage_converges(tmp_path: Path) -> None:
    spec = {"passwd": {"users": [{"name": "app", "uid": 3201, "sshAuthorizedKeys": [INSTANCE_KEY]}]},
            "storage": {"files": [
                {"path": "/etc/hosts", "append": [{"source": data_url("10.0.0.1 db\n")}]},
                {"path": "/etc/motd", "append": [{"source": data_url("hello\n")}]}]}}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))

    def instance_root(path: Path) -> Path:
        root = base_root(path)
        (root / "etc/provision").mkdir(parents=True, exist_ok=True)
        (root / "etc/provision/image.json").write_text(json.dumps({"default_user": {"name": "admin"}}))
        return root

    def run_instance(root: Path, env: dict[str, str] | None = None, *extra: str) -> int:
        full = {k: v for k, v in os.environ.items() if k != ENV}
        full.update(env or {})
        proc = subprocess.Popen([sys.executable, "-c", INSTANCE_DRIVER, str(spec_path), str(root),
                                 INSTANCE_KEY, *extra], cwd=REPO, env=full,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return finish(proc)

    reference = instance_root(tmp_path / "reference")
    assert run_instance(reference) == 0
    assert (reference / "etc/hosts").read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n"
    assert (reference / "etc/hostname").read_text() == "web-1\n"
    assert (reference / "home/admin/.ssh/authorized_keys.d/provision").exists()
    tree = manifest(reference)
    kills = 0
    for n in range(1, 60):
        root = instance_root(tmp_path / f"n{n}")
        if run_instance(root, {ENV: str(n)}) == 0:
            break
        kills += 1
        run_instance(root, {ENV: str(n)})
        assert run_instance(root) == 0
        assert manifest(root) == tree, f"after a kill at item {n}"
        shutil.rmtree(root)
    assert kills >= 6  # users, the instance stage's user and hostname, and both appends
    # Each config keeps its own pre-images: the instance stage's generated one beside the user's.
    journals = sorted(p.name.rsplit("-", 1)[0] for p in (reference / "etc/.provision/journal").glob("*.json"))
    assert journals == ["files", "files", "users", "users"]
