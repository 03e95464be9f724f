"""Golden tests: human YAML in, machine JSON out.

The expected JSON files in tests/golden/ were written by hand from the spec
(key mapping, octal modes, data: URL encoding, the documented mount-unit
format), not copied from the tool's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.cli import main

GOLDEN = Path(__file__).parent / "golden"
CASES = [
    (["basic.yaml"], [], "basic.json"),
    (["sugar.yaml"], ["--files-dir", str(GOLDEN / "files")], "sugar.json"),
    (["merge-base.yaml", "merge-node.yaml"], [], "merge.json"),
]


@pytest.mark.parametrize(("inputs", "options", "expected"), CASES, ids=[c[2] for c in CASES])
def test_golden(inputs: list[str], options: list[str], expected: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    status = main(["transpile", *options, "-o", str(out), *(str(GOLDEN / i) for i in inputs)])
    assert status == 0
    assert json.loads(out.read_text()) == json.loads((GOLDEN / expected).read_text())


def test_pretty_and_compact_outputs_hold_the_same_config(tmp_path: Path) -> None:
    compact, pretty = tmp_path / "c.json", tmp_path / "p.json"
    assert main(["transpile", "-o", str(compact), str(GOLDEN / "basic.yaml")]) == 0
    assert main(["transpile", "--pretty", "-o", str(pretty), str(GOLDEN / "basic.yaml")]) == 0
    assert json.loads(compact.read_text()) == json.loads(pretty.read_text())
    assert "\n  " in pretty.read_text() and compact.read_text().count("\n") == 1
