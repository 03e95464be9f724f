"""Safe path resolution in the target: nothing outside the root is ever touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from apply_fixtures import manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.target.tree import TargetPathError, TargetTree


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A root and, beside it, an 'outside' directory standing for the host."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "shadow").write_text("host secret\n")
    return root, outside


def write(root: Path, path: str, data: bytes = b"new\n") -> None:
    with TargetTree(root) as tree:
        tree.write_file(path, [data], mode=0o644, uid=0, gid=0)


def test_absolute_symlinked_parent_resolves_inside_root(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "etc").symlink_to(outside / "etc")  # e.g. /etc -> /tmp/.../outside/etc on the host
    before = manifest(outside)
    write(root, "/etc/shadow")
    assert manifest(outside) == before
    inside = root / str(outside / "etc" / "shadow").lstrip("/")
    assert inside.read_bytes() == b"new\n"


def test_relative_symlink_climbing_out_stays_at_root(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "etc").symlink_to("../../../../../../outside/etc")
    before = manifest(outside)
    write(root, "/etc/shadow")
    assert manifest(outside) == before
    assert (root / "outside" / "etc" / "shadow").read_bytes() == b"new\n"


def test_dotdot_in_config_path_stays_in_root(world: tuple[Path, Path]) -> None:
    root, outside = world
    before = manifest(outside)
    write(root, "/../../outside/etc/shadow")
    assert manifest(outside) == before
    assert (root / "outside" / "etc" / "shadow").read_bytes() == b"new\n"


def test_final_symlink_is_replaced_not_written_through(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "etc").mkdir()
    (root / "etc" / "passwd").symlink_to(outside / "etc" / "shadow")
    write(root, "/etc/passwd")
    assert (outside / "etc" / "shadow").read_text() == "host secret\n"
    assert not (root / "etc" / "passwd").is_symlink()
    assert (root / "etc" / "passwd").read_bytes() == b"new\n"


def test_symlink_loop_is_an_error_and_changes_nothing(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("/a")
    before_root, before_out = manifest(root), manifest(outside)
    with pytest.raises(TargetPathError, match="too many levels"):
        write(root, "/a/x")
    assert manifest(root) == before_root
    assert manifest(outside) == before_out


def test_parent_that_is_a_file_is_an_error(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "etc").write_text("not a dir")
    with pytest.raises(TargetPathError, match="not a directory"):
        write(root, "/etc/x")


def test_reads_follow_links_inside_the_root_only(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "etc").mkdir()
    (root / "etc" / "passwd").symlink_to(outside / "etc" / "shadow")
    with TargetTree(root) as tree:
        assert tree.read_bytes("/etc/passwd") is None  # the host file is not reachable
        (root / str(outside / "etc").lstrip("/")).mkdir(parents=True)
        (root / str(outside / "etc" / "shadow").lstrip("/")).write_text("target's own\n")
        assert tree.read_bytes("/etc/passwd") == b"target's own\n"


def test_hard_link_cannot_reach_outside(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "host").symlink_to(outside / "etc")
    with TargetTree(root) as tree, pytest.raises(TargetPathError, match="does not exist"):
        tree.hardlink("/stolen", "/host/shadow")
    assert (outside / "etc" / "shadow").stat().st_nlink == 1
    assert not (root / "stolen").exists()


def test_link_swapped_into_a_parent_while_working(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "d").mkdir()
    with TargetTree(root) as tree:
        with tree.parent("/d/f", create=True) as (dir_fd, name):
            # An attacker replaces /d by a link to the host after we resolved it.
            os.rename(root / "d", root / "d-old")
            (root / "d").symlink_to(outside / "etc")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
            os.close(fd)
        tree.write_file("/d/shadow", [b"x"], mode=0o600, uid=0, gid=0)
    assert (root / "d-old" / "f").exists()
    assert (outside / "etc" / "shadow").read_text() == "host secret\n"
    assert sorted(p.name for p in (outside / "etc").iterdir()) == ["shadow"]


def test_atomic_write_keeps_old_file_when_writing_fails(world: tuple[Path, Path]) -> None:
    root, _ = world
    write(root, "/etc/motd", b"old\n")

    def failing() -> object:
        yield b"partial"
        raise OSError("disk on fire")

    with TargetTree(root) as tree, pytest.raises(OSError, match="disk on fire"):
        tree.write_file("/etc/motd", failing(), mode=0o644, uid=0, gid=0)  # type: ignore[arg-type]
    assert (root / "etc" / "motd").read_bytes() == b"old\n"
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["motd"]


def test_missing_parents_are_0755_root_even_with_a_tight_umask(world: tuple[Path, Path]) -> None:
    root, _ = world
    old = os.umask(0o077)
    try:
        write(root, "/a/b/c/file")
    finally:
        os.umask(old)
    for rel in ("a", "a/b", "a/b/c"):
        st = (root / rel).stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o755, 0, 0)


# A hostile tree: random symlinks (absolute, relative, climbing, looping) and
# random paths to write. Whatever happens, the outside never changes and every
# write lands inside the root.
_names = st.sampled_from(["a", "b", "etc", "..", ".", "x"])
_link_targets = st.lists(_names, min_size=0, max_size=5).flatmap(
    lambda parts: st.sampled_from(["/", "", "../../", "/../"]).map(lambda head: head + "/".join(parts))
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    links=st.lists(st.tuples(st.sampled_from(["a", "b", "etc", "a/x", "etc/x"]), _link_targets), max_size=5),
    writes=st.lists(st.lists(_names, min_size=1, max_size=5).map(lambda p: "/" + "/".join(p)), min_size=1, max_size=4),
    escape=st.booleans(),
)
def test_hostile_trees_never_leak(tmp_path_factory: pytest.TempPathFactory, links: list[tuple[str, str]],
                                  writes: list[str], escape: bool) -> None:
    base = tmp_path_factory.mktemp("hostile")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "keep").write_text("host")
    for where, target in links:
        link = root / where
        if escape:
            target = str(outside) + "/" + target
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target or ".")
        except OSError:
            continue
    before = manifest(outside)
    with TargetTree(root) as tree:
        for path in writes:
            for op in ("file", "dir", "link"):
                try:
                    if op == "file":
                        tree.write_file(path, [b"data"], mode=0o644, uid=0, gid=0)
                    elif op == "dir":
                        tree.make_directory(path + "/d", mode=0o755, uid=0, gid=0, replace=True)
                    else:
                        tree.symlink(path + "-l", "/outside", uid=0, gid=0)
                except (TargetPathError, OSError):
                    pass
    assert manifest(outside) == before
    assert (outside / "keep").read_text() == "host"


def test_cached_walks_follow_replacements(world: tuple[Path, Path]) -> None:
    """Directory fds are reused between calls; a replaced or removed node must not be."""
    root, _ = world
    (root / "x").mkdir()
    (root / "y").mkdir()
    (root / "a").mkdir()
    (root / "a/link").symlink_to("/x")
    with TargetTree(root) as tree:
        tree.write_file("/a/link/f", [b"1"], mode=0o644, uid=0, gid=0)
        tree.symlink("/a/link", "/y", uid=0, gid=0)  # the walked link now points elsewhere
        tree.write_file("/a/link/g", [b"2"], mode=0o644, uid=0, gid=0)
        tree.write_file("/a/b/f", [b"3"], mode=0o644, uid=0, gid=0)
        tree.write_file("/a/b", [b"now a file"], mode=0o644, uid=0, gid=0)  # replaces the dir
        with pytest.raises(TargetPathError, match="not a directory"):
            tree.write_file("/a/b/g", [b"4"], mode=0o644, uid=0, gid=0)
        tree.remove("/a/b")
        tree.write_file("/a/b/h", [b"5"], mode=0o644, uid=0, gid=0)
        with tree.deferred():
            for i in range(300):  # more parents than the cache holds, writes batched
                tree.write_file(f"/many/d{i}/f", [b"x"], mode=0o644, uid=0, gid=0)
    assert (root / "x/f").read_bytes() == b"1" and (root / "y/g").read_bytes() == b"2"
    assert not (root / "x/g").exists()
    assert (root / "a/b/h").read_bytes() == b"5"
    assert len(list((root / "many").glob("d*/f"))) == 300
    assert not list(root.rglob(".provision-*"))


def test_no_file_descriptors_leak(world: tuple[Path, Path]) -> None:
    root, _ = world
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with TargetTree(root) as tree, tree.deferred():
            for i in range(50):
                tree.write_file(f"/d{i % 7}/f{i}", [b"x"], mode=0o644, uid=0, gid=0)
            tree.remove("/d1")
            tree.symlink("/d2/l", "/d3", uid=0, gid=0)
            assert tree.state("/d3/f3") is not None
    assert len(os.listdir("/proc/self/fd")) == before


def test_same_path_twice_in_one_batch_keeps_the_last(world: tuple[Path, Path]) -> None:
    root, _ = world
    with TargetTree(root) as tree, tree.deferred():
        tree.write_file("/etc/x", [b"first"], mode=0o644, uid=0, gid=0)
        tree.write_file("/etc/x", [b"second"], mode=0o600, uid=0, gid=0)
    assert (root / "etc/x").read_bytes() == b"second"
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["x"]


def test_a_failing_batch_leaves_no_scratch_files(world: tuple[Path, Path]) -> None:
    root, _ = world
    with pytest.raises(RuntimeError), TargetTree(root) as tree, tree.deferred():
        tree.write_file("/etc/x", [b"queued"], mode=0o644, uid=0, gid=0)
        raise RuntimeError("a later item failed")
    assert list((root / "etc").iterdir()) == []
