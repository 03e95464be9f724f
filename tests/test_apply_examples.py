"""Every example's files and units applied to a fresh root, compared with a checked manifest.

The manifests in tests/data/apply-manifests/ list every node the example adds
or changes (path, type, mode, owner, size, sha256 or link target). They were
generated once with PROVISION_REGEN_MANIFESTS=1 and then checked by hand
against each example (modes from the config, decoded contents, parents
0755 root:root, enable links from each unit's [Install] section); a change in
them must be reviewed the same way. The disks, mount, users and containers
stages are covered by their own tests.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from apply_fixtures import REPO, apply, make_root, manifest

EXAMPLES = sorted((REPO / "examples").glob("*.json"))
MANIFESTS = Path(__file__).parent / "data" / "apply-manifests"
STAGES_HERE = ("storage", "systemd")


def files_and_units(example: Path) -> dict[str, Any]:
    spec = json.loads(example.read_text())
    storage = {k: v for k, v in spec.get("storage", {}).items() if k in ("files", "directories", "links")}
    return {"storage": storage, "systemd": spec.get("systemd", {})}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    out = {}
    for path, entry in sorted(after.items()):
        if before.get(path) != entry:
            kind, *rest = entry
            if kind == "link":
                out[path] = [kind, *rest]
            else:
                out[path] = [kind, oct(rest[0]), *rest[1:]]
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_tree_matches_manifest(example: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    before = manifest(root)
    spec = files_and_units(example)
    apply(spec, root)
    got = changes(before, manifest(root))
    expected_file = MANIFESTS / f"{example.stem}.json"
    if os.environ.get("PROVISION_REGEN_MANIFESTS"):
        expected_file.parent.mkdir(parents=True, exist_ok=True)
        expected_file.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(expected_file.read_text())
    assert got == expected
    removed = set(before) - set(manifest(root))
    assert not removed


def test_every_example_has_a_manifest() -> None:
    assert EXAMPLES, "no examples found"
    assert {e.stem for e in EXAMPLES} == {m.stem for m in MANIFESTS.glob("*.json")}


def test_manifest_contents_match_the_configs_data_urls() -> None:
    """An independent check of the manifests' sha256s: decode each data: URL ourselves."""
    import base64
    import gzip
    from urllib.parse import unquote_to_bytes

    for example in EXAMPLES:
        expected = json.loads((MANIFESTS / f"{example.stem}.json").read_text())
        for entry in files_and_units(example)["storage"].get("files", []):
            contents = entry.get("contents") or {}
            source = contents.get("source")
            if not source or entry.get("append"):
                continue
            header, _, payload = source[5:].partition(",")
            data = base64.b64decode(payload) if header.endswith("base64") else unquote_to_bytes(payload)
            if contents.get("compression") == "gzip":
                data = gzip.decompress(data)
            got = expected[entry["path"].lstrip("/")]
            assert got[-1] == hashlib.sha256(data).hexdigest(), (example.stem, entry["path"])
            assert got[1] == oct(entry.get("mode", 0o644)), (example.stem, entry["path"])
