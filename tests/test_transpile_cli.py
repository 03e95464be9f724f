"""provision transpile as a user runs it: inputs of every kind, merging, outputs, platforms, exit codes."""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

import pytest
from transpile_fixtures import HEADER, KEY, run_transpile

from provision.cli import main


def big_files(count: int, size: int, seed: int = 0) -> str:
    """Human YAML with ``count`` files of ``size`` random letters each.

    Random text defeats the per-file gzip of data: URLs. With seed 0 every
    file holds the same text, so the whole config compresses well; with
    another seed each file differs and it does not.
    """
    import random

    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    shared = "".join(rng.choice(alphabet) for _ in range(size))
    lines = [HEADER, "storage:\n  files:\n"]
    for i in range(count):
        text = shared if seed == 0 else "".join(rng.choice(alphabet) for _ in range(size))
        lines.append(f"    - path: /etc/f{i}\n      contents: {{inline: {text}}}\n")
    return "".join(lines)


# -- exit codes and outputs ------------------------------------------------------


def test_missing_input_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["transpile", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_files_dir_must_be_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(HEADER)
    assert main(["transpile", "--files-dir", str(config), str(config)]) == 2


def test_output_goes_to_stdout_without_o(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(HEADER + "systemd:\n  units: [{name: a.service, mask: true}]\n")
    assert main(["transpile", str(config)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"provision": {"version": "1.1.0"},
                                   "systemd": {"units": [{"name": "a.service", "mask": True}]}}
    assert out.err == ""


def test_output_file_is_private_and_untouched_on_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good, bad, out = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "out.json"
    good.write_text(HEADER + f"passwd:\n  users: [{{name: core, ssh_authorized_keys: ['{KEY}']}}]\n")
    bad.write_text(HEADER + "passwd:\n  users: [{name: core, colour: red}]\n")
    assert main(["transpile", "-o", str(out), str(good)]) == 0
    assert os.stat(out).st_mode & 0o777 == 0o600
    before = out.read_bytes()
    assert main(["transpile", "-o", str(out), str(bad)]) == 1
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "good.yaml", "out.json"]


def test_stdin_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((HEADER + "storage: {}\n").encode())))
    assert main(["transpile", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"provision": {"version": "1.1.0"}, "storage": {}}


# -- other input formats -----------------------------------------------------------


def test_ignition_config_becomes_machine_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ignition = {"ignition": {"version": "3.3.0"},
                "storage": {"files": [{"path": "/etc/a", "mode": 420, "contents": {"source": "data:,a"}}]}}
    got = run_transpile(capsys, tmp_path, json.dumps(ignition), name="c.ign")
    assert got.status == 0
    assert got.spec == {"provision": {"version": "1.1.0"}, "storage": ignition["storage"]}


def test_ignition_spec_2_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, '{"ignition": {"version": "2.3.0"}}', name="c.ign")
    assert got.status == 1 and "not supported" in got.only("error")["message"]


def test_provision_json_input_passes_through(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = {"provision": {"version": "1.1.0"}, "systemd": {"units": [{"name": "a.service", "mask": True}]}}
    got = run_transpile(capsys, tmp_path, json.dumps(spec), name="c.json")
    assert got.status == 0 and got.spec == spec


def test_older_spec_input_comes_out_in_the_newest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = {"provision": {"version": "1.0.0"}, "systemd": {"units": [{"name": "a.service", "mask": True}]}}
    got = run_transpile(capsys, tmp_path, json.dumps(spec), name="c.json")
    assert got.status == 0 and got.spec == {**spec, "provision": {"version": "1.1.0"}}


CLOUD_CONFIG = f"""#cloud-config
hostname: web-1
packages: [nginx]
users:
  - name: ops
    ssh_authorized_keys: [{KEY}]
"""


def test_cloud_config_unsupported_key_is_a_warning_at_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    got = run_transpile(capsys, tmp_path, CLOUD_CONFIG)
    assert got.status == 0
    diag = got.only("warning")
    assert "packages" in diag["message"] and diag["line"] == 3
    assert got.spec is not None
    assert [u["name"] for u in got.spec["passwd"]["users"]] == ["ops"]


def test_cloud_config_unsupported_key_is_fatal_with_strict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    got = run_transpile(capsys, tmp_path, CLOUD_CONFIG, options=("--strict",))
    assert got.status == 1 and got.spec is None
    assert got.only("error")["line"] == 3
    assert not (tmp_path / "out.json").exists()


def test_shell_script_user_data_becomes_a_run_once_unit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, "#!/bin/sh\necho hi\n", name="user-data")
    assert got.status == 0 and got.spec is not None
    assert [u["name"] for u in got.spec["systemd"]["units"]] == ["provision-user-scripts.service"]


def test_part_handler_user_data_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, "#part-handler\ndef list_types():\n    return []\n", name="user-data")
    error = got.only("error")
    assert got.status == 1 and "not supported" in error["message"] and error["line"] == 1


# -- merging ---------------------------------------------------------------------


