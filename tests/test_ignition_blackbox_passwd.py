"""coreos/ignition's passwd blackbox tests, ported as data (tests/data/ignition-blackbox/passwd.yaml).

Each case's config is applied with ``provision apply --root`` (useradd and
groupadd ``--root``, so as root) to a fresh copy of Ignition's users.go base
root, and the account entries, homes and SSH key files the case expects are
checked. Debian's Ignition 2.14 then applies the same config to its own copy:
the expectations must hold there too, and both engines must leave identical
account files and homes (the key file's name apart).

A case with ``mount`` also gets a fresh loop device formatted as it says,
named ``$DEVICE`` in its config: provision's mount stage mounts it inside
the root; for Ignition 2.14, whose disks and mount stages need systemd and
SELinux here, the test does what Ignition's mount stage does (the mount
point's missing directories made 0755 and listed in the state file's
notatedDirectories, then the mount) before its files stage. Afterwards
nothing may be left mounted, and the filesystem's own root and contents
are checked as well as the directories beneath it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_fixtures import IGNITION
from disk_fixtures import LOOP_SKIP, attached, mounted, sh

from provision.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "passwd.yaml").read_text())
# the key of Ignition's users.go (a real RSA key: provision checks a key's data)
KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDBRZPFJNOvQRfokigTtl0IBi71LHZrFOk4EJ3Zowtk/bX5uIVai0Cd4+hqlocYL10idgtF"
       "BH28skeKfsmHwgS9XwOvP+g+kqAl7yCz8JEzIUzl1fxNZDToi0jA3B5MwXkpt+IWfnabwi2cRZhlzrz9rO+eExu5s3NfaRmmmCYrjCJIRPKSCrW8U"
       "0n9fVSbX4PDdMXVmH7r+t8MtR8523vCbakFR/Y0YIqkPVdfuUXHh9rDCdH4B7mt7nYX2LWQXGUvmI13mgQoy04ifkaR3ImuOMp3Y1J1gm6clO74I"
       "MCq/sK9+XJhbxMPPHUoUJ2EwbaG7Dbh3iqz47e9oVki4gIH stephenlowrie@localhost.localdomain")
# users.go's base root, file by file (mode)
BASE = {
    "passwd": ("root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:CoreOS Admin:/home/core:/bin/bash\n"
               "systemd-coredump:x:998:998:systemd Core Dumper:/:/sbin/nologin\nfleet:x:253:253::/:/sbin/nologin\n", 0o644),
    "shadow": ("root:*:15887:0:::::\ncore:*:15887:0:::::\nsystemd-coredump:!!:17301::::::\nfleet:!!:17301::::::\n", 0o600),
    "group": ("root:x:0:root\nwheel:x:10:root,core\nsudo:x:150:\ndocker:x:233:core\nsystemd-coredump:x:998:\n"
              "fleet:x:253:core\ncore:x:500:\nrkt-admin:x:999:\nrkt:x:251:core\n", 0o644),
    "gshadow": ("root:*::root\nusers:*::\nsudo:*::\nwheel:*::root,core\nsudo:*::\ndocker:*::core\nsystemd-coredump:!!::\n"
                "fleet:!!::core\nrkt-admin:!!::\nrkt:!!::core\ncore:*::\n", 0o600),
    "nsswitch.conf": ("passwd:      files\nshadow:      files\ngroup:       files\n", 0o644),
    "login.defs": ("MAIL_DIR\t/var/spool/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_MIN_LEN\t5\nPASS_WARN_AGE\t7\n"
                   "UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 201\nSYS_UID_MAX 999\nGID_MIN 1000\nGID_MAX 60000\n"
                   "SYS_GID_MIN 201\nSYS_GID_MAX 999\nCREATE_HOME\tyes\nUMASK 077\nUSERGROUPS_ENAB yes\n"
                   "ENCRYPT_METHOD SHA512\n", 0o644),
}
ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow")
_LATE_FAILURES = ("failed to handle relabeling", "/run/systemd/private")  # after the users are made
_IGNITION_SPECS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0")  # Debian's ignition 2.14

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="useradd --root needs root")


def _seed(root: Path, case: dict[str, Any]) -> None:
    """users.go's base root, plus the case's `add`: lines appended to account files, homes (path: uid)."""
    (root / "etc").mkdir(parents=True)
    add = case.get("add", {})
    for name, (text, mode) in BASE.items():
        (root / "etc" / name).write_text(text + "".join(line + "\n" for line in add.get(name, [])))
        (root / "etc" / name).chmod(mode)
    for home, uid in add.get("homes", {}).items():
        path = root / home.lstrip("/")
        path.mkdir(parents=True, mode=0o700)
        os.chown(path, uid, uid)


def _config(case: dict[str, Any], device: str = "") -> str:
    text = json.dumps({"ignition": {"version": case.get("version", "3.0.0")}, **case["config"]})
    return text.replace('"KEY"', json.dumps(KEY)).replace('"$DEVICE"', json.dumps(device))


@contextlib.contextmanager
def _device(case: dict[str, Any], work: Path, name: str) -> Iterator[str]:
    """The case's ``mount`` filesystem on a fresh loop device ("" for a case without one); released after."""
    if "mount" not in case:
        yield ""
        return
    if LOOP_SKIP:
        pytest.skip(LOOP_SKIP)
    with attached(work / f"{name}.img", 64) as device:
        sh(f"mkfs.{case['mount']['format']}", "-q", "-F", "-L", case["mount"]["label"], device)
        yield device


