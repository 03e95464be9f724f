"""Every example in cloud-init's documentation through provision: nothing dropped silently.

For each document (tests/corpus/cloud-init, see its README): no traceback;
every diagnostic has a file and a line; every top-level key of the
cloud-config (of the merged parts, for multipart user data) is either
translated or named by a diagnostic at its line. The counts of documents that
come through whole, with explained omissions, or refused, are the ones
docs/userdata.md records.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from provision.config.pipeline import ParsedConfig, parse_config
from provision.importers.cloudconfig import HANDLED

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "cloud-init"
DOCUMENTS = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
# A plausible instance (cloud-init's instance-data.json shape) for the Jinja examples.
INSTANCE_DATA: dict[str, Any] = {
    "v1": {"instance_id": "i-0123456789abcdef0", "local_hostname": "ip-10-0-0-5", "region": "us-east-1",
           "availability_zone": "us-east-1a", "platform": "ec2", "cloud_name": "aws", "public_ssh_keys": []},
    "ds": {"meta_data": {"instance-id": "i-0123456789abcdef0", "local-hostname": "ip-10-0-0-5"}},
}


def parse(path: Path) -> ParsedConfig:
    return parse_config(path.read_bytes(), str(path.relative_to(CORPUS)), instance_data=INSTANCE_DATA)


def outcome(parsed: ParsedConfig) -> str:
    if not parsed.ok:
        return "refused"
    return "whole" if not parsed.diagnostics else "explained"


def test_the_corpus_is_all_there() -> None:
    assert len([p for p in DOCUMENTS if p.parent.name == "examples"]) == 37
    assert len(DOCUMENTS) == 165


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(CORPUS)))
def test_nothing_is_dropped_silently(path: Path) -> None:
    parsed = parse(path)
    assert parsed.diagnostics or parsed.ok  # a refusal always says why
    for diag in parsed.diagnostics:
        assert diag.file == str(path.relative_to(CORPUS)) and diag.position is not None, diag
    doc = parsed.document
    if doc is None or not isinstance(doc.value, dict) or parsed.kind not in ("cloud-config", "user-data"):
        assert not parsed.ok  # not read as cloud-config at all: refused, with the reason
        return
    lines_with_findings = {d.position.line for d in parsed.diagnostics if d.position is not None}
    for key in doc.value:
        if key in HANDLED:
            continue
        where = doc.locate_key((key,))
        assert where is not None and where.line in lines_with_findings, f"{key!r} dropped silently"


def test_documented_counts_are_the_measured_ones() -> None:
    counts = {"whole": 0, "explained": 0, "refused": 0}
    for path in DOCUMENTS:
        counts[outcome(parse(path))] += 1
    text = (ROOT / "docs" / "userdata.md").read_text()
    recorded = re.search(r"of the (\d+) documents, (\d+) come through whole, (\d+) are translated with every "
                         r"omission explained, and (\d+) are refused", text)
    assert recorded is not None, "docs/userdata.md lost its corpus figures"
    assert tuple(int(n) for n in recorded.groups()) == (
        len(DOCUMENTS), counts["whole"], counts["explained"], counts["refused"])


def test_a_few_documented_examples_translate_to_what_cloud_init_does() -> None:
    runcmd = parse(CORPUS / "module-docs/cc_runcmd/example1.yaml")
    assert runcmd.spec is not None
    [unit] = runcmd.spec["systemd"]["units"]
    assert "ExecStart=\"ls\" \"-l\" \"/\"" in unit["contents"]
    assert "ExecStart=/bin/sh -c \"ls -l /root\"" in unit["contents"]
    script = parse(CORPUS / "examples/user-script.txt")
    assert script.spec is not None and "provision-user-scripts.service" in str(script.spec)
    hook = parse(CORPUS / "examples/boothook.txt")
    assert hook.spec is not None and "provision-boothooks.service" in str(hook.spec)
    include = parse(CORPUS / "examples/include.txt")
    assert include.spec is not None
    assert [m["source"].rsplit("/", 1)[1] for m in include.spec["provision"]["config"]["merge"]] == [
        "cloud-config-run-cmds.txt", "cloud-config-boot-cmds.txt"]
    phone_home = parse(CORPUS / "module-docs/cc_phone_home/example1.yaml")
    # Rendered with the instance id, then translated (provision.phoneHome, every field).
    assert phone_home.spec is not None and phone_home.diagnostics == []
    url = phone_home.spec["provision"]["phoneHome"]["url"]
    assert url.startswith("http://example.com/") and url.endswith("/") and "{{" not in url
    assert "post" not in phone_home.spec["provision"]["phoneHome"]
