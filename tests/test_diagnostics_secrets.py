"""Diagnostics never quote a secret: password hashes, plain passwords, registry
passwords, tokens, URL credentials, private keys — in every input format (provision
JSON/YAML, Ignition, human YAML, Butane, #cloud-config, text that does not parse) and every
output format, from the schema, the semantic checks, the importers and the parsers.
The quoted line keeps its position, its key name and a caret on the right token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provision.cli import main

# Each case: a config whose diagnostics land on lines holding secrets.
CASES = {
    "cloud-config": ("user-data.yaml", """\
#cloud-config
users:
  - name: alice
    lock_passwd: false
    plain_text_passwd: pl41nt3xtpw
chpasswd: {list: "root:chp4sswdl1st"}
""", ["pl41nt3xtpw", "chp4sswdl1st"]),
    "provision yaml": ("own.yaml", """\
provision:
  version: 1.0.0
passwd:
  users:
    - name: core
      passwordHash: n0tah4sh-s3cr3t
containers:
  runtime: docker
  registries:
    credentials:
      - {registry: r.example, username: u, password: r3g1stryp4ss, bogus: 1}
storage:
  files:
    - path: /etc/x
      contents: {source: "https://bob:urlp4ss@example.com/x?token=qu3ryt0k3n", verification: {hash: "md5-00"}, \
httpHeaders: [{name: "Bad Name", value: "Bearer h34d3rt0k3n"}]}
""", ["n0tah4sh-s3cr3t", "r3g1stryp4ss", "urlp4ss", "qu3ryt0k3n", "h34d3rt0k3n"]),
    "provision json one line": ("own.json", json.dumps({
        "provision": {"version": "1.0.0"},
        "passwd": {"users": [{"name": "a", "passwordHash": "$6$salt$j50nh4shv4lue", "bogus": 1}]},
    }), ["j50nh4shv4lue"]),
    "ignition": ("ign.json", json.dumps({
        "ignition": {"version": "3.4.0"},
        "passwd": {"users": [{"name": "a", "passwordHash": "$6$salt$1gn1t10nh4sh", "shell": 5}]},
    }), ["1gn1t10nh4sh"]),
    "human yaml": ("human.yaml", """\
variant: provision
version: 1.0.0
passwd:
  users:
    - name: alice
      password: {plain: hum4npl41n, bogus: 1}
""", ["hum4npl41n"]),
    "butane": ("butane.yaml", """\
variant: fcos
version: 1.5.0
passwd:
  users:
    - name: core
      password_hash: n0th4sh-butan3s3cr3t
storage:
  files:
    - path: /etc/x
      contents: {source: "https://example.com/x", http_headers: [{name: "Bad Name", value: "Bearer butan3t0k3n"}]}
""", ["butan3s3cr3t", "butan3t0k3n"]),
    "unparsable json": ("broken.json",
                        '{"provision": {"version": "1.0.0"}, "passwd": {"users": '
                        '[{"name": "a", "passwordHash": "$6$salt$p4rs3h4sh" "x"}]}}',
                        ["p4rs3h4sh"]),
    "unparsable json, stray token": ("stray.json",
                                     '{"passwd": {"users": [{"name": "a", "passwordHash": "ok" str4yt0k3n}]}}',
                                     ["str4yt0k3n"]),
    "unparsable yaml": ("broken.yaml", """\
provision: {version: 1.0.0}
passwd:
  users:
    - name: a
      passwordHash: $6$salt$y4mlp4rs3h4sh: [oops
""", ["y4mlp4rs3h4sh"]),
}


def _validate(tmp_path: Path, name: str, text: str, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / name
    path.write_text(text)
    status = main(["validate", "--format", fmt, str(path)])
    out, err = capsys.readouterr()
    assert status in (0, 1), err
    return out + err


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_output_format_shows_a_secret(
    tmp_path: Path, case: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, text, secrets = CASES[case]
    output = _validate(tmp_path, name, text, fmt, capsys)
    assert "error" in output or "warning" in output  # the attack needs a diagnostic
    for secret in secrets:
        assert secret not in output, f"{secret!r} shown in the {fmt} output"


@pytest.mark.parametrize("case", sorted(CASES))
def test_quoted_lines_keep_key_position_and_caret(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, text, _secrets = CASES[case]
    output = _validate(tmp_path, name, text, "text", capsys)
    source = text.splitlines()
    masked_any = False
    blocks = re.findall(r"^\S+:(\d+):(\d+): .*\n\s*\d+ \| (.*)\n\s*\| ( *)\^", output, re.MULTILINE)
    assert blocks, output
    for line, column, quoted, pad in blocks:
        original = source[int(line) - 1]
        caret = len(pad)
        if "<redacted>" in quoted:
            masked_any = True
            # The key names stay: everything before the first mask is the source's own text.
            prefix = quoted.split("<redacted>")[0]
            assert original.startswith(prefix)
        # The caret is on the same character it was on in the source (unless that was masked).
        if quoted[caret:caret + len("<redacted>")] != "<redacted>":
            assert quoted[caret] == original[int(column) - 1], (quoted, original, column)
    assert masked_any, output


def test_apply_and_transpile_mask_their_diagnostics_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, text, secrets = CASES["provision yaml"]
    config = tmp_path / name
    config.write_text(text)
    root = tmp_path / "root"
    root.mkdir()
    for argv in (["apply", "--root", str(root), str(config)], ["plan", "--root", str(root), str(config)],
                 ["transpile", str(config)]):
        status = main(argv)
        out, err = capsys.readouterr()
        assert status != 0
        assert "<redacted>" in err
        for secret in secrets:
            assert secret not in out + err, (argv[0], secret)


def test_quotable_lines_cover_multi_line_secrets() -> None:
    """A private key in a YAML block scalar: every line of it is masked, the key name is not."""
    from provision.source.loader import load_document

    text = """\
#cloud-config
ssh_keys:
  rsa_private: |
    -----BEGIN RSA PRIVATE KEY-----
    MIIEowIBAAKCAQEAk3ym4t3r14l
    -----END RSA PRIVATE KEY-----
  rsa_public: ssh-rsa AAAAB3NzaC1yc2E pub
"""
    lines = load_document(text.encode(), "k.yaml").quotable_lines()
    assert lines.secrets[3] == [(15, None)]  # from the block indicator on
    assert all(lines.secrets[n] == [(0, None)] for n in (4, 5, 6))
    assert 7 not in lines.secrets and 2 not in lines.secrets
