"""`provision validate` on hostile input: a clear positioned message, the right
exit status, never a traceback. Run as real processes, as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision.config.pipeline import parse_config

PROVISION = Path(sys.executable).with_name("provision")


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def validate(*args: str, cwd: Path) -> Result:
    command = [str(PROVISION)] if PROVISION.exists() else [sys.executable, "-m", "provision"]
    done = subprocess.run(
        [*command, "validate", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    return Result(done.returncode, done.stdout, done.stderr)


def assert_no_crash(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    assert result.status in (1, 2), result.output


def alias_bomb() -> bytes:
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return ("\n".join(lines) + "\n").encode()


# name, content, expected first line of the report (file:line:col: error...)
INVALID = [
    ("malformed.json", b'{"provision": {"version": "1.0.0"},\n "storage": {"files": [1,]}}',
     "malformed.json:2:26: error: invalid JSON: expecting value"),
    ("malformed.yaml", b"provision:\n  version: 1.0.0\n storage: {}\n",
     "malformed.yaml:3:2: error: invalid YAML: did not find expected key"),
    ("garbage.bin", bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0xFF]) * 300,
     "garbage.bin:1:1: error: config is not valid UTF-8 (byte 0x89)"),
    ("nul.bin", b"provision:\n  version: \x00\x01\x02\n",
     "nul.bin:2:12: error: config contains a NUL byte"),
    ("empty.json", b"", "empty.json:1:1: error: config is empty"),
    ("blank.yaml", b"\n   \n# nothing here\n", "blank.yaml:1:1: error: config is empty"),
    ("deep.json", b"[" * 100_000, "deep.json:1:65: error: nesting deeper than 64 levels"),
    ("deep.yaml", b"a: " + b"[" * 100_000, "deep.yaml:1:67: error at $.a"),
    ("dup.json", b'{"provision": {"version": "1.0.0", "version": "1.0.0"}}',
     "dup.json:1:36: error at $.provision.version: duplicate key 'version'"
     " (first defined at line 1, column 16)"),
    ("dup.yaml", b"provision:\n  version: 1.0.0\nprovision: {}\n",
     "dup.yaml:3:1: error at $.provision: duplicate key 'provision'"
     " (first defined at line 1, column 1)"),
    # a1..a4 expand to 12,340 values; each *a4 adds 11,111: the 8th passes 100,000.
    ("bomb.yaml", alias_bomb(),
     "bomb.yaml:6:45: error at $.a5[7]: YAML aliases expand to more than 100000 values"),
    ("utf16.json", '{"provision": {"version": "1.0.0"}}'.encode("utf-16"),
     "utf16.json:1:1: error: config is UTF-16 text; only UTF-8 is accepted"),
]


@pytest.mark.parametrize(("name", "content", "first_line"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_input_gets_a_positioned_message(
    tmp_path: Path, name: str, content: bytes, first_line: str
) -> None:
    (tmp_path / name).write_bytes(content)
    result = validate(name, cwd=tmp_path)
    assert_no_crash(result)
    assert result.status == 1
    assert result.stdout.splitlines()[0].startswith(first_line), result.output
    assert f"{name}: invalid (1 error(s), 0 warning(s))" in result.stderr


def test_a_50_mb_file_is_refused_clearly(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as stream:
        stream.write(b'{"provision": {"version": "1.0.0"}, "pad": "')
        chunk = b"x" * (1024 * 1024)
        for _ in range(50):
            stream.write(chunk)
        stream.write(b'"}')
    result = validate("big.json", cwd=tmp_path)
    assert_no_crash(result)
    assert result.status == 1
    assert result.stdout.startswith("big.json:1:1: error: config is larger than 16 MiB\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "adir").mkdir(), "provision validate: adir: is a directory, not a config file"),
        (lambda p: None, "provision validate: adir: no such file"),
    ],
    ids=["directory", "missing"],
)
def test_unreadable_paths_exit_2(tmp_path: Path, make: Any, message: str) -> None:
    make(tmp_path)
    result = validate("adir", cwd=tmp_path)
    assert_no_crash(result)
    assert result.status == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_unreadable_file_among_good_ones_still_exits_2(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text('{"provision": {"version": "1.0.0"}}')
    (tmp_path / "bad.json").write_text("{")
    result = validate("ok.json", "bad.json", "gone.json", cwd=tmp_path)
    assert_no_crash(result)
    assert result.status == 2
    assert "ok.json: valid" in result.stdout
    assert "bad.json:1:2: error: invalid JSON: unexpected end of input" in result.stdout
    assert "gone.json: no such file" in result.stderr


def test_loader_errors_in_json_and_github_formats(tmp_path: Path) -> None:
    (tmp_path / "dup.json").write_bytes(b'{\n  "a": 1,\n  "a": 2\n}')
    result = validate("--format", "json", "dup.json", cwd=tmp_path)
    assert_no_crash(result)
    report = json.loads(result.stdout)
    [diagnostic] = report["files"][0]["diagnostics"]
    assert (diagnostic["line"], diagnostic["column"], diagnostic["path"]) == (3, 3, "$.a")
    assert diagnostic["related"] == [{"file": "dup.json", "line": 2, "column": 3}]
    result = validate("--format", "github", "dup.json", cwd=tmp_path)
    assert result.stdout.startswith("::error file=dup.json,line=3,col=3,")


def test_stdin_is_read_with_dash(tmp_path: Path) -> None:
    command = [str(PROVISION)] if PROVISION.exists() else [sys.executable, "-m", "provision"]
    done = subprocess.run(
        [*command, "validate", "-"], input=b"[[[", capture_output=True, cwd=tmp_path, timeout=60
    )
    out = done.stdout.decode()
    assert done.returncode == 1
    assert out.startswith("-:1:4: error: invalid JSON: unexpected end of input")


# -- properties (in process: parse_config is what `validate` runs per file) --

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
# Values shaped like configs, so that the schema and the semantic checks are reached.
section_names = st.sampled_from(["storage", "systemd", "passwd", "containers", "provision", "ignition"])
config_like = st.fixed_dictionaries(
    {"provision": st.fixed_dictionaries({"version": st.just("1.0.0")})},
    optional={"storage": json_values, "systemd": json_values, "passwd": json_values,
              "containers": json_values},
) | st.dictionaries(section_names, json_values, max_size=4)


def assert_terminates_with_diagnostics(data: bytes) -> None:
    parsed = parse_config(data, "prop.json")
    if not parsed.ok:
        assert parsed.diagnostics
        assert all(d.file == "prop.json" for d in parsed.diagnostics)


@PROPERTY
@given(json_values)
def test_validate_never_raises_on_any_json_value(value: Any) -> None:
    assert_terminates_with_diagnostics(json.dumps(value).encode())


@PROPERTY
@given(config_like)
def test_validate_never_raises_on_config_shaped_values(value: Any) -> None:
    assert_terminates_with_diagnostics(json.dumps(value, indent=1).encode())


@PROPERTY
@given(st.binary(max_size=300))
def test_validate_never_raises_on_any_bytes(data: bytes) -> None:
    assert_terminates_with_diagnostics(data)


def test_snippet_of_an_unparsable_file_is_shown_and_sanitised(tmp_path: Path) -> None:
    """Even when parsing fails the source line is shown, with control characters made harmless."""
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"provision": {"version": "1.0.0"}, "a": \x1b[31m tru }')
    proc = subprocess.run([sys.executable, "-m", "provision", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "\x1b" not in proc.stdout + proc.stderr
    assert '"provision"' in proc.stdout and "^" in proc.stdout


# --- a large data: URL costs memory in proportion to its size ----------------

_PEAK_RSS = (
    "import resource, sys\n"
    "from provision.cli import main\n"
    "status = main(['validate', sys.argv[1]])\n"
    "print(status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
)


@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "percent-escaped"])
@pytest.mark.parametrize("kind", ["provision", "ignition"])
def test_a_15_mib_data_url_validates_in_bounded_memory(tmp_path: Path, kind: str, escaped: bool) -> None:
    """A repeated-alternation regex once kept state per character: 1.8 GiB for 15 MiB."""
    import hashlib

    size = 15 << 20
    data = b"A" * (size // 3) if escaped else b"a" * size
    payload = "%41" * len(data) if escaped else data.decode()
    # A verification hash makes validate decode the data and hash it too.
    digest = "sha256-" + hashlib.sha256(data).hexdigest()
    contents: dict[str, Any] = {"source": "data:," + payload, "verification": {"hash": digest}}
    header = {"provision": {"version": "1.0.0"}} if kind == "provision" else {"ignition": {"version": "3.4.0"}}
    config = {**header, "storage": {"files": [{"path": "/big", "contents": contents}]}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(path)],
                          capture_output=True, text=True, timeout=120)
    status, peak_mib = (int(x) for x in done.stdout.splitlines()[-1].split())
    assert status == 0, done.stderr
    # The text itself, its JSON value and the decoded bytes: a few times 15 MiB.
    assert peak_mib < 400, f"validating a 15 MiB data: URL peaked at {peak_mib} MiB"
