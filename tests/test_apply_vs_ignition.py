"""Differential test: our files and units stages against Ignition's files stage.

Ignition 2.14 (Debian package ``ignition``) runs here with ``-platform file``.
Each Ignition 3.3.0 config is applied by Ignition to one minimal root and, as
the equivalent provision 1.0.0 config, by us to another. Ignition enables
units only through a preset file that the first boot applies; we also make
the links ourselves. So Ignition's tree gets ``systemctl --root preset`` (what
the first boot does) and then both trees must be identical: paths, types,
modes, owners, sizes, contents, link targets. Only the two preset files'
names and the run records differ by design.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import IGNITION, apply, data_url, make_root, manifest

pytestmark = pytest.mark.skipif(not IGNITION.exists(), reason="Debian package ignition not installed")

OURS_ONLY = ("etc/.provision", "etc/systemd/system-preset/20-provision.preset")
THEIRS_ONLY = ("etc/.ignition-result.json", "etc/systemd/system-preset/20-ignition.preset")
# Steps after everything is written that cannot work in a bare directory.
_KNOWN_LATE_FAILURES = ("failed to handle relabeling", "/run/systemd/private")

SERVICE = "[Unit]\nDescription=%s\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"

CASES: dict[str, dict[str, Any]] = {
    "files": {"storage": {"files": [
        {"path": "/etc/motd", "contents": {"source": data_url("hello\n")}},
        {"path": "/etc/app/conf.d/a.conf", "contents": {"source": data_url("a=1\n")}, "mode": 0o600},
        {"path": "/etc/owned", "contents": {"source": data_url("x")},
         "user": {"name": "core"}, "group": {"name": "wheel"}},
        {"path": "/etc/by-id", "user": {"id": 1234}, "group": {"id": 4343}, "mode": 0o640},
        {"path": "/var/empty-file"},
        {"path": "/etc/gz", "contents": {
            "source": "data:;base64,H4sIAAAAAAACA8tIzcnJVyjPL8pJAQCFEUoNCwAAAA==", "compression": "gzip",
            "verification": {"hash": "sha512-309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f"}}},
    ]}},
    "appends": {"storage": {"files": [
        {"path": "/etc/hosts", "append": [{"source": data_url("10.0.0.1 db\n")}]},
        {"path": "/etc/new", "contents": {"source": data_url("head\n")},
         "append": [{"source": data_url("one\n")}, {"source": data_url("two\n")}]},
        {"path": "/etc/only-append", "append": [{"source": data_url("tail\n")}]},
        {"path": "/etc/existing-mode", "mode": 0o600},
        {"path": "/etc/issue", "overwrite": True, "contents": {"source": data_url("replaced\n")}},
    ]}},
    "directories-and-links": {"storage": {
        "directories": [{"path": "/opt/d"}, {"path": "/opt/private", "mode": 0o700},
                        {"path": "/home/core/work", "user": {"name": "core"}, "group": {"name": "core"}},
                        {"path": "/srv/existing"}],
        "files": [{"path": "/opt/d/target", "contents": {"source": data_url("t")}}],
        "links": [{"path": "/usr/local/bin/tool", "target": "/opt/d/target"},
                  {"path": "/opt/rel", "target": "d/target", "user": {"id": 4242}},
                  {"path": "/opt/hard", "target": "/opt/d/target", "hard": True},
                  {"path": "/etc/existing-link", "target": "/etc/hosts"}],
    }},
    "units": {"systemd": {"units": [
        {"name": "web.service", "enabled": True, "contents": SERVICE % "web",
         "dropins": [{"name": "10-env.conf", "contents": "[Service]\nEnvironment=A=1\n"}]},
        {"name": "db.service", "enabled": False, "contents": SERVICE % "db"},
        {"name": "cups.service", "mask": True},
        {"name": "sshd.service", "dropins": [{"name": "port.conf", "contents": "[Service]\nEnvironment=P=22\n"}]},
        {"name": "plain.service", "contents": "[Service]\nExecStart=/bin/true\n"},
        {"name": "timer.timer", "enabled": True, "contents": "[Timer]\nOnBootSec=1\n[Install]\nWantedBy=timers.target\n"},
    ]}},
}


def image(root: Path) -> Path:
    make_root(root)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc/issue").write_text("image issue\n")
    (root / "etc/existing-mode").write_text("keep\n")
    (root / "srv/existing").mkdir(parents=True)
    os.chmod(root / "srv/existing", 0o711)
    (root / "etc/existing-link").symlink_to("/etc/hosts")
    return root


def run_ignition(body: dict[str, Any], root: Path, work: Path) -> None:
    cfg = work / "config.ign"
    cfg.write_text(json.dumps({"ignition": {"version": "3.3.0"}, **body}))
    env = {**os.environ, "IGNITION_CONFIG_FILE": str(cfg)}
    common = ["-platform", "file", "-root", str(root), "-log-to-stdout",
              "-config-cache", str(work / "cache.json"), "-state-file", str(work / "state")]
    fetch = subprocess.run([str(IGNITION), "-stage", "fetch", *common], env=env,
                           capture_output=True, text=True, timeout=60)
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    files = subprocess.run([str(IGNITION), "-stage", "files", *common], env=env,
                           capture_output=True, text=True, timeout=60)
    if files.returncode != 0:
        last = [line for line in files.stdout.splitlines() if "Ignition failed" in line]
        assert last and any(k in last[-1] for k in _KNOWN_LATE_FAILURES), files.stdout[-3000:]


def first_boot_presets(root: Path, body: dict[str, Any]) -> None:
    """What systemd does on the first boot with Ignition's preset file."""
    names = [u["name"] for u in body.get("systemd", {}).get("units", []) if "enabled" in u]
    if names:
        result = subprocess.run(["systemctl", f"--root={root}", "preset", *names],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_tree_as_ignition(case: str, tmp_path: Path) -> None:
    body = CASES[case]
    theirs = image(tmp_path / "ignition")
    run_ignition(body, theirs, tmp_path)
    if shutil.which("systemctl"):
        first_boot_presets(theirs, body)
    ours = image(tmp_path / "provision")
    apply(body, ours)
    ignition_tree = manifest(theirs, exclude=THEIRS_ONLY)
    assert ignition_tree != manifest(image(tmp_path / "untouched"))  # Ignition did apply it
    assert manifest(ours, exclude=OURS_ONLY) == ignition_tree


def test_preset_files_say_the_same(tmp_path: Path) -> None:
    body = CASES["units"]
    theirs = image(tmp_path / "ignition")
    run_ignition(body, theirs, tmp_path)
    ours = image(tmp_path / "provision")
    apply(body, ours)
    ignition = (theirs / THEIRS_ONLY[1]).read_text().split("\n")
    provision = (ours / OURS_ONLY[1]).read_text().split("\n")
    assert sorted(line.strip() for line in ignition if line) == sorted(line for line in provision if line)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_ignition_config_itself_gives_the_same_tree(case: str, tmp_path: Path) -> None:
    """provision reads Ignition 3.x: applying the very same .ign file matches Ignition too."""
    from apply_fixtures import run_cli

    body = CASES[case]
    theirs = image(tmp_path / "ignition")
    run_ignition(body, theirs, tmp_path)
    if shutil.which("systemctl"):
        first_boot_presets(theirs, body)
    ours = image(tmp_path / "provision")
    done = run_cli("apply", "--stages", "files,units", "--root", str(ours), str(tmp_path / "config.ign"))
    assert done.returncode == 0, done.stderr
    assert manifest(ours, exclude=OURS_ONLY) == manifest(theirs, exclude=THEIRS_ONLY)


CONFLICTS: dict[str, dict[str, Any]] = {
    "file-over-existing-file": {"storage": {"files": [{"path": "/etc/hosts", "contents": {"source": data_url("x")}}]}},
    "file-over-directory": {"storage": {"files": [{"path": "/srv/existing"}]}},
    "directory-over-symlink": {"storage": {"directories": [{"path": "/etc/existing-link"}]}},
    "symlink-elsewhere": {"storage": {"links": [{"path": "/etc/existing-link", "target": "/etc/issue"}]}},
    "symlink-over-file": {"storage": {"links": [{"path": "/etc/issue", "target": "/etc/hosts"}]}},
}


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_both_refuse_the_same_conflicts(case: str, tmp_path: Path) -> None:
    from provision.errors import StageError

    body = CONFLICTS[case]
    theirs = image(tmp_path / "ignition")
    cfg = tmp_path / "config.ign"
    cfg.write_text(json.dumps({"ignition": {"version": "3.3.0"}, **body}))
    env = {**os.environ, "IGNITION_CONFIG_FILE": str(cfg)}
    common = ["-platform", "file", "-root", str(theirs), "-log-to-stdout",
              "-config-cache", str(tmp_path / "cache.json"), "-state-file", str(tmp_path / "state")]
    subprocess.run([str(IGNITION), "-stage", "fetch", *common], env=env, capture_output=True, timeout=60)
    files = subprocess.run([str(IGNITION), "-stage", "files", *common], env=env,
                           capture_output=True, text=True, timeout=60)
    assert files.returncode != 0 and "overwrite is false" in files.stdout
    ours = image(tmp_path / "provision")
    before = manifest(ours)
    with pytest.raises(StageError, match="overwrite is false; set overwrite: true"):
        apply(body, ours)
    assert manifest(ours) == before
