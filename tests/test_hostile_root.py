"""Attacks from the target root itself: the image being provisioned is not trusted code.

- Creating users runs nothing shipped in the target (useradd --root would run
  its hooks as host root).
- Every file the engine reads or locks in the root is a regular file found
  inside the root: a symlink to a host file, a FIFO (the open would hang) or a
  device node like /dev/zero (the read would never end) gives a clear error
  naming the path, never a hang, never a read or write outside the root.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts_fixtures import config, make_debian_root

from provision.errors import ProvisionError
from provision.stages.base import Target
from provision.stages.users import UsersStage
from provision.target.accounts import OwnerLookup
from provision.target.tree import TargetTree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown, mknod and useradd --root need root")

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f core@laptop"
HOOK_DIR = "etc/shadow-maint/useradd-pre.d"


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """A FIFO opened for reading blocks forever: fail the test instead of hanging the suite."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError("hung: the engine opened a FIFO or read a device without end")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _apply(root: Path, passwd: dict[str, object], backend: str | None = None) -> None:
    stage = UsersStage(backend)
    stage.apply(stage.plan(config(passwd), Target(root)), Target(root))


def _hostile_hook(root: Path, outside: Path) -> None:
    """A useradd pre-hook that records that it ran, inside the root and (as if escaped) outside."""
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy("/bin/busybox", root / "bin/sh")  # a static shell, so the hook can really run
    hooks = root / HOOK_DIR
    hooks.mkdir(parents=True)
    hook = hooks / "10-evil"
    hook.write_text(f"#!/bin/sh\necho ran > /hook-ran\necho escaped > {outside}/escaped\n")
    hook.chmod(0o755)


def _shadow_of(root: Path, name: str) -> str | None:
    for line in (root / "etc/shadow").read_text().splitlines():
        if line.split(":")[0] == name:
            return line
    return None


# ---- code shipped in the target never runs ---------------------------------


def test_default_backend_runs_no_hook_of_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVISION_ACCOUNTS_BACKEND", raising=False)
    root, outside = make_debian_root(tmp_path / "root"), tmp_path / "host"
    outside.mkdir()
    _hostile_hook(root, outside)
    _apply(root, {"users": [{"name": "core"}], "groups": [{"name": "ops"}]})
    assert _shadow_of(root, "core") is not None  # the user was made ...
    assert not (root / "hook-ran").exists()  # ... without running the target's hook
    assert not (outside / "escaped").exists()
    assert not (root / outside.relative_to("/") / "escaped").exists()


def test_the_hook_is_real_useradd_root_runs_it(tmp_path: Path) -> None:
    """Why shadow-utils is opt-in: the same root makes useradd --root run the hook as root."""
    root, outside = make_debian_root(tmp_path / "root"), tmp_path / "host"
    outside.mkdir()
    _hostile_hook(root, outside)
    # The hook's outside write lands inside the chroot here; root in a chroot can escape it.
    (root / outside.relative_to("/")).mkdir(parents=True)
    _apply(root, {"users": [{"name": "core"}]}, "shadow-utils")
    assert (root / "hook-ran").read_text() == "ran\n"


# ---- links out of the root --------------------------------------------------


@pytest.mark.parametrize("database", ["passwd", "shadow", "group", "gshadow"])
@pytest.mark.parametrize("style", ["absolute", "climbing"])
def test_database_linked_to_a_host_file_is_refused(tmp_path: Path, database: str, style: str) -> None:
    root = make_debian_root(tmp_path / "root")
    host = tmp_path / "host-secret"
    host.write_text("hostonly:x:0:0::/:/bin/sh\n")
    (root / "etc" / database).unlink()
    target = str(host) if style == "absolute" else "../" * 12 + str(host).lstrip("/")
    os.symlink(target, root / "etc" / database)
    before = (root / "etc/passwd").read_bytes() if database != "passwd" else None
    with pytest.raises(ProvisionError, match=rf"/etc/{database}: symbolic link to .*does not exist in the target"):
        _apply(root, {"users": [{"name": "core"}]})
    assert host.read_text() == "hostonly:x:0:0::/:/bin/sh\n"
    assert os.readlink(root / "etc" / database) == target  # not replaced by an account-less file
    if before is not None:
        assert (root / "etc/passwd").read_bytes() == before


@pytest.mark.parametrize("lock", [".pwd.lock", "passwd.lock", "shadow.lock"])
def test_lock_file_linked_to_a_host_file_is_refused(tmp_path: Path, lock: str) -> None:
    root = make_debian_root(tmp_path / "root")
    host = tmp_path / "host-file"
    host.write_text("12345\n")
    before = host.stat()
    os.symlink(str(host), root / "etc" / lock)
    with pytest.raises(ProvisionError, match=f"/etc/{lock}"):
        _apply(root, {"users": [{"name": "core"}]})
    after = host.stat()
    assert host.read_text() == "12345\n" and (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)
    assert _shadow_of(root, "core") is None


def test_sshd_include_directory_linked_to_the_host_is_not_read(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path / "root")
    host_dir = tmp_path / "host-sshd.d"
    host_dir.mkdir()
    (host_dir / "10-host.conf").write_text("AuthorizedKeysFile /host/only/keys\n")
    shutil.rmtree(root / "etc/ssh/sshd_config.d")
    os.symlink(str(host_dir), root / "etc/ssh/sshd_config.d")
    _apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY]}]})
    assert sorted(os.listdir(host_dir)) == ["10-host.conf"]  # nothing written to the host
    inside = root / str(host_dir).lstrip("/") / "40-provision.conf"
    assert "/host/only/keys" not in inside.read_text()  # the host's file was never read
    assert ".ssh/authorized_keys .ssh/authorized_keys2" in inside.read_text()


