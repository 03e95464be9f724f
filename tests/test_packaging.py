"""The wheel is self-contained: schemas and datasource entries ship inside the package."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_its_data_and_validates_outside_the_checkout(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("provision-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for schema in (ROOT / "schemas").glob("*.json"):
        assert f"provision/_data/schemas/{schema.name}" in names
    for entry in (ROOT / "datasources").glob("*.json"):
        assert f"provision/_data/datasources/{entry.name}" in names
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    subprocess.run([env / "bin/pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    proc = subprocess.run([env / "bin/provision", "validate", str(ROOT / "examples/aws-node.json")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    where = subprocess.run([env / "bin/python", "-c", "import provision.resources as r; print(r.data_dir('schemas'))"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert "site-packages/provision/_data/schemas" in where
