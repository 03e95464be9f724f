"""cloud-init user data other than a plain #cloud-config: MIME, gzip, base64, scripts, boothooks, archives, merging."""

from __future__ import annotations

import base64
import gzip
import subprocess
from pathlib import Path
from typing import Any

from provision.config.pipeline import ParsedConfig, parse_config
from provision.fetch.resource import decode_data_url

BOUNDARY = "===============4242=="


def mime(*parts: tuple[dict[str, str], str | bytes]) -> bytes:
    """A MIME multipart message as cloud-init's make-mime writes it."""
    out = [f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"', "MIME-Version: 1.0", ""]
    for headers, body in parts:
        out.append(f"--{BOUNDARY}")
        out += [f"{k}: {v}" for k, v in headers.items()]
        out.append("")
        out.append(body if isinstance(body, str) else body.decode())
    out.append(f"--{BOUNDARY}--")
    return ("\n".join(out) + "\n").encode()


def line_of(data: bytes, text: str) -> int:
    return data.decode().split("\n").index(text) + 1


def ok(parsed: ParsedConfig) -> dict[str, Any]:
    assert parsed.ok, [(d.message, d.position) for d in parsed.diagnostics]
    assert parsed.spec is not None
    return parsed.spec


def contents(resource: dict[str, Any]) -> bytes:
    data = decode_data_url(resource["source"])
    return gzip.decompress(data) if resource.get("compression") == "gzip" else data


def files(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in spec.get("storage", {}).get("files", [])}


def units(spec: dict[str, Any]) -> dict[str, str]:
    return {u["name"]: u["contents"] for u in spec.get("systemd", {}).get("units", [])}


def scripts(spec: dict[str, Any], kind: str = "per-instance") -> dict[str, dict[str, Any]]:
    """The scripts of one kind by name without the document digest (DOC-NNN-NAME -> NNN-NAME)."""
    prefix = f"/var/lib/provision/user-data/{kind}/"
    return {path[len(prefix):].split("-", 1)[1]: entry for path, entry in files(spec).items()
            if path.startswith(prefix)}


def exec_starts(unit: str) -> list[str]:
    return [line.removeprefix("ExecStart=") for line in unit.splitlines() if line.startswith("ExecStart=")]


CLOUD_CONFIG = "#cloud-config\nusers:\n  - name: alice\n    shell: /bin/bash\nruncmd:\n  - echo one\n"


def test_a_multipart_message_with_cloud_config_script_and_boothook() -> None:
    data = mime(
        ({"Content-Type": 'text/cloud-config; charset="us-ascii"', "MIME-Version": "1.0"}, CLOUD_CONFIG),
        ({"Content-Type": "text/x-shellscript", "Content-Disposition": 'attachment; filename="setup.sh"'},
         "#!/bin/sh\necho hello\n"),
        ({"Content-Type": "text/cloud-boothook"}, "#cloud-boothook\n#!/bin/sh\necho early\n"),
    )
    parsed = parse_config(data, "user-data")
    spec = ok(parsed)
    assert parsed.kind == "user-data"
    assert spec["passwd"]["users"] == [{"name": "alice", "shell": "/bin/bash"}]
    script = scripts(spec)["001-setup.sh"]
    assert contents(script["contents"]) == b"#!/bin/sh\necho hello\n" and script["mode"] == 0o700
    hook = scripts(spec, "boothook")["001-boothook-003"]
    assert contents(hook["contents"]) == b"#!/bin/sh\necho early\n"  # the marker line is not part of it
    unit = units(spec)
    once = unit["provision-user-scripts.service"]
    assert "ConditionPathExists=!/var/lib/provision/user-scripts.done" in once
    assert "StandardOutput=journal+console" in once and "WantedBy=multi-user.target" in once
    assert exec_starts(once) == ['"/var/lib/provision/user-data/run-scripts" "/var/lib/provision/user-data/per-instance"']
    boot = unit["provision-boothooks.service"]
    assert "ConditionPathExists" not in boot and "WantedBy=sysinit.target" in boot
    assert "provision-runcmd.service" in unit


def test_diagnostics_point_at_lines_of_the_original_message() -> None:
    second = "#cloud-config\nhostname: not_valid!\npackages: [vim]\n"
    data = mime(({"Content-Type": "text/cloud-config"}, CLOUD_CONFIG),
                ({"Content-Type": "text/cloud-config", "X-Merge-Type": "list(append)+dict(recurse_array)+str()"},
                 second))
    parsed = parse_config(data, "user-data")
    by_message = {d.message.split(":")[0]: d for d in parsed.diagnostics}
    bad = by_message["hostname is not a valid host name"]
    assert bad.file == "user-data" and bad.position == (line_of(data, "hostname: not_valid!"), 11)
    packages = by_message["cloud-config key 'packages' is not supported"]
    assert packages.position == (line_of(data, "packages: [vim]"), 1)


def test_schema_errors_of_the_translated_config_point_into_the_part() -> None:
    data = mime(({"Content-Type": "text/x-shellscript"}, "#!/bin/sh\ntrue\n"),
                ({"Content-Type": "text/cloud-config"}, "#cloud-config\nusers:\n  - name: bob\n    uid: -5\n"))
    parsed = parse_config(data, "user-data")
    assert not parsed.ok
    [diag] = [d for d in parsed.diagnostics if d.is_error]
    assert diag.position is not None and diag.position.line == line_of(data, "    uid: -5")


def test_later_parts_replace_top_level_keys_by_default() -> None:
    data = mime(({"Content-Type": "text/cloud-config"}, "#cloud-config\nruncmd: [echo one]\nhostname: a\n"),
                ({"Content-Type": "text/cloud-config"}, "#cloud-config\nruncmd: [echo two]\n"))
    spec = ok(parse_config(data, "user-data"))
    assert exec_starts(units(spec)["provision-runcmd.service"]) == ['/bin/sh -c "echo two"']
    assert contents(files(spec)["/etc/hostname"]["contents"]) == b"a\n"


def test_merge_type_header_and_merge_how_append_lists() -> None:
    header = mime(({"Content-Type": "text/cloud-config"}, "#cloud-config\nruncmd: [echo one]\n"),
                  ({"Content-Type": "text/cloud-config", "Merge-Type": "list(append)+dict(recurse_array)+str()"},
                   "#cloud-config\nruncmd: [echo two]\n"))
    body = mime(({"Content-Type": "text/cloud-config"}, "#cloud-config\nruncmd: [echo one]\n"),
                ({"Content-Type": "text/cloud-config"},
                 "#cloud-config\nmerge_how:\n  - name: list\n    settings: [prepend]\n"
                 "  - name: dict\n    settings: [no_replace, recurse_list]\nruncmd: [echo zero]\n"))
    appended = exec_starts(units(ok(parse_config(header, "u")))["provision-runcmd.service"])
    prepended = exec_starts(units(ok(parse_config(body, "u")))["provision-runcmd.service"])
    assert appended == ['/bin/sh -c "echo one"', '/bin/sh -c "echo two"']
    assert prepended == ['/bin/sh -c "echo zero"', '/bin/sh -c "echo one"']


def test_an_unknown_merger_is_an_error_at_the_part() -> None:
    data = mime(({"Content-Type": "text/cloud-config"}, "#cloud-config\nruncmd: [a]\n"),
                ({"Content-Type": "text/cloud-config", "Merge-Type": "list(sideways)"}, "#cloud-config\nruncmd: [b]\n"))
    parsed = parse_config(data, "u")
    assert not parsed.ok and "sideways" in parsed.diagnostics[0].message


def test_gzip_user_data_and_gzip_base64_parts() -> None:
    whole = gzip.compress(b"#!/bin/sh\necho zipped\n")
    spec = ok(parse_config(whole, "user-data"))
    assert b"echo zipped" in contents(scripts(spec)["001-part-001"]["contents"])
    packed = base64.encodebytes(gzip.compress(b"#cloud-config\nhostname: zipped\n")).decode()
    data = mime(({"Content-Type": "application/x-gzip", "Content-Transfer-Encoding": "base64"}, packed))
    spec = ok(parse_config(data, "user-data"))
    assert contents(files(spec)["/etc/hostname"]["contents"]) == b"zipped\n"


def test_a_problem_inside_an_encoded_part_points_at_the_part_headers() -> None:
    encoded = base64.encodebytes(b"#cloud-config\nhostname: not valid\n").decode()
    data = mime(({"Content-Type": "text/plain"}, "#!/bin/sh\ntrue\n"),
                ({"Content-Type": "text/cloud-config", "Content-Transfer-Encoding": "base64"}, encoded))
    parsed = parse_config(data, "user-data")
    [diag] = parsed.diagnostics
    assert diag.position == (line_of(data, "Content-Type: text/cloud-config"), 1)


def test_text_plain_parts_are_typed_by_their_first_line() -> None:
    data = mime(({"Content-Type": "text/plain"}, "#cloud-config\nhostname: typed\n"))
    assert contents(files(ok(parse_config(data, "u")))["/etc/hostname"]["contents"]) == b"typed\n"


def test_cloud_init_documented_archive_refuses_its_unknown_type_at_the_entry() -> None:
    text = ("#cloud-config-archive\n- type: foo/wark\n  filename: bar\n  content: |\n    This is my payload\n"
            "- type: text/cloud-config\n  content: \"#cloud-config\\nhostname: archived\\n\"\n"
            "- type: text/x-shellscript\n  content: |\n    #!/bin/sh\n    echo archived\n")
    parsed = parse_config(text.encode(), "user-data")
    [diag] = parsed.diagnostics
    assert "foo/wark" in diag.message and diag.position == (2, 1) and diag.is_error
    fixed = text.replace("foo/wark", "text/x-shellscript").replace("This is my payload", "#!/bin/sh")
    spec = ok(parse_config(fixed.encode(), "user-data"))
    assert contents(files(spec)["/etc/hostname"]["contents"]) == b"archived\n"
    assert sorted(scripts(spec)) == ["001-bar", "002-part-004"]


def test_part_handlers_and_unknown_types_are_refused_where_they_are() -> None:
    data = mime(({"Content-Type": "text/cloud-config"}, CLOUD_CONFIG),
                ({"Content-Type": "text/part-handler"}, "#part-handler\ndef list_types():\n    return []\n"))
    parsed = parse_config(data, "user-data")
    [diag] = parsed.diagnostics
    assert diag.is_error and "part handlers" in diag.message
    assert diag.position == (line_of(data, "#part-handler"), 1)


def test_plain_text_is_explained_not_dropped() -> None:
    data = mime(({"Content-Type": "text/cloud-config"}, CLOUD_CONFIG), ({"Content-Type": "text/plain"}, "hello\n"))
    parsed = parse_config(data, "user-data")
    [diag] = parsed.diagnostics
    assert not diag.is_error and "cloud-init ignores it" in diag.message
    assert diag.position == (line_of(data, "hello"), 1)


def test_a_boothook_without_an_interpreter_line_is_refused() -> None:
    parsed = parse_config(b"#cloud-boothook\necho no shebang\n", "user-data")
    [diag] = parsed.diagnostics
    assert diag.is_error and diag.position == (2, 1) and "#!" in diag.message


def test_per_boot_scripts_run_every_boot() -> None:
    data = mime(({"Content-Type": "text/x-shellscript-per-boot"}, "#!/bin/sh\necho boot\n"))
    unit = units(ok(parse_config(data, "u")))["provision-user-scripts-per-boot.service"]
    assert "ConditionPathExists" not in unit and '"/var/lib/provision/user-data/per-boot"' in unit


def test_corrupt_input_is_a_positioned_error_never_a_traceback() -> None:
    cases = [
        b"\x1f\x8b\x08\x00garbage",
        mime(({"Content-Type": "text/cloud-config", "Content-Transfer-Encoding": "base64"}, "!!!not base64!!!")),
        mime(({"Content-Type": "application/x-gzip"}, "not gzip")),
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\nno boundary\n",
        mime(({"Content-Type": "text/cloud-config"}, "#cloud-config\nusers: [\n")),
    ]
    for data in cases:
        parsed = parse_config(data, "user-data")
        assert not parsed.ok and parsed.diagnostics[0].position is not None, data


def test_the_script_runner_runs_every_script_and_reports_failures(tmp_path: Path) -> None:
    """The generated runner, run for real: a failing script does not stop the next one."""
    data = mime(({"Content-Type": "text/x-shellscript"}, f"#!/bin/sh\necho first >> {tmp_path}/log\nexit 3\n"),
                ({"Content-Type": "text/x-shellscript"}, f"#!/bin/sh\necho second >> {tmp_path}/log\n"))
    spec = ok(parse_config(data, "u"))
    root = tmp_path / "root"
    for path, entry in files(spec).items():
        local = root / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(contents(entry["contents"]))
        local.chmod(entry["mode"])
    runner, directory = exec_starts(units(spec)["provision-user-scripts.service"])[0].replace('"', "").split()
    done = subprocess.run([str(root / runner.lstrip("/")), str(root / directory.lstrip("/"))],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LC_COLLATE": "C"})
    assert (tmp_path / "log").read_text() == "first\nsecond\n"
    assert done.returncode == 1
    assert "-001-part-001 failed with exit status 3" in done.stderr


def test_gzip_of_any_config_is_parsed_as_what_it_holds() -> None:
    config = b'{"provision": {"version": "1.0.0"}, "storage": {"files": [{"path": "/etc/motd", "mode": 420}]}}'
    parsed = parse_config(gzip.compress(config), "config.json.gz")
    assert parsed.kind == "provision" and ok(parsed)["storage"]["files"][0]["path"] == "/etc/motd"
    assert parse_config(gzip.compress(b"#cloud-config\nhostname: z\n"), "u").kind == "cloud-config"


def test_a_config_that_merely_quotes_a_mail_header_is_not_mime() -> None:
    text = b"#cloud-config\nwrite_files:\n  - path: /etc/mail.txt\n    content: 'MIME-Version: 1.0'\n"
    yaml = b"variant: provision\nversion: 1.0.0\nstorage:\n  files:\n    - path: /etc/m\n      contents:\n" \
           b"        inline: |\n          MIME-Version: 1.0\n"
    assert parse_config(text, "u").kind == "cloud-config"
    assert parse_config(yaml, "c.yaml").kind == "human"


def test_a_script_part_without_an_interpreter_line_is_refused() -> None:
    data = mime(({"Content-Type": "text/x-shellscript"}, "echo no shebang\n"))
    [diag] = parse_config(data, "u").diagnostics
    assert diag.is_error and "#!" in diag.message and diag.position == (line_of(data, "echo no shebang"), 1)


def test_crafted_nesting_is_a_positioned_error_not_a_crash() -> None:
    inner = b"#cloud-config\nhostname: deep\n"
    for level in range(40):  # MIME in MIME, each with its own boundary
        inner = (f'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b{level}"\n\n--b{level}\n'
                 .encode() + inner + f"\n--b{level}--\n".encode())
    parsed = parse_config(inner, "u")
    assert not parsed.ok and "nested more than" in parsed.diagnostics[0].message
    template = "#cloud-config\nhostname: deep\n"
    for _ in range(40):  # templates rendering templates (the header line marks the next level)
        template = "## template: jinja\n" + template
    parsed = parse_config(template.encode(), "u", instance_data={"v1": {}})
    assert not parsed.ok and "nested more than" in parsed.diagnostics[0].message
    assert parsed.diagnostics[0].position is not None


def test_user_data_is_held_to_the_config_size_limit() -> None:
    big = b"#!/bin/sh\n" + b"# padding\n" * (2 << 20)  # 20 MiB
    parsed = parse_config(gzip.compress(big), "u")
    assert not parsed.ok and "larger than 16 MiB" in parsed.diagnostics[0].message
