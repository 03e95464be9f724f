"""The one command runner: failures are reported well, secrets stay out, tools are overridable."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from provision.errors import CommandError, ProvisionError
from provision.run import TOOLS, have_tool, run, tool_path

ROOT = Path(__file__).resolve().parent.parent


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "tool"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_success_captures_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_TOOL_MKFS_EXT4", _script(tmp_path, 'echo "out $1"; echo err >&2\n'))
    done = run("mkfs.ext4", ["x"])
    assert (done.status, done.stdout, done.stderr) == (0, "out x\n", "err\n")


def test_failure_names_command_status_and_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_TOOL_WIPEFS", _script(tmp_path, "echo 'device busy' >&2; exit 3\n"))
    with pytest.raises(CommandError) as caught:
        run("wipefs", ["-a", "/dev/vdz"])
    message = str(caught.value)
    assert "wipefs -a /dev/vdz" in message and "status 3" in message and "device busy" in message
    assert caught.value.status == 3


def test_secrets_are_redacted_in_logs_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "$6$salt$supersecrethash"
    monkeypatch.setenv("PROVISION_TOOL_USERMOD", _script(tmp_path, 'echo "bad hash $2" >&2; exit 1\n'))
    caplog.set_level(logging.DEBUG, logger="provision.run")
    with pytest.raises(CommandError) as caught:
        run("usermod", ["-p", secret, "alice"], secrets=[secret])
    assert secret not in str(caught.value)
    assert secret not in caplog.text and "<redacted>" in caplog.text


def test_missing_tool_says_how_to_point_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_TOOL_MDADM", "/nonexistent/mdadm")
    assert not have_tool("mdadm") and tool_path("mdadm") is None
    with pytest.raises(ProvisionError, match="PROVISION_TOOL_MDADM"):
        run("mdadm", ["--version"])


def test_every_tool_the_code_names_is_in_the_table() -> None:
    """Packagers override tools through TOOLS: a literal name outside it would escape that."""
    named: set[str] = set()
    for path in (ROOT / "provision").rglob("*.py"):
        text = path.read_text()
        named |= set(re.findall(r'\brun\(\s*"([a-z0-9._-]+)"', text))
        named |= set(re.findall(r'\b(?:have_tool|tool_path)\(\s*"([a-z0-9._-]+)"', text))
    assert named - set(TOOLS) == set()