def test_skeleton_linked_to_the_host_is_not_copied(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path / "root")
    host_skel = tmp_path / "host-skel"
    host_skel.mkdir()
    (host_skel / ".secret").write_text("host secret\n")
    shutil.rmtree(root / "etc/skel")
    os.symlink(str(host_skel), root / "etc/skel")
    _apply(root, {"users": [{"name": "core"}]})
    assert os.listdir(root / "home/core") == []


def test_skeleton_entries_linking_out_are_copied_as_links(tmp_path: Path) -> None:
    root = make_debian_root(tmp_path / "root")
    host = tmp_path / "host-secret"
    host.write_text("host secret\n")
    os.symlink(str(host), root / "etc/skel/.secret")
    _apply(root, {"users": [{"name": "core"}]})
    copied = root / "home/core/.secret"
    assert copied.is_symlink() and os.readlink(copied) == str(host)  # a link, as in the skeleton


# ---- FIFOs and device nodes ---------------------------------------------------


def _fifo(path: Path) -> None:
    if path.exists() or path.is_symlink():
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    os.mkfifo(path)


def _zero(path: Path) -> None:
    """A character device like /dev/zero: a read never ends."""
    if path.exists() or path.is_symlink():
        path.unlink()
    try:
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod is not allowed here (no CAP_MKNOD)")


HOSTILE_NODES = {"fifo": _fifo, "device": _zero}
# Files the users stage reads or locks, and the message naming each.
READ_OR_LOCKED = ["etc/passwd", "etc/shadow", "etc/group", "etc/gshadow", "etc/subuid",
                  "etc/login.defs", "etc/default/useradd", "etc/.pwd.lock", "etc/passwd.lock",
                  "etc/ssh/sshd_config", "etc/ssh/sshd_config.d/10-image.conf"]


@pytest.mark.parametrize("kind", sorted(HOSTILE_NODES))
@pytest.mark.parametrize("path", READ_OR_LOCKED)
def test_fifo_or_device_is_a_clear_error_not_a_hang(tmp_path: Path, kind: str, path: str) -> None:
    root = make_debian_root(tmp_path / "root")
    HOSTILE_NODES[kind](root / path)
    with pytest.raises(ProvisionError) as caught:
        _apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY]}]})
    assert f"/{path}" in str(caught.value)
    assert "FIFO" in str(caught.value) or "device node" in str(caught.value)


@pytest.mark.parametrize("kind", sorted(HOSTILE_NODES))
def test_fifo_or_device_in_the_skeleton_is_skipped(tmp_path: Path, kind: str) -> None:
    root = make_debian_root(tmp_path / "root")
    HOSTILE_NODES[kind](root / "etc/skel/.trap")
    _apply(root, {"users": [{"name": "core"}]})
    assert sorted(os.listdir(root / "home/core")) == [".bash_profile", ".bashrc", ".config", ".profile"]


@pytest.mark.parametrize("kind", sorted(HOSTILE_NODES))
def test_owner_lookup_refuses_a_fifo_or_device_passwd(tmp_path: Path, kind: str) -> None:
    root = make_debian_root(tmp_path / "root")
    HOSTILE_NODES[kind](root / "etc/group")
    with TargetTree(root) as tree, pytest.raises(ProvisionError, match=r"/etc/group: is a (FIFO|device node)"):
        OwnerLookup(tree)


def test_tree_open_read_refuses_every_special_node_and_returns_regular_files(tmp_path: Path) -> None:
    _fifo(tmp_path / "fifo")
    _zero(tmp_path / "zero")
    (tmp_path / "file").write_text("ok")
    os.symlink("file", tmp_path / "link")
    with TargetTree(tmp_path) as tree:
        for name in ("fifo", "zero"):
            with pytest.raises(ProvisionError, match=rf"/{name}: is a (FIFO|device node), not a regular file"):
                tree.read_bytes(f"/{name}")
        assert tree.read_bytes("/file") == b"ok"
        assert tree.read_bytes("/link") == b"ok"  # followed inside the root
        with pytest.raises(ProvisionError, match="/link: is a symbolic link"):
            tree.read_bytes("/link", follow=False)
        assert tree.read_bytes("/missing") is None


@pytest.mark.parametrize("path", ["etc/login.defs", "etc/default/useradd", "etc/ssh/sshd_config",
                                  "etc/ssh/sshd_config.d/10-image.conf"])
def test_inputs_linked_out_of_the_root_are_named_errors(tmp_path: Path, path: str) -> None:
    """A link to a host file resolves inside the root, where it dangles: an error, never "absent"."""
    root = make_debian_root(tmp_path / "root")
    host = tmp_path / "host-file"
    host.write_text("AuthorizedKeysFile /host/keys\nUID_MIN 5\n")
    (root / path).unlink(missing_ok=True)
    os.symlink(str(host), root / path)
    with pytest.raises(ProvisionError, match=rf"/{path}: symbolic link to {host}, which does not exist"):
        _apply(root, {"users": [{"name": "core", "sshAuthorizedKeys": [KEY]}]})
