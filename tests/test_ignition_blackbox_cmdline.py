"""coreos/ignition's cmdline blackbox tests (tests/data/ignition-blackbox/cmdline.yaml).

The kernel command line names the config's labelled filesystem and path; the
filesystem is a real vfat image on a loop device. `provision run` is given
that command line and nothing else as a config source, and either writes the
device's config to a fresh root or fails leaving the root as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_fixtures import REPO, make_root, manifest
from standins.systree import loop_device, make_sys_root, make_vfat

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "cmdline.yaml").read_text())

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("mkfs.vfat", "mcopy", "losetup")),
                       reason="needs dosfstools, mtools, losetup"),
]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_cmdline_case(case: dict[str, Any], tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    before = manifest(root)
    run_dir = tmp_path / "run"
    with ExitStack() as stack:
        labels = {}
        if "device" in case:
            files = {name: text.encode() for name, text in case["device"].items()}
            image = make_vfat(tmp_path / "ignconfig.img", "IGNCONFIG", files)
            labels["IGNCONFIG"] = stack.enter_context(loop_device(image))
        sys_root = make_sys_root(tmp_path / "sys", labels=labels)
        proc = subprocess.run(
            [sys.executable, "-m", "provision", "run", "--root", str(root), "--platform", "metal",
             "--sys-root", str(sys_root), "--run-dir", str(run_dir), "--cmdline", case["cmdline"]],
            capture_output=True, text=True, cwd=REPO, timeout=120,
            env={**os.environ, "PROVISION_STATE_DIR": str(run_dir)},
        )
    if case.get("expect", "ok") == "fails":
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert case["error"] in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        assert manifest(root) == before, "a failed run changed the root"
        return
    assert proc.returncode == 0, proc.stderr
    for node in case["out"]:
        assert (root / node["file"].lstrip("/")).read_text() == node["contents"], node["file"]
