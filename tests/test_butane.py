"""Butane configs read as they are: the Ignition config Butane would produce, and what it refuses.

Cases are data (tests/data/butane/*.yaml, written from Butane's documented
examples and tests). Each valid case is also run through
``ignition-validate`` where the produced spec is one it knows (3.0-3.3), and
through ``provision transpile``/``validate`` end to end.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.cli import main
from provision.config.checks.dataurl import parse_data_url
from provision.importers.butane import to_ignition
from provision.importers.butane.variants import VARIANTS
from provision.importers.human import using_files_dir
from provision.source.loader import load_document

DATA = Path(__file__).parent / "data" / "butane"
CASES = yaml.safe_load((DATA / "cases.yaml").read_text())
ERRORS = yaml.safe_load((DATA / "errors.yaml").read_text())
IGNITION_VALIDATE_SPECS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0")  # Debian's ignition 2.14


def make_files(root: Path, files: dict[str, Any] | None) -> None:
    """The --files-dir of a case: text files, {text, mode} files, {link} symlinks, "dir/" folders."""
    for name, spec in (files or {}).items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, dict) and "link" in spec:
            path.symlink_to(spec["link"])
        elif isinstance(spec, dict) and "gzip" in spec:
            path.write_bytes(gzip.compress(spec["gzip"].encode()))
        elif isinstance(spec, dict):
            path.write_text(spec["text"])
            path.chmod(spec["mode"])
        else:
            path.write_text(spec)


def translate(case: dict[str, Any], tmp_path: Path) -> Any:
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    make_files(files_dir, case.get("files"))
    doc = load_document(case["butane"].encode(), str(tmp_path / "config.bu"))
    with using_files_dir(files_dir):
        return to_ignition(doc)


def contains(actual: Any, expected: Any, where: str = "$") -> None:
    """Every key of ``expected`` in ``actual`` with a matching value; lists entry by entry, same length."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a mapping"
        for key, value in expected.items():
            assert key in actual, f"{where}: no {key!r} in {sorted(actual)}"
            contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
            contains(got, want, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def decoded(resource: dict[str, Any]) -> str:
    data = parse_data_url(resource["source"]).data
    if resource.get("compression") == "gzip":
        data = gzip.decompress(data)
    return data.decode()


def _all_decoded(node: Any) -> list[str]:
    """The decoded text of every data: URL resource anywhere in an Ignition config."""
    if isinstance(node, dict):
        here = [decoded(node)] if str(node.get("source", "")).startswith("data:") else []
        return here + [t for v in node.values() for t in _all_decoded(v)]
    if isinstance(node, list):
        return [t for v in node for t in _all_decoded(v)]
    return []


def file_text(ign: dict[str, Any], path: str) -> str:
    entry = next(f for f in ign["storage"]["files"] if f["path"] == path)
    parts = [entry["contents"]] if "contents" in entry else []
    return "".join(decoded(r) for r in parts + entry.get("append", []))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_butane_case_gives_the_ignition_butane_gives(case: dict[str, Any], tmp_path: Path) -> None:
    got = translate(case, tmp_path)
    errors = [d for d in got.diagnostics if d.is_error]
    assert not errors, errors
    assert got.ignition is not None
    contains(got.ignition, case["ignition"])
    for path, text in (case.get("contents") or {}).items():
        assert file_text(got.ignition, path) == text
    for name in case.get("embedded", []):  # each of these local files reached a resource
        assert case["files"][name] in _all_decoded(got.ignition), name
    for path in case.get("absent", []):
        node = got.ignition
        for part in path[:-1]:
            node = node.get(part, {})
        assert path[-1] not in node, path
    warnings = sorted({d.message for d in got.diagnostics})
    assert warnings == sorted(set(case.get("warnings", []))) or (case.get("warnings") is None and not warnings)


@pytest.mark.skipif(shutil.which("ignition-validate") is None, reason="ignition-validate not installed")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ignition_validate_accepts_what_butane_cases_produce(case: dict[str, Any], tmp_path: Path) -> None:
    got = translate(case, tmp_path)
    if got.spec_version not in IGNITION_VALIDATE_SPECS:
        pytest.skip(f"ignition-validate 2.14 does not know spec {got.spec_version}")
    out = tmp_path / "config.ign"
    out.write_text(json.dumps(got.ignition))
    done = subprocess.run(["ignition-validate", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("case", ERRORS, ids=[c["name"] for c in ERRORS])
def test_butane_refuses_with_a_position(case: dict[str, Any], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    make_files(files_dir, case.get("files"))
    config = tmp_path / "config.bu"
    config.write_text(case["butane"])
    capsys.readouterr()
    status = main(["validate", "--format", "json", "--files-dir", str(files_dir), str(config)])
    report = json.loads(capsys.readouterr().out)
    severity = "warning" if case.get("warning") else "error"
    assert status == (0 if severity == "warning" else 1)
    found = [d for d in report["files"][0]["diagnostics"] if d["severity"] == severity]
    matching = [d for d in found if case["error"] in d["message"]]
    assert matching, found
    line, column = (int(n) for n in case["at"].split(":"))
    assert (matching[0]["line"], matching[0]["column"]) == (line, column), matching[0]


def spec_of(variant: str, version: str, tmp_path: Path) -> str | None:
    extra = ""
    if variant == "openshift":
        extra = "metadata:\n  name: x\n  labels:\n    machineconfiguration.openshift.io/role: worker\n"
    doc = load_document(f"variant: {variant}\nversion: {version}\n{extra}".encode(), str(tmp_path / "c.bu"))
    got = to_ignition(doc)
    assert not [d for d in got.diagnostics if d.is_error], got.diagnostics
    return None if got.ignition is None else got.ignition["ignition"]["version"]


# Which Ignition spec each Butane version produces (coreos/butane config/config.go, docs/specs.md).
SPECS = {
    ("fcos", "1.0.0"): "3.0.0", ("fcos", "1.1.0"): "3.1.0", ("fcos", "1.2.0"): "3.2.0",
    ("fcos", "1.3.0"): "3.2.0", ("fcos", "1.4.0"): "3.3.0", ("fcos", "1.5.0"): "3.4.0",
    ("fcos", "1.6.0"): "3.5.0", ("fcos", "1.7.0"): "3.6.0", ("flatcar", "1.0.0"): "3.3.0", ("flatcar", "1.1.0"): "3.4.0",
    ("r4e", "1.0.0"): "3.3.0", ("r4e", "1.1.0"): "3.4.0", ("fiot", "1.0.0"): "3.4.0",
    ("openshift", "4.8.0"): "3.2.0", ("openshift", "4.13.0"): "3.2.0", ("openshift", "4.14.0"): "3.4.0",
    ("openshift", "4.18.0"): "3.4.0", ("openshift", "4.19.0"): "3.5.0", ("openshift", "4.22.0"): "3.5.0",
}


@pytest.mark.parametrize(("variant", "version"), sorted(SPECS))
def test_each_version_produces_its_ignition_spec(variant: str, version: str, tmp_path: Path) -> None:
    assert spec_of(variant, version, tmp_path) == SPECS[(variant, version)]


def test_the_format_marker_knows_every_variant() -> None:
    from provision.config import kinds
    from provision.importers.butane.variants import NAMES

    assert kinds._BUTANE_VARIANTS == set(NAMES) == {name for name, _ in VARIANTS}


def test_every_listed_variant_version_translates(tmp_path: Path) -> None:
    for variant, version in VARIANTS:
        assert spec_of(variant, version, tmp_path) == VARIANTS[(variant, version)].spec


# --- files directory -----------------------------------------------------


def butane_with_local(local: str) -> str:
    return f"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/x\n      contents:\n        local: {local}\n"


def butane_with_tree(local: str) -> str:
    return f"variant: fcos\nversion: 1.5.0\nstorage:\n  trees:\n    - local: {local}\n      path: /etc/x\n"


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """A files dir next to a secret outside it."""
    (tmp_path / "secret").write_text("root:x:0:0\n")
    (tmp_path / "secret-dir").mkdir()
    (tmp_path / "secret-dir" / "key").write_text("private\n")
    inside = tmp_path / "files"
    inside.mkdir()
    (inside / "ok.txt").write_text("fine\n")
    return inside


def transpile_cli(text: str, files_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    config = files_dir.parent / "config.bu"
    config.write_text(text)
    out = files_dir.parent / "out.json"
    capsys.readouterr()
    status = main(["transpile", "--files-dir", str(files_dir), "-o", str(out), str(config)])
    return status, capsys.readouterr().err, out


@pytest.mark.parametrize("local", ["../secret", "/etc/passwd", "sub/../../secret", "escape", "link-to-secret"])
def test_local_paths_cannot_leave_the_files_dir(local: str, files_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (files_dir / "escape").symlink_to("../secret")
    (files_dir / "link-to-secret").symlink_to(files_dir.parent / "secret")
    (files_dir / "sub").mkdir()
    status, err, out = transpile_cli(butane_with_local(local), files_dir, capsys)
    assert status == 1 and not out.exists()
    assert "config.bu:7:16" in err
    assert "root:x" not in err


@pytest.mark.parametrize("local", ["..", "../secret-dir", "dir-link"])
def test_trees_cannot_leave_the_files_dir(local: str, files_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files_dir / "dir-link").symlink_to("../secret-dir")
    status, err, out = transpile_cli(butane_with_tree(local), files_dir, capsys)
    assert status == 1 and not out.exists()
    assert "config.bu:5:14" in err


def test_a_link_inside_a_tree_is_copied_as_a_link_never_followed(files_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (files_dir / "tree").mkdir()
    (files_dir / "tree" / "key").symlink_to(files_dir.parent / "secret-dir" / "key")
    status, err, out = transpile_cli(butane_with_tree("tree"), files_dir, capsys)
    assert status == 0, err
    spec = json.loads(out.read_text())
    assert spec["storage"]["links"] == [{"path": "/etc/x/key", "target": str(files_dir.parent / "secret-dir" / "key")}]
    assert "private" not in out.read_text()


def test_a_fifo_in_a_tree_is_refused(files_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files_dir / "tree").mkdir()
    os.mkfifo(files_dir / "tree" / "pipe")
    status, err, _ = transpile_cli(butane_with_tree("tree"), files_dir, capsys)
    assert status == 1
    assert "trees may only contain files, directories, and symlinks" in err


def test_local_files_of_a_config_from_stdin_are_read_from_the_files_dir(files_dir: Path,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = files_dir.parent / "out.json"
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(butane_with_local("ok.txt").encode())))
    status = main(["transpile", "--files-dir", str(files_dir), "-o", str(out), "-"])
    assert status == 0, capsys.readouterr().err
    spec = json.loads(out.read_text())
    assert decoded(spec["storage"]["files"][0]["contents"]) == "fine\n"


# --- end to end ----------------------------------------------------------


def test_transpile_writes_provision_json_with_the_same_meaning(files_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "variant: fcos\nversion: 1.4.0\n"
        "storage:\n  files:\n    - path: /etc/x\n      mode: 0600\n      contents:\n        local: ok.txt\n"
        "systemd:\n  units:\n    - name: a.service\n      enabled: true\n"
        "      contents: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n\"\n"
    )
    status, err, out = transpile_cli(text, files_dir, capsys)
    assert status == 0, err
    spec = json.loads(out.read_text())
    assert spec["provision"] == {"version": "1.1.0"}
    assert spec["storage"]["files"][0]["mode"] == 0o600
    assert decoded(spec["storage"]["files"][0]["contents"]) == "fine\n"
    assert spec["systemd"]["units"][0]["enabled"] is True


def test_a_problem_in_the_generated_config_points_at_the_sugar(files_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (files_dir / "broken.service").write_text("[Service\nExecStart=/bin/true\n")
    text = ("variant: fcos\nversion: 1.5.0\n"
            "systemd:\n  units:\n    - name: a.service\n      contents_local: broken.service\n")
    status, err, out = transpile_cli(text, files_dir, capsys)
    assert status == 1 and not out.exists()
    assert "config.bu:6:23" in err, err


# --- properties ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=["Cs"]), max_size=400),
       version=st.sampled_from(["1.0.0", "1.1.0", "1.4.0", "1.6.0", "1.7.0"]))
def test_inline_text_survives_any_encoding_butane_picks(text: str, version: str) -> None:
    """Whatever data: URL (percent, base64, gzip) a version chooses, the file holds exactly the text."""
    yaml_text = yaml.safe_dump({"variant": "fcos", "version": version,
                                "storage": {"files": [{"path": "/etc/x", "contents": {"inline": text}}]}})
    got = to_ignition(load_document(yaml_text.encode(), "prop.bu"))
    assert got.ignition is not None, got.diagnostics
    resource = got.ignition["storage"]["files"][0]["contents"]
    assert decoded(resource) == text
    if version == "1.0.0":
        assert "compression" not in resource  # spec 3.0.0 via fcos 1.0.0: Butane never compresses


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.text(max_size=12)
    | st.sampled_from(["/dev/sda", "/var/x", "swap", "xfs", "a.txt", "root", "x86_64", "s390x-eckd"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["path", "device", "format", "with_mount_unit", "inline", "local", "source", "mirror",
                         "devices", "luks", "tpm2", "tang", "layout", "users", "name", "password_hash",
                         "contents_local", "trees", "files", "filesystems", "cex", "enabled", "label",
                         "size_mib", "start_mib", "number", "partitions", "disks", "luks", "clevis",
                         "wipe_table", "mount_options", "units", "dropins", "contents", "mode", "labels",
                         "ssh_authorized_keys_local", "should_exist", "discard", "threshold", "fips",
                         "kernel_arguments", "kernel_type", "extensions", "options", "config", "merge"]),
        inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=int(os.environ.get("BUTANE_FUZZ_EXAMPLES", "300")), deadline=None)
@given(body=st.dictionaries(st.sampled_from(["storage", "systemd", "passwd", "boot_device", "grub", "ignition",
                                             "kernel_arguments", "metadata", "openshift"]), _values, max_size=4),
       variant=st.sampled_from(sorted(VARIANTS)))
def test_any_butane_document_gives_diagnostics_never_a_traceback(body: dict[str, Any], variant: Any) -> None:
    from provision.importers.butane import to_spec

    doc = load_document(
        yaml.safe_dump({"variant": variant[0], "version": variant[1], **body}).encode(), "fuzz.bu")
    imported = to_spec(doc)
    assert imported.spec is not None or any(d.is_error for d in imported.diagnostics)