def _owner_mode(path: Path) -> list[int]:
    info = path.lstat()
    return [stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid]


def _check_mount(root: Path, case: dict[str, Any], device: str, work: Path) -> None:
    """Nothing left mounted in ``root``; the filesystem's root dir and contents are as the case says."""
    if not device:
        return
    inside = [line for line in sh("findmnt", "-rn", "-o", "TARGET").stdout.splitlines()
              if line.startswith(str(root) + "/")]
    assert inside == [], f"still mounted: {inside}"
    with mounted(device, work / "look", "ro") as top:
        assert _owner_mode(top) == case["mount"]["root"], "the mounted filesystem's root"
        found = {str(p.relative_to(top)): _owner_mode(p) for p in top.rglob("*")}
        assert found == case["mount"]["contents"], "the mounted filesystem's contents"


def _days() -> str:
    return str(int(time.time()) // 86400)


def _entries(root: Path, name: str) -> dict[str, str]:
    lines = (root / "etc" / name).read_text().splitlines()
    return {line.split(":", 1)[0]: line for line in lines if line}


def _check(root: Path, case: dict[str, Any], keyfile: str) -> None:
    for name in ACCOUNT_FILES:
        entries = _entries(root, name)
        for line in case.get(name, []):
            expected = line.replace("DAYS", _days())
            assert entries.get(expected.split(":", 1)[0]) == expected, f"/etc/{name}: {sorted(entries.values())}"
    for name, absent in case.get("missing", {}).items():
        entries = _entries(root, name)
        assert not set(absent) & set(entries), f"/etc/{name} still has {set(absent) & set(entries)}"
    homes = {line.split(":")[0]: line.split(":")[5] for line in _entries(root, "passwd").values()}
    ids = {line.split(":")[0]: (int(line.split(":")[2]), int(line.split(":")[3])) for line in _entries(root, "passwd").values()}
    for user, mode in case.get("home", {}).items():
        info = (root / homes[user].lstrip("/")).lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == mode, f"home of {user}"
        assert (info.st_uid, info.st_gid) == ids[user], f"home of {user} owned by {info.st_uid}:{info.st_gid}"
    for path in case.get("gone", []):
        assert not os.path.lexists(root / path.lstrip("/")), f"{path} still exists"
    for path in case.get("kept", []):
        assert os.path.lexists(root / path.lstrip("/")), f"{path} is gone"
    for user in case.get("nohome", []):
        assert not os.path.lexists(root / homes[user].lstrip("/")), f"{user} got a home"
    for path, expected in case.get("nodes", {}).items():
        assert _owner_mode(root / path.lstrip("/")) == expected, f"{path}: [mode, uid, gid]"
    for user, contents in case.get("keys", {}).items():
        path = root / homes[user].lstrip("/") / ".ssh" / "authorized_keys.d" / keyfile
        assert path.read_text() == contents.replace("KEY", KEY), path
        assert (path.stat().st_uid, path.stat().st_gid) == ids[user], path


def _provision(root: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    status = main(["apply", "--root", str(root), str(config)])
    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err


def _ignition(root: Path, config: Path, work: Path, before_files: Callable[[], None] = lambda: None) -> str | None:
    """Run Ignition 2.14's fetch and files stages (``before_files`` between); why it failed, or None."""
    env = {**os.environ, "IGNITION_CONFIG_FILE": str(config)}
    common = ["-platform", "file", "-root", str(root), "-log-to-stdout",
              "-config-cache", str(work / "cache.json"), "-state-file", str(work / "state")]
    for stage in ("fetch", "files"):
        if stage == "files":
            before_files()
        run = subprocess.run([str(IGNITION), "-stage", stage, *common], env=env, capture_output=True, text=True,
                             timeout=60)
        failures = [line for line in run.stdout.splitlines() if "Ignition failed" in line]
        late = stage == "files" and failures and any(k in failures[-1] for k in _LATE_FAILURES)
        if run.returncode != 0 and not late:
            return failures[-1] if failures else run.stdout[-3000:]
    return None


def _ignition_mount_stage(case: dict[str, Any], root: Path, device: str, work: Path) -> None:
    """What Ignition's mount stage does for the case's filesystem: missing components made 0755 and
    recorded (shallowest first) in the state file's notatedDirectories, then the mount."""
    path = case["config"]["storage"]["filesystems"][0]["path"]
    made = []
    for depth in range(1, len(Path(path).parts)):
        component = "/" + "/".join(Path(path).parts[1:depth + 1])
        if not (root / component.lstrip("/")).exists():
            (root / component.lstrip("/")).mkdir(mode=0o755)
            (root / component.lstrip("/")).chmod(0o755)
            made.append(component)
    state = json.loads((work / "state").read_text())
    (work / "state").write_text(json.dumps({**state, "notatedDirectories": made}))
    sh("mount", "-t", case["mount"]["format"], device, str(root / path.lstrip("/")))


def _unmount_under(root: Path) -> None:
    points = [line for line in sh("findmnt", "-rn", "-o", "TARGET").stdout.splitlines()
              if line.startswith(str(root) + "/")]
    for point in reversed(points):
        sh("umount", point)


def _tree(root: Path, keyfile: str) -> dict[str, tuple[Any, ...]]:
    """Account files and homes: type, mode, owner and contents, the engine's key file under one name."""
    found: dict[str, tuple[Any, ...]] = {}
    for name in ACCOUNT_FILES:
        found[f"etc/{name}"] = ((root / "etc" / name).read_text(),)
    for top in ("home", "var/home"):
        for folder, dirs, files in os.walk(root / top):
            for name in dirs + files:
                path = Path(folder) / name
                info = path.lstat()
                rel = str(path.relative_to(root)).replace(f"authorized_keys.d/{keyfile}", "authorized_keys.d/ENGINE")
                body = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
                found[rel] = (info.st_mode, info.st_uid, info.st_gid, body)
    return found


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_passwd_case(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "skip" in case:
        pytest.skip(case["skip"])
    if "known_bug" in case:
        request.applymarker(pytest.mark.xfail(reason=case["known_bug"], strict=True))
    monkeypatch.setenv("PROVISION_STATE_DIR", str(tmp_path / "state"))  # its own record of mounts
    root = tmp_path / "root"
    _seed(root, case)
    with _device(case, tmp_path, "provision") as device:
        config = tmp_path / "config.ign"
        config.write_text(_config(case, device))
        _provision(root, config, capsys)
        _check(root, case, "provision")
        _check_mount(root, case, device, tmp_path)


_RUNS = [c for c in CASES if "skip" not in c and c.get("version", "3.0.0") in _IGNITION_SPECS]


@pytest.fixture
def searchable_tmp() -> Iterator[Path]:
    """A work directory every user can search: Ignition writes key files as their user."""
    path = Path(tempfile.mkdtemp(prefix="provision-passwd-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(not IGNITION.exists(), reason="Debian package ignition not installed")
@pytest.mark.parametrize("case", _RUNS, ids=[c["name"] for c in _RUNS])
def test_real_ignition_makes_the_same_accounts(case: dict[str, Any], searchable_tmp: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Ignition 2.14 on its own copy: the case's expectations hold, and both roots' accounts are identical."""
    monkeypatch.setenv("PROVISION_STATE_DIR", str(searchable_tmp / "provision-state"))
    with _device(case, searchable_tmp, "provision") as our_device, \
            _device(case, searchable_tmp, "ignition") as their_device:
        _compare_with_ignition(case, searchable_tmp, capsys, our_device, their_device)


def _compare_with_ignition(case: dict[str, Any], work: Path, capsys: pytest.CaptureFixture[str],
                           our_device: str, their_device: str) -> None:
    config, their_config = work / "config.ign", work / "ignition.ign"
    config.write_text(_config(case, our_device))
    their_config.write_text(_config(case, their_device))
    ours, theirs = work / "provision", work / "ignition"
    _seed(ours, case)
    _seed(theirs, case)
    mount_stage = (lambda: _ignition_mount_stage(case, theirs, their_device, work)) if their_device else (lambda: None)
    try:
        failure = _ignition(theirs, their_config, work, mount_stage)
    finally:
        _unmount_under(theirs)
    if "ignition_fails" in case:
        # Ignition 2.14 cannot do what the case asks (the case says why); provision's side is checked above
        assert failure is not None and case["ignition_fails"] in failure, failure
        return
    assert failure is None, failure
    _check(theirs, {**case, **case.get("ignition", {})}, "ignition")
    _check_mount(theirs, case, their_device, work)
    if "known_bug" in case or "ignition" in case:
        return  # provision differs there on purpose (the case's difference) or by a known bug
    _provision(ours, config, capsys)
    _check_mount(ours, case, our_device, work)
    assert _tree(ours, "provision") == _tree(theirs, "ignition")


def test_the_passwd_port_counts() -> None:
    """Ignition's passwd tests transcribed here (INDEX.yaml says why the others are not); a skipped case says why."""
    assert {c["from"] for c in CASES if c["from"].startswith("positive/")} == {
        f"positive/passwd/users.go {name}" for name in (
            "AddPasswdUsers", "UseAuthorizedKeysFile", "AddGroups", "EnsureGroupIdempotent", "DeletePasswdUsers",
            "AddPasswdUserWithMountPoints")}
    assert all(c["skip"].strip() for c in CASES if "skip" in c)
