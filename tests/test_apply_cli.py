"""provision apply / plan / status as a user runs them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from apply_fixtures import data_url, make_root, manifest, run_cli, write_config

SECRET = "s3cr3t-token-value"
SPEC = {
    "storage": {
        "files": [{"path": "/etc/app.env", "mode": 0o600, "contents": {"source": data_url(f"TOKEN={SECRET}\n")}},
                  {"path": "/etc/hosts", "append": [{"source": data_url("10.0.0.1 db\n")}]}],
        "directories": [{"path": "/var/lib/app"}],
    },
    "systemd": {"units": [{"name": "app.service", "enabled": True,
                           "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]},
}
STAGES = ("--stages", "files,units")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    return root


def test_apply_then_status_then_noop_then_force(root: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.json", SPEC)
    first = run_cli("apply", *STAGES, "--platform", "qemu", "--instance-id", "i-123", "--root", str(root), str(cfg))
    assert first.returncode == 0, first.stderr
    assert (root / "etc/hosts").read_text() == "127.0.0.1 localhost\n10.0.0.1 db\n"
    result = root / "etc/.provision/result.json"
    assert stat.S_IMODE(result.stat().st_mode) == 0o600
    record = json.loads(result.read_text())
    assert record["status"] == "succeeded" and record["platform"] == "qemu" and record["instance_id"] == "i-123"
    assert {s["name"]: s["status"] for s in record["stages"]} == {"files": "applied", "units": "applied"}
    assert SECRET not in result.read_text()

    status = run_cli("status", "--root", str(root))
    assert status.returncode == 0
    assert "succeeded" in status.stdout and "qemu" in status.stdout and record["config_sha256"] in status.stdout

    tree = manifest(root)
    again = run_cli("apply", *STAGES, "--root", str(root), str(cfg))
    assert again.returncode == 0 and "already provisioned" in again.stdout
    assert manifest(root) == tree

    forced = run_cli("apply", *STAGES, "--force", "--root", str(root), str(cfg))
    assert forced.returncode == 0, forced.stderr
    assert manifest(root) == tree  # re-applied from the recorded pre-image: no doubled append


def test_plan_changes_nothing_and_lists_actions(root: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.json", SPEC)
    before = manifest(root, exclude=())
    shown = run_cli("plan", *STAGES, "--root", str(root), str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert manifest(root, exclude=()) == before
    lines = shown.stdout.splitlines()
    assert any(line.split()[:3] == ["files", "create", "/etc/app.env"] for line in lines)
    assert any(line.split()[:3] == ["files", "append", "/etc/hosts"] for line in lines)
    assert any("multi-user.target.wants/app.service" in line and "create" in line for line in lines)
    assert SECRET not in shown.stdout + shown.stderr


def test_failure_names_stage_item_cause_without_secrets(root: Path, tmp_path: Path) -> None:
    (root / "etc/app.env").write_text("image's own\n")
    cfg = write_config(tmp_path / "c.json", SPEC)
    failed = run_cli("apply", *STAGES, "--root", str(root), str(cfg))
    assert failed.returncode == 1
    assert "stage files: /etc/app.env:" in failed.stderr and "overwrite: true" in failed.stderr
    assert "Traceback" not in failed.stderr and SECRET not in failed.stderr + failed.stdout
    record = json.loads((root / "etc/.provision/result.json").read_text())
    files = next(s for s in record["stages"] if s["name"] == "files")
    assert record["status"] == "failed"
    assert files["status"] == "failed" and files["item"] == "/etc/app.env" and "overwrite" in files["error"]
    assert next(s for s in record["stages"] if s["name"] == "units")["status"] == "not-run"
    assert (root / "etc/app.env").read_text() == "image's own\n"
    assert run_cli("status", "--root", str(root)).returncode == 1


def test_status_of_a_fresh_root(root: Path) -> None:
    shown = run_cli("status", "--root", str(root))
    assert shown.returncode == 3 and "not provisioned" in shown.stdout


def test_invalid_config_is_reported_with_its_position(root: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.json"
    cfg.write_text('{"provision": {"version": "1.0.0"},\n "storage": {"files": [{"path": 42}]}}\n')
    before = manifest(root, exclude=())
    failed = run_cli("apply", "--root", str(root), str(cfg))
    assert failed.returncode == 1
    assert "bad.json:2:" in failed.stderr
    assert manifest(root, exclude=()) == before


def test_unknown_stage_is_a_usage_error(root: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.json", SPEC)
    failed = run_cli("apply", "--stages", "files,nonsense", "--root", str(root), str(cfg))
    assert failed.returncode != 0 and "unknown stage 'nonsense'" in failed.stderr


def test_plan_after_apply_says_nothing_to_do(root: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.json", SPEC)
    assert run_cli("apply", *STAGES, "--root", str(root), str(cfg)).returncode == 0
    shown = run_cli("plan", *STAGES, "--root", str(root), str(cfg))
    assert shown.returncode == 0 and "apply would do nothing" in shown.stdout


def test_plan_accepts_owners_the_same_config_creates(root: Path, tmp_path: Path) -> None:
    spec = {"passwd": {"users": [{"name": "newbie", "noCreateHome": True}]},
            "storage": {"files": [{"path": "/etc/owned", "user": {"name": "newbie"}}]}}
    cfg = write_config(tmp_path / "c.json", spec)
    shown = run_cli("plan", "--stages", "users,files", "--root", str(root), str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert any(line.split()[:3] == ["files", "create", "/etc/owned"] for line in shown.stdout.splitlines())
    unknown = write_config(tmp_path / "d.json", {"storage": {"files": [{"path": "/etc/x", "user": {"name": "ghost"}}]}})
    refused = run_cli("plan", "--stages", "files", "--root", str(root), str(unknown))
    assert refused.returncode == 1 and "user 'ghost' does not exist in the target" in refused.stderr


def test_status_json_is_the_record(root: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.json", SPEC)
    assert run_cli("apply", *STAGES, "--root", str(root), str(cfg)).returncode == 0
    shown = run_cli("status", "--json", "--root", str(root))
    assert shown.returncode == 0
    assert json.loads(shown.stdout) == json.loads((root / "etc/.provision/result.json").read_text())


def test_kernel_arguments_are_written_into_the_boot_loader_entries(tmp_path: Path) -> None:
    from apply_fixtures import make_root, run_cli, write_config

    root = make_root(tmp_path / "root")
    entry = root / "boot/loader/entries/debian.conf"
    entry.parent.mkdir(parents=True)
    entry.write_text("title Debian\nlinux /vmlinuz\noptions root=LABEL=root ro quiet\n")
    cfg = write_config(tmp_path / "c.json", {
        "kernelArguments": {"shouldExist": ["console=ttyS0"], "shouldNotExist": ["quiet"]},
        "storage": {"files": [{"path": "/etc/motd", "overwrite": True, "contents": {"source": "data:,hi"}}]},
    })
    validated = run_cli("validate", str(cfg))
    assert validated.returncode == 0 and "warning" not in validated.stdout
    applied = run_cli("apply", "--root", str(root), str(cfg))
    assert applied.returncode == 0, applied.stderr
    assert entry.read_text() == "title Debian\nlinux /vmlinuz\noptions root=LABEL=root ro console=ttyS0\n"
    assert (root / "etc/motd").read_text() == "hi"


def test_kernel_arguments_without_a_boot_loader_fail_before_anything_is_written(tmp_path: Path) -> None:
    from apply_fixtures import make_root, run_cli, write_config

    root = make_root(tmp_path / "root")
    cfg = write_config(tmp_path / "c.json", {
        "kernelArguments": {"shouldExist": ["console=ttyS0"]},
        "storage": {"files": [{"path": "/etc/motd", "overwrite": True, "contents": {"source": "data:,hi"}}]},
    })
    applied = run_cli("apply", "--root", str(root), str(cfg))
    assert applied.returncode != 0
    assert "kargs" in applied.stderr and "no boot loader configuration" in applied.stderr
    assert "Traceback" not in applied.stderr
    assert not (root / "etc/motd").exists()
