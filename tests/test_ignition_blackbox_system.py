"""coreos/ignition's base-config and system-directory tests (tests/data/ignition-blackbox/system.yaml).

The image's configs (base.d, base.platform.d, user.ign in /usr/lib, /etc and
/run) are written below a --sys-root tree, with a provider config as QEMU's
fw_cfg entry there; `provision run` provisions a fresh root from them, and the
files Ignition's test expects are checked on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_fixtures import REPO, make_root
from standins.systree import make_sys_root

CASES = yaml.safe_load((Path(__file__).parent / "data" / "ignition-blackbox" / "system.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_system_config_case(case: dict[str, Any], tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    for node in case.get("in", []):
        path = root / node["file"].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(node["contents"])
    sys_root = tmp_path / "sys"
    for name, text in case["system"].items():
        path = sys_root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    make_sys_root(sys_root, fw_cfg=json.dumps(case["provider"]).encode() if "provider" in case else None)
    run_dir = tmp_path / "run"
    source = ["--platform", "metal"]
    if "config" in case:
        config = tmp_path / "config.ign"
        config.write_text(json.dumps(case["config"]))
        source = ["--config", str(config)]
    elif "provider" in case:
        source = ["--platform", "qemu"]
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "run", "--root", str(root), *source,
         "--sys-root", str(sys_root), "--run-dir", str(run_dir), "--cmdline", ""],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "PROVISION_STATE_DIR": str(run_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    for node in case["out"]:
        assert (root / node["file"].lstrip("/")).read_text() == node["contents"], node["file"]
