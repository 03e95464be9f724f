"""The human YAML format: header, snake_case keys, strictness, positions, formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from transpile_fixtures import HEADER, KEY, run_transpile

from provision.cli import main
from provision.importers.human.shape import snake_name


@pytest.mark.parametrize(
    ("spec", "human"),
    [("httpHeaders", "http_headers"), ("sizeMiB", "size_mib"), ("startMiB", "start_mib"),
     ("passwordHash", "password_hash"), ("sshAuthorizedKeys", "ssh_authorized_keys"),
     ("kernelArguments", "kernel_arguments"), ("hostIp", "host_ip"), ("typeGuid", "type_guid"),
     ("path", "path")],
)
def test_spec_keys_map_to_snake_case(spec: str, human: str) -> None:
    assert snake_name(spec) == human


def test_snake_case_keys_become_the_specs_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        "storage:\n  disks:\n    - device: /dev/vdb\n      wipe_table: true\n"
        "      partitions: [{label: a, size_mib: 10, start_mib: 2}]\n"
        "passwd:\n  users:\n    - name: core\n      no_create_home: true\n"
        f"      ssh_authorized_keys: ['{KEY}']\n"
    ))
    assert got.status == 0, got.stderr
    assert got.spec == {
        "provision": {"version": "1.1.0"},
        "storage": {"disks": [{"device": "/dev/vdb", "wipeTable": True,
                               "partitions": [{"label": "a", "sizeMiB": 10, "startMiB": 2}]}]},
        "passwd": {"users": [{"name": "core", "noCreateHome": True, "sshAuthorizedKeys": [KEY]}]},
    }


def test_unknown_key_is_an_error_at_its_line_and_column(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + "storage:\n  files:\n    - path: /a\n      colour: red\n")
    assert got.status == 1 and got.spec is None
    diag = got.only("error")
    assert diag["message"] == "unknown key 'colour'"
    assert (diag["line"], diag["column"]) == (6, 7)
    assert diag["file"].endswith("config.yaml")


def test_camel_case_key_gets_the_snake_case_hint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + "passwd:\n  users:\n    - name: a\n      passwordHash: x\n")
    diag = got.only("error")
    assert "'password_hash'" in diag["hint"] and diag["line"] == 6


def test_misspelled_key_gets_a_close_match(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + "systemd:\n  units:\n    - name: a.service\n      enabeld: true\n")
    assert "'enabled'" in got.only("error")["hint"]


def test_keys_inside_env_are_the_users_own(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        "containers:\n  runtime: docker\n  containers:\n    - name: a\n      image: busybox\n"
        "      env: {logLevel: debug, HTTP_PROXY: x}\n"
    ))
    assert got.status == 0, got.stderr
    assert got.spec is not None
    assert got.spec["containers"]["containers"][0]["env"] == {"logLevel": "debug", "HTTP_PROXY": "x"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("variant: coreos\nversion: 1.5.0\n", "unknown variant 'coreos'"),
        ("variant: provision\n", "missing version of the human YAML format"),
        ("variant: provision\nversion: 2.0.0\n", "unsupported version '2.0.0' of the human YAML format"),
        (HEADER + "provision:\n  version: 1.0.0\n", "the version goes at the top level of human YAML"),
    ],
)
def test_header_mistakes(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str) -> None:
    got = run_transpile(capsys, tmp_path, text)
    assert got.status == 1
    assert got.only("error")["message"].startswith(message)


def test_unknown_variant_names_the_butane_variants(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, "variant: coreos\nversion: 1.5.0\n")
    assert "fcos, flatcar, openshift, r4e or fiot" in got.only("error")["hint"]


def test_provision_section_holds_fetch_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = run_transpile(capsys, tmp_path, HEADER + (
        "provision:\n  timeouts: {http_total: 30}\n  config:\n    merge:\n      - source: https://example.com/base.json\n"
    ))
    assert got.status == 0, got.stderr
    assert got.spec == {"provision": {"version": "1.1.0", "timeouts": {"httpTotal": 30},
                                      "config": {"merge": [{"source": "https://example.com/base.json"}]}}}


def test_errors_in_the_generated_json_point_at_the_yaml_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A schema error and a semantic error, both found in the output, reported at the YAML."""
    schema = run_transpile(capsys, tmp_path, HEADER + "passwd:\n  users:\n    - name: core\n      uid: lots\n")
    diag = schema.only("error")
    assert (diag["line"], diag["column"], diag["path"]) == (6, 12, "$.passwd.users[0].uid")
    assert "integer" in diag["message"]
    semantic = run_transpile(capsys, tmp_path, HEADER + "storage:\n  files:\n    - path: /ok\n    - path: rel/a\n")
    diag = semantic.only("error")
    assert (diag["line"], diag["column"], diag["path"]) == (6, 13, "$.storage.files[1].path")


def test_error_in_sugar_output_points_at_the_sugar(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The data: URL made from inline text carries a header only http sources may: at the inline line."""
    got = run_transpile(capsys, tmp_path, HEADER + (
        "storage:\n  files:\n    - path: /a\n      contents:\n        inline: hi\n"
        "        http_headers: [{name: X, value: y}]\n"
    ))
    assert got.status == 1
    assert [d["line"] for d in got.diagnostics if d["severity"] == "error"] == [8]


def test_text_format_shows_the_source_line_and_caret(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(HEADER + "storage:\n  files:\n    - path: /a\n      mode: '0999'\n")
    assert main(["transpile", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{config}:6:13: error at $.storage.files[0].mode" in err
    assert "    6 |       mode: '0999'" in err and "nothing written" in err


def test_github_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(HEADER + "storage:\n  files:\n    - path: /a\n      colour: red\n")
    assert main(["transpile", "--format", "github", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"::error file={config},line=6,col=7,")


def test_validate_reads_human_yaml_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "motd").write_text("hi\n")
    config = tmp_path / "c.yaml"
    config.write_text(HEADER + "storage:\n  files:\n    - path: /etc/motd\n      contents: {local: motd}\n")
    assert main(["validate", str(config)]) == 0
    assert ": valid" in capsys.readouterr().out


def test_validate_reads_human_yaml_with_a_provision_section(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(HEADER + "provision:\n  timeouts: {http_total: 30}\n")
    assert main(["validate", str(config)]) == 0
