"""provision validate accepts exactly the Ignition configs ignition-validate accepts.

ignition-validate comes from Debian's `ignition` package (2.14, specs up to
3.3.0). Exceptions are kept apart and asserted separately: unknown keys
(Ignition warns, provision rejects) and STRICTER cases where provision
rejects on purpose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision.config.pipeline import parse_config

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
from ignition_cases import AGREE, STRICTER, UNKNOWN_KEYS

IGNITION_VALIDATE = shutil.which("ignition-validate")
needs_ignition = pytest.mark.skipif(
    IGNITION_VALIDATE is None, reason="ignition-validate not installed (apt-get install ignition)"
)


def ignition_accepts(config: dict[str, object], tmp_path: Path) -> tuple[bool, str]:
    path = tmp_path / "config.ign"
    path.write_text(json.dumps(config))
    assert IGNITION_VALIDATE is not None
    proc = subprocess.run([IGNITION_VALIDATE, str(path)], capture_output=True, text=True, timeout=30)
    return proc.returncode == 0, proc.stdout + proc.stderr


def provision_accepts(config: dict[str, object]) -> tuple[bool, str]:
    parsed = parse_config(json.dumps(config).encode(), "config.ign")
    return parsed.ok, "\n".join(d.message for d in parsed.diagnostics)


@needs_ignition
@pytest.mark.parametrize("name", sorted(AGREE))
def test_same_verdict_as_ignition(name: str, tmp_path: Path) -> None:
    config = AGREE[name]
    theirs, their_output = ignition_accepts(config, tmp_path)
    ours, our_output = provision_accepts(config)
    assert theirs == name.startswith("ok_"), f"corpus case mislabelled: ignition says {their_output!r}"
    assert ours == theirs, f"ignition: {their_output!r}; provision: {our_output!r}"


@needs_ignition
@pytest.mark.parametrize("name", sorted(UNKNOWN_KEYS))
def test_unknown_keys_are_warnings_there_and_errors_here(name: str, tmp_path: Path) -> None:
    theirs, their_output = ignition_accepts(UNKNOWN_KEYS[name], tmp_path)
    ours, our_output = provision_accepts(UNKNOWN_KEYS[name])
    assert theirs and "Unused key" in their_output
    assert not ours and "unknown key" in our_output


@needs_ignition
@pytest.mark.parametrize("name", sorted(STRICTER))
def test_provision_is_stricter_on_purpose(name: str, tmp_path: Path) -> None:
    theirs, _ = ignition_accepts(STRICTER[name], tmp_path)
    ours, _ = provision_accepts(STRICTER[name])
    assert theirs and not ours


def test_newer_ignition_specs_are_read() -> None:
    """3.4.0 to 3.6.0 are beyond Debian's ignition-validate; we read them by their own rules."""
    for version in ("3.4.0", "3.5.0", "3.6.0"):
        ok, output = provision_accepts({"ignition": {"version": version}, "storage": {"luks": [
            {"name": "x", "device": "/dev/vdb", "discard": True, "openOptions": ["--perf-no_read_workqueue"]}]}})
        assert ok, output
    ok, output = provision_accepts({"ignition": {"version": "3.3.0"}, "storage": {"luks": [
        {"name": "x", "device": "/dev/vdb", "discard": True}]}})
    assert not ok and "unknown key 'discard'" in output


def test_translation_is_field_by_field() -> None:
    config = AGREE["ok_files"]
    parsed = parse_config(json.dumps(config).encode(), "config.ign")
    assert parsed.spec is not None
    assert parsed.spec["provision"] == {"version": "1.1.0"}
    assert parsed.spec["storage"] == config["storage"]
