"""The files stage: Ignition 3.x semantics for files, directories and links."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import apply, config, data_url, make_root, manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.errors import StageError
from provision.stages.base import Target
from provision.stages.files import STAGE as FILES


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


def files(*entries: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"storage": {"files": list(entries), **more}}


def meta(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_new_file_defaults_to_0644_root_and_creates_parents(root: Path) -> None:
    apply(files({"path": "/opt/app/conf/a.conf", "contents": {"source": data_url("x=1\n")}}), root)
    assert (root / "opt/app/conf/a.conf").read_text() == "x=1\n"
    assert meta(root / "opt/app/conf/a.conf") == (0o644, 0, 0)
    for parent in ("opt", "opt/app", "opt/app/conf"):
        assert meta(root / parent) == (0o755, 0, 0)


def test_file_without_contents_is_empty(root: Path) -> None:
    apply(files({"path": "/etc/empty", "mode": 0o600}), root)
    assert (root / "etc/empty").read_bytes() == b""
    assert meta(root / "etc/empty") == (0o600, 0, 0)


def test_gzip_base64_contents_verified_by_sha512(root: Path) -> None:
    payload = b"line\n" * 1000
    packed = base64.b64encode(gzip.compress(payload)).decode()
    digest = hashlib.sha512(payload).hexdigest()
    entry = {"path": "/etc/big", "contents": {
        "source": "data:;base64," + packed, "compression": "gzip",
        "verification": {"hash": f"sha512-{digest}"}}}
    apply(files(entry), root)
    assert (root / "etc/big").read_bytes() == payload


def test_hash_mismatch_fails_and_writes_nothing(root: Path) -> None:
    good = {"path": "/etc/first", "contents": {"source": data_url("fine")}}
    bad = {"path": "/etc/second", "contents": {
        "source": data_url("tampered"), "verification": {"hash": "sha256-" + "0" * 64}}}
    before = manifest(root)
    with pytest.raises(StageError) as caught:
        apply(files(good, bad), root)
    assert caught.value.stage == "files" and caught.value.item == "/etc/second"
    assert "tampered" not in str(caught.value)  # contents never in messages
    assert manifest(root) == before  # fetched first: the good file was not written either


def test_existing_file_without_overwrite_says_how_to_fix(root: Path) -> None:
    (root / "etc/motd").write_text("image motd\n")
    with pytest.raises(StageError, match=r"overwrite: true.*append") as caught:
        apply(files({"path": "/etc/motd", "contents": {"source": data_url("new")}}), root)
    assert caught.value.item == "/etc/motd"
    assert (root / "etc/motd").read_text() == "image motd\n"


def test_existing_directory_where_a_file_goes_is_an_error(root: Path) -> None:
    (root / "etc/conf.d").mkdir()
    with pytest.raises(StageError, match=r"a directory already exists.*overwrite: true"):
        apply(files({"path": "/etc/conf.d"}), root)


def test_overwrite_replaces_whatever_is_there(root: Path) -> None:
    (root / "etc/conf.d").mkdir()
    (root / "etc/conf.d/old").write_text("x")
    (root / "etc/link").symlink_to("/etc/passwd")
    apply(files(
        {"path": "/etc/conf.d", "overwrite": True, "contents": {"source": data_url("file now")}},
        {"path": "/etc/link", "overwrite": True, "contents": {"source": data_url("not a link")}},
    ), root)
    assert (root / "etc/conf.d").read_text() == "file now"
    assert not (root / "etc/link").is_symlink()
    assert (root / "etc/passwd").read_text().startswith("root:")


def test_append_to_existing_file_keeps_its_mode_and_owner(root: Path) -> None:
    hosts = root / "etc/hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    os.chmod(hosts, 0o640)
    os.chown(hosts, 4242, 4343)
    apply(files({"path": "/etc/hosts", "append": [
        {"source": data_url("10.0.0.1 db\n")}, {"source": data_url("10.0.0.2 cache\n")}]}), root)
    assert hosts.read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n10.0.0.2 cache\n"
    assert meta(hosts) == (0o640, 4242, 4343)


def test_contents_and_append_make_one_file(root: Path) -> None:
    apply(files({"path": "/etc/app", "contents": {"source": data_url("a")},
                 "append": [{"source": data_url("b")}], "mode": 0o600}), root)
    assert (root / "etc/app").read_text() == "ab"
    assert meta(root / "etc/app") == (0o600, 0, 0)


def test_mode_only_entry_keeps_existing_contents(root: Path) -> None:
    (root / "etc/secret").write_text("keep me")
    apply(files({"path": "/etc/secret", "mode": 0o600}), root)
    assert (root / "etc/secret").read_text() == "keep me"
    assert meta(root / "etc/secret") == (0o600, 0, 0)


def test_owner_names_resolve_against_the_target_not_the_host(root: Path) -> None:
    # "daemon" is uid 1 on the host; the target has core=4242 and wheel=4444.
    with (root / "etc/passwd").open("a") as f:
        f.write("svc:x:777:777::/:/bin/false\n")
    apply(files({"path": "/etc/a", "user": {"name": "core"}, "group": {"name": "wheel"}},
                {"path": "/etc/b", "user": {"name": "svc"}},
                {"path": "/etc/c", "user": {"id": 1234}, "group": {"id": 5678}}), root)
    assert meta(root / "etc/a")[1:] == (4242, 4444)
    assert meta(root / "etc/b")[1:] == (777, 0)
    assert meta(root / "etc/c")[1:] == (1234, 5678)


def test_unknown_owner_name_fails_before_anything_changes(root: Path) -> None:
    before = manifest(root)
    with pytest.raises(StageError, match="user 'nobody-here' does not exist in the target"):
        apply(files({"path": "/etc/a"}, {"path": "/etc/b", "user": {"name": "nobody-here"}}), root)
    assert manifest(root) == before


def test_directories_default_0755_and_keep_existing_mode(root: Path) -> None:
    (root / "srv").mkdir(mode=0o700)
    os.chmod(root / "srv", 0o700)
    apply({"storage": {"directories": [
        {"path": "/var/lib/app"}, {"path": "/srv"}, {"path": "/data", "mode": 0o1777},
        {"path": "/home/core/x", "user": {"name": "core"}, "group": {"name": "core"}}]}}, root)
    assert meta(root / "var/lib/app") == (0o755, 0, 0)
    assert meta(root / "srv") == (0o700, 0, 0)
    assert meta(root / "data") == (0o1777, 0, 0)
    assert meta(root / "home/core/x") == (0o755, 4242, 4343)


def test_directory_overwrite_empties_it(root: Path) -> None:
    (root / "cache").mkdir()
    (root / "cache/stale").write_text("x")
    apply({"storage": {"directories": [{"path": "/cache", "overwrite": True}]}}, root)
    assert list((root / "cache").iterdir()) == []


def test_symlinks_and_hard_links(root: Path) -> None:
    apply({"storage": {
        "files": [{"path": "/etc/real", "contents": {"source": data_url("r")}}],
        "links": [
            {"path": "/etc/soft", "target": "/etc/real", "user": {"id": 4242}},
            {"path": "/usr/bin/rel", "target": "../../etc/real"},
            {"path": "/etc/hard", "target": "/etc/real", "hard": True},
        ]}}, root)
    assert os.readlink(root / "etc/soft") == "/etc/real"
    assert (root / "etc/soft").lstat().st_uid == 4242
    assert os.readlink(root / "usr/bin/rel") == "../../etc/real"
    assert (root / "etc/hard").stat().st_ino == (root / "etc/real").stat().st_ino


def test_existing_symlink_with_the_same_target_is_fine(root: Path) -> None:
    (root / "etc/l").symlink_to("/etc/passwd")
    apply({"storage": {"links": [{"path": "/etc/l", "target": "/etc/passwd"}]}}, root)
    with pytest.raises(StageError, match=r"symlink to a different target.*overwrite: true"):
        apply({"storage": {"links": [{"path": "/etc/l", "target": "/etc/group"}]}}, root, force=True)


def test_hard_link_target_must_exist_inside_the_root(root: Path) -> None:
    before = manifest(root)
    with pytest.raises(StageError, match="does not exist") as caught:
        apply({"storage": {"files": [{"path": "/etc/first"}],
                           "links": [{"path": "/etc/h", "target": "/etc/missing", "hard": True}]}}, root)
    assert caught.value.item == "/etc/h"
    assert manifest(root) == before  # found while planning: nothing was written


def test_config_paths_cannot_climb_out(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    apply(files({"path": "/../../escaped", "contents": {"source": data_url("x")}}), root)
    assert (root / "escaped").read_text() == "x"
    assert not (tmp_path / "escaped").exists()


def test_rerun_of_the_same_config_is_a_no_op(root: Path) -> None:
    spec = files({"path": "/etc/hosts", "append": [{"source": data_url("x\n")}]})
    assert not apply(spec, root).already_done
    assert apply(spec, root).already_done
    forced = apply(spec, root, force=True)  # re-applied from the recorded pre-image
    assert not forced.already_done
    assert (root / "etc/hosts").read_text() == "x\n"


def test_owner_created_by_the_same_config(root: Path) -> None:
    """The users stage runs first; names it creates resolve in the target's passwd."""
    from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages

    spec = {"passwd": {"users": [{"name": "appuser", "uid": 3456, "noCreateHome": True}],
                       "groups": [{"name": "appgrp", "gid": 3457}]},
            "storage": {"files": [{"path": "/etc/app/owned", "user": {"name": "appuser"},
                                   "group": {"name": "appgrp"}, "mode": 0o640}]}}
    digest = hashlib.sha256(repr(spec).encode()).hexdigest()
    apply_config(ApplyRequest(config(spec), digest, root), load_stages(["users", "files"]))
    assert meta(root / "etc/app/owned") == (0o640, 3456, 3457)
    assert "appuser:x:3456:" in (root / "etc/passwd").read_text()