def test_inputs_of_different_kinds_merge_in_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ignition = json.dumps({"ignition": {"version": "3.0.0"},
                           "systemd": {"units": [{"name": "a.service", "enabled": True,
                                                  "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]}})
    human = HEADER + "systemd:\n  units:\n    - name: b.service\n      mask: true\n"
    got = run_transpile(capsys, tmp_path, ignition, human)
    assert got.status == 0, got.stderr
    assert got.spec is not None
    assert [u["name"] for u in got.spec["systemd"]["units"]] == ["a.service", "b.service"]


def test_conflict_names_both_positions_and_the_later_input_wins(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = HEADER + "passwd:\n  users:\n    - name: core\n      shell: /bin/bash\n"
    node = HEADER + "passwd:\n  users:\n    - name: core\n      shell: /bin/zsh\n"
    got = run_transpile(capsys, tmp_path, base, node)
    assert got.status == 0
    assert got.spec is not None and got.spec["passwd"]["users"] == [{"name": "core", "shell": "/bin/zsh"}]
    diag = got.only("warning")
    assert diag["file"].endswith("1-config.yaml") and (diag["line"], diag["column"]) == (6, 14)
    [related] = diag["related"]
    assert related["file"].endswith("0-config.yaml") and (related["line"], related["column"]) == (6, 14)
    assert "/bin/bash" not in diag["message"] and "/bin/zsh" not in diag["message"]
    assert run_transpile(capsys, tmp_path, base, node, options=("--strict",)).status == 1


def test_conflict_against_a_merged_earlier_input_names_the_right_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = HEADER + "storage:\n  files:\n    - {path: /a, mode: '0600'}\n"
    second = HEADER + "storage:\n  files:\n    - {path: /b}\n    - {path: /a, overwrite: true, contents: {inline: x}}\n"
    third = HEADER + "storage:\n  files:\n    - {path: /a, mode: '0644'}\n"
    got = run_transpile(capsys, tmp_path, first, second, third)
    diag = got.only("warning")
    assert diag["file"].endswith("2-config.yaml")
    assert diag["related"][0]["file"].endswith("0-config.yaml") and diag["related"][0]["line"] == 5


def test_equal_values_in_two_inputs_are_no_conflict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    same = HEADER + "systemd:\n  units: [{name: a.service, mask: true}]\n"
    got = run_transpile(capsys, tmp_path, same, same)
    assert got.status == 0 and got.diagnostics == []


def test_error_after_merging_points_at_the_input_that_set_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = HEADER + "storage:\n  files:\n    - path: /ok\n"
    node = HEADER + "storage:\n  files:\n    - path: /etc/x\n      overwrite: true\n"
    got = run_transpile(capsys, tmp_path, base, node)
    diag = got.only("error")  # overwrite without contents
    assert diag["file"].endswith("1-config.yaml") and diag["line"] == 6


# -- platforms -----------------------------------------------------------------------


def test_small_output_fits_without_a_note(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, big_files(2, 100), options=("--platform", "aws"))
    assert got.status == 0 and got.diagnostics == [] and "note" not in got.stderr


def test_aws_output_too_large_is_written_gzipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(big_files(30, 1000))
    out = tmp_path / "user-data"
    assert main(["transpile", "--platform", "aws", "-o", str(out), str(config)]) == 0
    err = capsys.readouterr().err
    data = out.read_bytes()
    assert data[:2] == b"\x1f\x8b" and len(data) <= 16 * 1024
    assert "note:" in err and "16.0 KiB" in err and "fileb://" in err
    spec = json.loads(gzip.decompress(data))
    assert len(spec["storage"]["files"]) == 30
    from provision.platforms.payload import decode_payload

    assert json.loads(decode_payload(data, None, "test")) == spec


def test_gce_gets_gzip_base64_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(big_files(300, 1000))
    out = tmp_path / "user-data"
    assert main(["transpile", "--platform", "gce", "-o", str(out), str(config)]) == 0
    assert "user-data-encoding to gzip+base64" in capsys.readouterr().err
    from provision.platforms.payload import decode_payload

    assert len(json.loads(decode_payload(out.read_bytes(), "gzip+base64", "test"))["storage"]["files"]) == 300


def test_platform_without_compression_warns_by_how_much(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, big_files(40, 1000), options=("--platform", "hetzner"))
    assert got.status == 0
    diag = got.only("warning")
    size = (tmp_path / "out.json").stat().st_size
    assert f"{size - 32 * 1024} bytes over hetzner's user-data limit" in diag["message"]
    strict = run_transpile(capsys, tmp_path, big_files(40, 1000), options=("--platform", "hetzner", "--strict"))
    assert strict.status == 1 and not (tmp_path / "out.json").exists()


def test_incompressible_output_warns_even_gzipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, big_files(30, 1000, seed=1), options=("--platform", "aws"))
    assert got.status == 0
    assert "even gzip-compressed" in got.only("warning")["message"]
    assert json.loads((tmp_path / "out.json").read_bytes())  # written uncompressed


def test_openstack_limit_counts_base64(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """50 KiB of JSON fits 64 KiB raw but not after nova's base64 (~67 KiB): compressed."""
    config = tmp_path / "c.yaml"
    config.write_text(big_files(50, 1000, seed=0))
    out = tmp_path / "user-data"
    assert main(["transpile", "--platform", "openstack", "-o", str(out), str(config)]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert len(base64.b64encode(out.read_bytes())) <= 65535


# -- human output ----------------------------------------------------------------------


def test_to_human_turns_ignition_into_human_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ignition = tmp_path / "c.ign"
    ignition.write_text(json.dumps({"ignition": {"version": "3.4.0"},
                                    "storage": {"directories": [{"path": "/srv", "mode": 493}]},
                                    "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [KEY]}]}}))
    human = tmp_path / "c.yaml"
    assert main(["transpile", "--to-human", "-o", str(human), str(ignition)]) == 0
    text = human.read_text()
    assert text.startswith("variant: provision\nversion: 1.0.0\n")
    assert "mode: '0755'" in text and "ssh_authorized_keys:" in text
    back = tmp_path / "back.json"
    assert main(["transpile", "-o", str(back), str(human)]) == 0
    assert json.loads(back.read_text())["storage"] == {"directories": [{"path": "/srv", "mode": 493}]}


def test_to_human_and_platform_do_not_mix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(HEADER)
    assert main(["transpile", "--to-human", "--platform", "aws", str(config)]) == 2
