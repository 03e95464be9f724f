"""#include fetched from a loopback server through provision's HTTP client; Jinja templates on instance data."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.config.pipeline import parse_config
from provision.errors import FetchError
from provision.fetch.configrefs import resolve_references
from provision.fetch.http import HttpClient
from provision.fetch.resource import decode_data_url
from provision.importers.userdata.jinja import TemplateError, render, variables
from tests.standins.http_server import LoopbackHTTPServer, Reply

# The shape of cloud-init's /run/cloud-init/instance-data.json (trimmed).
INSTANCE_DATA: dict[str, Any] = {
    "v1": {"instance_id": "i-0abc", "instance-id": "i-0abc", "local_hostname": "web-1",
           "local-hostname": "web-1", "region": "eu-west-1", "availability_zone": "eu-west-1b",
           "availability-zone": "eu-west-1b", "platform": "ec2", "cloud_name": "aws", "public_ssh_keys": []},
    "ds": {"meta-data": {"instance-id": "i-0abc", "placement": {"availability-zone": "eu-west-1b"}}},
}


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer() as s:
        yield s


def contents(resource: dict[str, Any]) -> bytes:
    data = decode_data_url(resource["source"])
    return gzip.decompress(data) if resource.get("compression") == "gzip" else data


def files(spec: dict[str, Any]) -> dict[str, bytes]:
    return {f["path"]: contents(f["contents"]) for f in spec.get("storage", {}).get("files", [])
            if "contents" in f}


# -- #include -------------------------------------------------------------------


def test_include_urls_are_fetched_by_the_http_client_and_processed_as_user_data(
    server: LoopbackHTTPServer,
) -> None:
    server.route("/base.yaml", Reply(body=b"#cloud-config\nhostname: included\n"))
    server.route("/setup.sh", Reply(body=b"#!/bin/sh\necho from include\n"))
    text = (f"#include\n# comments are skipped\n{server.url('/base.yaml')}\n\n"
            f"#include-once {server.url('/setup.sh')}\n")
    parsed = parse_config(text.encode(), "user-data")
    assert parsed.ok, parsed.diagnostics
    assert parsed.spec is not None
    assert [m["source"] for m in parsed.spec["provision"]["config"]["merge"]] == [
        server.url("/base.yaml"), server.url("/setup.sh")]
    resolved = resolve_references(parsed, HttpClient(sleep=lambda s: None, deadline=5))
    found = files(resolved.spec)
    assert found["/etc/hostname"] == b"included\n"
    [script] = [data for path, data in found.items() if path.startswith("/var/lib/provision/user-data/per-instance/")]
    assert script == b"#!/bin/sh\necho from include\n"
    assert server.count("/base.yaml") == 1 and server.count("/setup.sh") == 1


def test_an_included_documents_scripts_join_the_including_ones(server: LoopbackHTTPServer) -> None:
    server.route("/more.sh", Reply(body=b"#!/bin/sh\necho included\n"))
    data = (f'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
            f"Content-Type: text/x-shellscript\n\n#!/bin/sh\necho own\n--b\n"
            f"Content-Type: text/x-include-url\n\n{server.url('/more.sh')}\n--b--\n").encode()
    parsed = parse_config(data, "user-data")
    resolved = resolve_references(parsed, HttpClient(sleep=lambda s: None, deadline=5))
    scripts = sorted(data for path, data in files(resolved.spec).items() if "/per-instance/" in path)
    assert scripts == [b"#!/bin/sh\necho included\n", b"#!/bin/sh\necho own"]
    assert [u["name"] for u in resolved.spec["systemd"]["units"]] == ["provision-user-scripts.service"]


def test_a_missing_include_fails_the_fetch(server: LoopbackHTTPServer) -> None:
    parsed = parse_config(f"#include {server.url('/missing')}\n".encode(), "user-data")
    with pytest.raises(FetchError):
        resolve_references(parsed, HttpClient(sleep=lambda s: None, deadline=5))


def test_an_include_part_inside_mime(server: LoopbackHTTPServer) -> None:
    server.route("/more", Reply(body=b"#cloud-config\ntimezone: Europe/Berlin\n"))
    data = (f'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\n'
            f"Content-Type: text/x-include-url\n\n{server.url('/more')}\n--b--\n").encode()
    parsed = parse_config(data, "user-data")
    resolved = resolve_references(parsed, HttpClient(sleep=lambda s: None, deadline=5))
    assert files(resolved.spec)["/etc/timezone"] == b"Europe/Berlin\n"


def test_file_urls_are_refused_at_their_line() -> None:
    parsed = parse_config(b"#include\nhttps://example.test/a\nfile:///etc/shadow\n", "user-data")
    [diag] = parsed.diagnostics
    assert diag.is_error and diag.position == (3, 1) and "file://" in diag.message


# -- Jinja ------------------------------------------------------------------------


def test_cloud_init_variable_names_and_aliases() -> None:
    scope = variables(INSTANCE_DATA)
    assert scope["instance_id"] == "i-0abc" and scope["region"] == "eu-west-1"  # v1 keys copied to the top
    placement = scope["ds"]["meta_data"]["placement"]  # "meta-data" has the alias "meta_data"
    assert placement["availability_zone"] == placement["availability-zone"] == "eu-west-1b"
    assert scope["ds"]["meta_data"]["instance_id"] == "i-0abc"
    assert variables({"ds": {"v1.0": {"a.b": 1}}})["ds"]["v1_0"]["a_b"] == 1


def test_render_variables_subscripts_filters_and_conditions() -> None:
    template = (
        "host {{ v1.local_hostname }} in {{ ds.meta_data['placement']['availability-zone'] }}\n"
        "{# a comment #}\n"
        "{% if v1.cloud_name == 'aws' %}\naws {{ region | upper }}\n{% elif v1.cloud_name == 'gce' %}\ngce\n"
        "{% else %}\nother\n{% endif %}\n"
        "{% if not v1.missing %}\nno missing\n{% endif %}\n"
        "{{ v1.missing | default('fallback') }}\n"
    )
    assert render(template, INSTANCE_DATA) == "host web-1 in eu-west-1b\naws EU-WEST-1\nno missing\nfallback\n"


@pytest.mark.parametrize(
    ("template", "line", "words"),
    [
        ("a\n{{ v1.nothing }}\n", 2, "'v1.nothing' is not defined"),
        ("{% for k in v1 %}\n{% endfor %}\n", 1, "{% for %} is not supported"),
        ("x\n\n{{ v1.region | replace('a', 'b') }}\n", 3, "filter"),
        ("{% if v1.region %}\nopen\n", 2, "not closed"),
        ("{{ v1.region + 1 }}\n", 1, "unsupported Jinja expression"),
    ],
)
def test_unsupported_or_undefined_is_an_error_at_its_line(template: str, line: int, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, INSTANCE_DATA)
    assert caught.value.line == line and words in str(caught.value)


def write_instance_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "instance-data.json"
    path.write_text(json.dumps(INSTANCE_DATA))
    monkeypatch.setenv("PROVISION_INSTANCE_DATA", str(path))


def test_a_jinja_cloud_config_is_rendered_then_translated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_instance_data(tmp_path, monkeypatch)
    text = ("## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n"
            "write_files:\n  - path: /etc/instance-id\n    content: '{{ v1.instance_id }}'\n")
    parsed = parse_config(text.encode(), "user-data")
    assert parsed.ok, parsed.diagnostics
    assert parsed.spec is not None
    assert files(parsed.spec)["/etc/hostname"] == b"web-1\n"
    assert files(parsed.spec)["/etc/instance-id"] == b"i-0abc"


def test_instance_data_passed_by_the_caller_wins() -> None:
    text = "## template: jinja\n#!/bin/sh\necho {{ v1.instance_id }}\n"
    parsed = parse_config(text.encode(), "user-data", instance_data={"v1": {"instance_id": "i-given"}})
    assert parsed.spec is not None
    [script] = [data for path, data in files(parsed.spec).items() if path.endswith("-001-part-001")]
    assert script == b"#!/bin/sh\necho i-given\n"


def test_a_jinja_error_points_at_the_template_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_instance_data(tmp_path, monkeypatch)
    text = "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\ntimezone: {{ v1.tz }}\n"
    [diag] = parse_config(text.encode(), "user-data").diagnostics
    assert diag.is_error and diag.position == (4, 1) and "v1.tz" in diag.message


def test_a_schema_error_after_rendering_points_at_the_template_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_instance_data(tmp_path, monkeypatch)
    text = "## template: jinja\n#cloud-config\nusers:\n  - name: {{ v1.local_hostname }}\n    uid: -5\n"
    parsed = parse_config(text.encode(), "user-data")
    [diag] = [d for d in parsed.diagnostics if d.is_error]
    assert diag.position is not None and diag.position.line == 5


def test_without_instance_data_a_template_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVISION_INSTANCE_DATA", str(tmp_path / "absent.json"))
    [diag] = parse_config(b"## template: jinja\n#cloud-config\n", "user-data").diagnostics
    assert diag.is_error and "instance's data" in diag.message and diag.position == (1, 1)


def test_positions_survive_conditionals_that_remove_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_instance_data(tmp_path, monkeypatch)
    text = ("## template: jinja\n#cloud-config\n{% if v1.cloud_name == 'gce' %}\nhostname: gce-host\n"
            "{% else %}\nhostname: {{ v1.local_hostname }}\n{% endif %}\n{# the users #}\nusers:\n"
            "  - name: a\n    uid: -5\npackages: [vim]\n")
    parsed = parse_config(text.encode(), "user-data")
    lines = text.split("\n")
    found = {d.message.split(":")[0]: d.position.line for d in parsed.diagnostics if d.position}
    assert found["must be at least 0"] == lines.index("    uid: -5") + 1
    assert found["cloud-config key 'packages' is not supported"] == lines.index("packages: [vim]") + 1