@pytest.fixture
def http_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    import functools
    import http.server
    import threading

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_contents_are_fetched_decompressed_and_verified(root: Path, http_server: Any) -> None:
    www, base = http_server
    payload = b"remote payload\n" * 5000
    (www / "blob.gz").write_bytes(gzip.compress(payload))
    entry = {"path": "/opt/blob", "mode": 0o600, "contents": {
        "source": f"{base}/blob.gz", "compression": "gzip",
        "verification": {"hash": "sha256-" + hashlib.sha256(payload).hexdigest()}}}
    apply(files(entry), root)
    assert (root / "opt/blob").read_bytes() == payload
    assert meta(root / "opt/blob") == (0o600, 0, 0)


def test_a_failed_remote_fetch_applies_nothing(root: Path, http_server: Any) -> None:
    _www, base = http_server
    before = manifest(root)
    with pytest.raises(StageError) as caught:
        apply(files({"path": "/etc/a", "contents": {"source": data_url("fine")}},
                    {"path": "/etc/b", "contents": {"source": f"{base}/missing"}}), root)
    assert caught.value.item == "/etc/b"
    assert manifest(root) == before


def test_hostile_target_and_config_stay_inside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc/motd").write_text("host motd\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to(outside / "etc")  # the image's /etc points at a host path
    (root / "var").symlink_to("../../../../..")  # and /var climbs as high as it can
    before = manifest(outside)
    apply({"storage": {
        "files": [{"path": "/etc/motd", "contents": {"source": data_url("mine")}},
                  {"path": "/var/tmp/f", "contents": {"source": data_url("f")}},
                  {"path": "/opt/evil/x", "contents": {"source": data_url("x")}}],
        "links": [{"path": "/opt/evil", "target": str(outside)}],  # a link the config itself makes
    }}, root)
    assert manifest(outside) == before
    inside = root / str(outside).lstrip("/")
    assert (inside / "etc/motd").read_text() == "mine"
    assert (root / "tmp/f").read_text() == "f"


