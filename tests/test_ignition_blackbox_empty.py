"""coreos/ignition's general.empty: empty user data is no config (tests/data/ignition-blackbox/empty.yaml).

`provision run` gets empty user data from one source per case (a config
file, fw_cfg, the kernel command line, the image's user.ign, a labelled
device) and must succeed, provisioning an empty config: the root is as it
was, apart from provision's record of the run. Debian's Ignition 2.14 runs
the config-file cases the way Ignition's harness does. `provision validate`
and `apply` refuse an empty file, as ignition-validate does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_fixtures import IGNITION, REPO, make_root, manifest
from standins.systree import loop_device, make_sys_root, make_vfat
from test_ignition_blackbox import check_ignition_outcome, run_ignition, snapshot

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "empty.yaml").read_text())
IGNITION_VALIDATE = shutil.which("ignition-validate")
DEVICE_TOOLS = all(shutil.which(t) for t in ("mkfs.vfat", "mcopy", "losetup"))


def _run(root: Path, sys_root: Path, run_dir: Path, *source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", "run", "--root", str(root), *source,
         "--sys-root", str(sys_root), "--run-dir", str(run_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "PROVISION_STATE_DIR": str(run_dir)},
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_empty_user_data_provisions_nothing(case: dict[str, Any], tmp_path: Path) -> None:
    if case["source"] == "device" and (os.geteuid() != 0 or not DEVICE_TOOLS):
        pytest.skip("a labelled device needs root, dosfstools, mtools and losetup")
    user_data = case.get("user_data", "").encode()
    root = make_root(tmp_path / "root")
    before = manifest(root, exclude=("etc/.provision",))
    run_dir = tmp_path / "run"
    sys_files: dict[str, bytes] = {}
    cmdline = case.get("cmdline", "")
    source = ["--platform", "metal"]
    with ExitStack() as stack:
        labels = {}
        if case["source"] == "file":
            (tmp_path / "config.ign").write_bytes(user_data)
            source = ["--config", str(tmp_path / "config.ign")]
        elif case["source"] == "fw_cfg":
            source = ["--platform", "qemu"]
        elif case["source"] == "user.ign":
            sys_files["usr/lib/ignition/user.ign"] = user_data
        elif case["source"] == "device":
            image = make_vfat(tmp_path / "ignconfig.img", "IGNCONFIG", {"config.ign": user_data})
            labels["IGNCONFIG"] = stack.enter_context(loop_device(image))
            cmdline = "ignition.config.device=IGNCONFIG ignition.config.path=/config.ign"
        sys_root = tmp_path / "sys"
        for name, data in sys_files.items():
            (sys_root / name).parent.mkdir(parents=True, exist_ok=True)
            (sys_root / name).write_bytes(data)
        make_sys_root(sys_root, labels=labels, fw_cfg=user_data if case["source"] == "fw_cfg" else None,
                      fw_cfg_name="opt/com.coreos/config")
        proc = _run(root, sys_root, run_dir, *source, "--cmdline", cmdline)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "provisioning an empty config" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert manifest(root, exclude=("etc/.provision",)) == before, "empty user data changed the root"
    record = json.loads((root / "etc/.provision/result.json").read_text())
    assert record["status"] == "succeeded", record
    again = _run(root, sys_root, run_dir, *source, "--cmdline", cmdline)  # the next boot
    assert again.returncode == 0, again.stderr


FILE_CASES = [c for c in CASES if c["source"] == "file"]


@pytest.mark.skipif(not IGNITION.exists(), reason="Debian package ignition not installed")
@pytest.mark.parametrize("case", FILE_CASES, ids=[c["name"] for c in FILE_CASES])
def test_real_ignition_agrees_on_empty_user_data(case: dict[str, Any], tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    before = snapshot(root)
    config = tmp_path / "config.ign"
    config.write_bytes(case.get("user_data", "").encode())
    check_ignition_outcome(case, *run_ignition(config, root, tmp_path), root)
    if case.get("ignition_expect", "ok") == "ok":
        after = {k: v for k, v in snapshot(root).items() if not k.startswith("etc/.ignition-result")}
        assert after == before, "Ignition changed the root"


@pytest.mark.parametrize("user_data", [b"", b"\n  \n"], ids=["empty", "blank"])
def test_validate_and_apply_refuse_an_empty_file(user_data: bytes, tmp_path: Path) -> None:
    """A config file named to validate or apply must be a config: empty is an error, as for ignition-validate."""
    config = tmp_path / "config.ign"
    config.write_bytes(user_data)
    root = make_root(tmp_path / "root")
    before = manifest(root)
    for argv in (["validate", str(config)], ["apply", "--root", str(root), str(config)]):
        proc = subprocess.run([sys.executable, "-m", "provision", *argv],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "config is empty" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    assert manifest(root) == before
    if IGNITION_VALIDATE:
        assert subprocess.run([IGNITION_VALIDATE, str(config)], capture_output=True).returncode != 0
