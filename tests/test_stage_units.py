"""The units stage, checked against systemd's own tools on the same trees."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import apply, make_root

from provision.config.model import Unit
from provision.stages.units import preset_text

pytestmark = pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl not installed")

SERVICE = "[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n"
UNITS: dict[str, str] = {
    "web.service": SERVICE + "[Install]\nWantedBy=multi-user.target\nAlias=www.service\nAlso=helper.service\n",
    "db.service": SERVICE + "[Install]\nRequiredBy=app.target\nWantedBy=multi-user.target graphical.target\n",
    "getty@.service": SERVICE + "[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
    "worker@.service": SERVICE + "[Install]\nWantedBy=multi-user.target\n",
    "spec@.service": SERVICE + "[Install]\nWantedBy=%p-%i.target\n",
}
# Shipped by the image, not by the config (found in /usr/lib/systemd/system).
IMAGE_UNITS = {
    "helper.service": SERVICE + "[Install]\nWantedBy=timers.target\n",
    "sshd.service": SERVICE + "[Install]\nWantedBy=multi-user.target\n",
}
ENABLE = ["web.service", "db.service", "getty@.service", "worker@a.service",
          "worker@b.service", "spec@x.service", "sshd.service"]


def systemctl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", f"--root={root}", "--no-reload", *args],
                          capture_output=True, text=True, timeout=60)


def links(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root / "etc/systemd/system"):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            if full.is_symlink():
                out[str(full.relative_to(root))] = os.readlink(full)
    return out


def image_root(root: Path) -> Path:
    make_root(root)
    lib = root / "usr/lib/systemd/system"
    lib.mkdir(parents=True)
    for name, text in IMAGE_UNITS.items():
        (lib / name).write_text(text)
    return root


def units_spec(**extra: Any) -> dict[str, Any]:
    units = [{"name": n, "contents": t} for n, t in UNITS.items() if n != "worker@.service"]
    units.append({"name": "worker@.service", "contents": UNITS["worker@.service"]})
    for entry in units:
        if entry["name"] in ENABLE:
            entry["enabled"] = True
    units += [{"name": "worker@a.service", "enabled": True}, {"name": "worker@b.service", "enabled": True},
              {"name": "spec@x.service", "enabled": True}, {"name": "sshd.service", "enabled": True}]
    return {"systemd": {"units": units}, **extra}


def test_enable_links_match_systemctl_enable(tmp_path: Path) -> None:
    ours = image_root(tmp_path / "ours")
    apply(units_spec(), ours)
    theirs = image_root(tmp_path / "theirs")
    unit_dir = theirs / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for name, text in UNITS.items():
        (unit_dir / name).write_text(text)
    result = systemctl(theirs, "enable", *ENABLE)
    assert result.returncode == 0, result.stderr
    assert links(ours) == links(theirs)
    assert "etc/systemd/system/www.service" in links(ours)  # an alias
    assert "etc/systemd/system/timers.target.wants/helper.service" in links(ours)  # via Also=


def test_systemctl_reports_enabled_and_masked(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    spec = units_spec()
    spec["systemd"]["units"].append({"name": "cups.service", "mask": True})
    apply(spec, root)
    states = systemctl(root, "is-enabled", "web.service", "db.service", "worker@a.service",
                       "getty@tty1.service", "sshd.service", "cups.service").stdout.split()
    assert states == ["enabled", "enabled", "enabled", "enabled", "enabled", "masked"]
    assert os.readlink(root / "etc/systemd/system/cups.service") == "/dev/null"


def test_preset_file_enables_the_same_links_through_systemctl_preset(tmp_path: Path) -> None:
    ours = image_root(tmp_path / "ours")
    apply(units_spec(), ours)
    preset = (ours / "etc/systemd/system-preset/20-provision.preset").read_text()
    assert "enable worker@.service a b\n" in preset
    # A root with only the unit files and our preset: systemd's preset logic
    # must arrive at the links we made ourselves.
    theirs = image_root(tmp_path / "theirs")
    (theirs / "etc/systemd/system").mkdir(parents=True)
    for name, text in UNITS.items():
        (theirs / "etc/systemd/system" / name).write_text(text)
    (theirs / "etc/systemd/system-preset").mkdir(parents=True)
    (theirs / "etc/systemd/system-preset/20-provision.preset").write_text(preset + "disable *\n")
    result = systemctl(theirs, "preset", *[n for n in ENABLE if n != "worker@a.service" and n != "worker@b.service"],
                       "worker@.service")
    assert result.returncode == 0, result.stderr
    assert links(theirs) == links(ours)


def test_enabled_false_removes_links_systemctl_made(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    assert systemctl(root, "enable", "sshd.service").returncode == 0
    assert systemctl(root, "is-enabled", "sshd.service").stdout.strip() == "enabled"
    apply({"systemd": {"units": [{"name": "sshd.service", "enabled": False}]}}, root)
    assert systemctl(root, "is-enabled", "sshd.service").stdout.strip() == "disabled"
    preset = (root / "etc/systemd/system-preset/20-provision.preset").read_text()
    assert preset == "disable sshd.service\n"


def test_mask_false_unmasks(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    assert systemctl(root, "mask", "sshd.service").returncode == 0
    apply({"systemd": {"units": [{"name": "sshd.service", "mask": False}]}}, root)
    assert systemctl(root, "is-enabled", "sshd.service").stdout.strip() == "disabled"


def test_dropins_and_unit_files_are_0644_root_and_replace_existing(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    (unit_dir / "web.service").write_text("old")
    apply({"systemd": {"units": [{"name": "web.service", "contents": UNITS["web.service"], "dropins": [
        {"name": "10-env.conf", "contents": "[Service]\nEnvironment=A=1\n"}]},
        {"name": "sshd.service", "dropins": [{"name": "port.conf", "contents": "[Service]\nEnvironment=P=2\n"}]}]}},
        root)
    assert (unit_dir / "web.service").read_text() == UNITS["web.service"]
    for path in (unit_dir / "web.service", unit_dir / "web.service.d/10-env.conf",
                 unit_dir / "sshd.service.d/port.conf"):
        st = path.stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o644, 0, 0)
    shown = systemctl(root, "cat", "sshd.service")
    if shown.returncode == 0:  # `systemctl cat --root` works without a running manager on v252
        assert "Environment=P=2" in shown.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_written_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    (root / "bin").mkdir()
    shutil.copy("/bin/true", root / "bin/true")
    # verify loads the unit's dependencies (sysinit.target, ...): give it the host's set.
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True,
                    dirs_exist_ok=True)
    apply({"systemd": {"units": [{"name": "web.service", "contents": UNITS["web.service"], "enabled": True,
                                  "dropins": [{"name": "env.conf", "contents": "[Service]\nEnvironment=A=1\n"}]}]}},
          root)
    unit = root / "etc/systemd/system/web.service"
    result = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "/etc/systemd/system/web.service"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert unit.exists()


def test_preset_lines_group_instances_per_template() -> None:
    text = preset_text((Unit("a.service", enabled=True), Unit("t@x.service", enabled=True),
                        Unit("t@y.service", enabled=True), Unit("b.service", enabled=False),
                        Unit("c.service")))
    assert text == "enable a.service\nenable t@.service x y\ndisable b.service\n"


def test_mask_false_with_contents_keeps_the_new_unit(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    assert systemctl(root, "mask", "sshd.service").returncode == 0
    apply({"systemd": {"units": [{"name": "sshd.service", "mask": False, "contents": SERVICE}]}}, root)
    unit = root / "etc/systemd/system/sshd.service"
    assert not unit.is_symlink() and unit.read_text() == SERVICE


def test_install_section_cannot_place_links_outside_the_unit_directory(tmp_path: Path) -> None:
    root = image_root(tmp_path / "root")
    hostile = SERVICE + "[Install]\nWantedBy=../../../../etc/evil.target\nAlias=../../x.service\nAlso=../y.service\n"
    apply({"systemd": {"units": [{"name": "h.service", "enabled": True, "contents": hostile}]}}, root)
    made = [p for p in root.rglob("*") if p.is_symlink()]
    assert made == []
    assert not (root / "etc/evil.target.wants").exists()


@pytest.mark.parametrize("install", [
    "DefaultInstance=../../../../etc/evil\nWantedBy=multi-user.target\n",
    "DefaultInstance=a/b\nAlias=x@.service\n",
    "WantedBy=%i.target\nDefaultInstance=../../x\n",
    "UpheldBy=../u.target\nRequiredBy=multi-user.target/../../../../tmp\n",
])
def test_image_unit_install_section_cannot_place_links_outside_the_unit_directory(
    tmp_path: Path, install: str
) -> None:
    """A unit shipped in the image (never validated) is refused defensively at apply."""
    root = image_root(tmp_path / "root")
    (root / "usr/lib/systemd/system/evil@.service").write_text(SERVICE + "[Install]\n" + install)
    apply({"systemd": {"units": [{"name": "evil@.service", "enabled": True}]}}, root)
    made = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_symlink()]
    assert made == []
    assert not (root / "etc/evil").exists() and not (tmp_path / "tmp").exists()


def test_unit_names_that_are_paths_are_refused(tmp_path: Path) -> None:
    from provision.errors import StageError

    root = image_root(tmp_path / "root")
    with pytest.raises(StageError, match="not a valid file name"):
        apply({"systemd": {"units": [{"name": "../../../etc/passwd", "contents": SERVICE}]}}, root)
    assert (root / "etc/passwd").read_text().startswith("root:")