# Property: whatever mix of entries and pre-existing nodes, a run either fails
# before writing anything, or succeeds; and a forced re-run (from the recorded
# pre-image) gives exactly the same tree: no doubled appends, no drift.
_paths = st.sampled_from(["/etc/a", "/etc/b", "/etc/d/c", "/opt/x", "/opt/x/y"])
_text = st.text(alphabet="abc\n", max_size=6)
_file = st.fixed_dictionaries({"path": _paths}, optional={
    "contents": _text.map(lambda t: {"source": data_url(t)}),
    "append": st.lists(_text.map(lambda t: {"source": data_url(t)}), max_size=2),
    "mode": st.sampled_from([0o600, 0o644, 0o755]),
    "overwrite": st.booleans(),
})
_dir = st.fixed_dictionaries({"path": _paths}, optional={"mode": st.sampled_from([0o700, 0o755]),
                                                         "overwrite": st.booleans()})
_link = st.fixed_dictionaries({"path": _paths, "target": _paths}, optional={"overwrite": st.booleans()})
_existing = st.dictionaries(st.sampled_from(["etc/a", "etc/b", "opt/x"]),
                            st.sampled_from(["file", "dir", "link"]), max_size=3)


def _unique(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        seen.setdefault(entry["path"], entry)
    return list(seen.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files_=st.lists(_file, max_size=3), dirs=st.lists(_dir, max_size=2),
       links=st.lists(_link, max_size=2), existing=_existing)
def test_fail_cleanly_or_converge(tmp_path_factory: pytest.TempPathFactory, files_: list[dict[str, Any]],
                                  dirs: list[dict[str, Any]], links: list[dict[str, Any]],
                                  existing: dict[str, str]) -> None:
    root = make_root(tmp_path_factory.mktemp("prop") / "root")
    for rel, kind in existing.items():
        node = root / rel
        node.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            node.write_text("pre\n")
        elif kind == "dir":
            node.mkdir()
        else:
            node.symlink_to("/etc/passwd")
    # One entry per path across the three lists, as validation guarantees.
    entries = _unique([*files_, *dirs, *links])
    spec = {"storage": {
        "files": [e for e in entries if e in files_],
        "directories": [e for e in entries if e in dirs and e not in files_],
        "links": [e for e in entries if e in links and e not in files_ and e not in dirs],
    }}
    before = manifest(root)
    try:
        FILES.plan(config(spec), Target(root))
    except StageError:
        with pytest.raises(StageError):
            apply(spec, root)
        assert manifest(root) == before  # refused while planning: nothing written
        return
    try:
        apply(spec, root)
    except StageError as exc:
        # Only a config at odds with itself fails this late: a path under a
        # file or link the same config makes (validation rejects those).
        assert "not a directory" in str(exc) or "too many levels" in str(exc)
        return
    once = manifest(root)
    apply(spec, root, force=True)
    assert manifest(root) == once


def test_no_contents_or_credentials_in_logs_or_errors(root: Path, http_server: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import logging

    www, base = http_server
    (www / "conf").write_bytes(b"password=hunter2-file-secret\n")
    host = base.removeprefix("http://")
    spec = files(
        {"path": "/etc/inline", "contents": {"source": data_url("token=inline-secret-value")}},
        {"path": "/etc/remote", "contents": {"source": f"http://user:pw-secret-1@{host}/conf?sig=query-secret-2"}},
    )
    failing = files({"path": "/etc/remote", "contents": {
        "source": f"http://user:pw-secret-1@{host}/gone?sig=query-secret-2"}})
    with caplog.at_level(logging.DEBUG):
        apply(spec, root)
        with pytest.raises(StageError, match="/etc/remote") as caught:
            apply(failing, make_root(root.parent / "other"))
    assert (root / "etc/inline").read_text() == "token=inline-secret-value"
    assert (root / "etc/remote").read_text() == "password=hunter2-file-secret\n"
    assert "404" in str(caught.value) or "not found" in str(caught.value).lower()
    shown = caplog.text + str(caught.value)
    for secret in ("inline-secret-value", "hunter2-file-secret", "pw-secret-1", "query-secret-2"):
        assert secret not in shown
    result = (root / "etc/.provision/result.json").read_text()
    for secret in ("inline-secret-value", "hunter2-file-secret", "pw-secret-1", "query-secret-2"):
        assert secret not in result
