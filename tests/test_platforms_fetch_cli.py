"""`provision fetch` as a whole process against the AWS stand-in and local sources."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.standins.aws_imds import AwsImds
from tests.standins.systree import make_sys_root

SECRET_HASH = ("$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN"
               ".Pq.H91p5hVO1")  # openssl passwd -6 -salt saltsalt secret
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILgA4e7j1vd90q91GFaeAFUbWnUilgb/SsZOaKkMDX+1 core"
CONFIG = {
    "provision": {"version": "1.0.0"},
    "passwd": {"users": [{"name": "core", "passwordHash": SECRET_HASH,
                          "sshAuthorizedKeys": [KEY]}]},
    "storage": {"files": [{"path": "/etc/motd", "contents": {
        "source": "https://example.com/motd",
        "httpHeaders": [{"name": "Authorization", "value": "Bearer s3cr3t-token"}]}}]},
}


def fetch_cli(*args: str, root: Path, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "provision", "fetch", "--sys-root", str(root),
         "--cmdline", "provision.fetch.timeout=10", *args],
        capture_output=True, text=True, env=full_env, timeout=120,
    )


def test_fetch_prints_config_with_secrets_redacted(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root", dmi={"sys_vendor": "Amazon EC2"})
    with AwsImds(json.dumps(CONFIG).encode()) as imds:
        result = fetch_cli("--metadata-url", imds.base_url, root=root)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["passwd"]["users"][0]["passwordHash"] == "<redacted>"
    assert printed["passwd"]["users"][0]["sshAuthorizedKeys"] == [KEY]
    assert SECRET_HASH not in result.stdout + result.stderr
    assert "s3cr3t-token" not in result.stdout + result.stderr


def test_fetch_show_secrets_and_output_file_mode(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    out = tmp_path / "config.json"
    with AwsImds(json.dumps(CONFIG).encode()) as imds:
        result = fetch_cli("--platform", "aws", "--show-secrets", "-o", str(out), root=root,
                           env={"PROVISION_METADATA_URL": imds.base_url})
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(out.read_text())["passwd"]["users"][0]["passwordHash"] == SECRET_HASH
    assert out.stat().st_mode & 0o777 == 0o600


def test_fetch_cloud_config_is_translated(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    cloud_config = f"#cloud-config\nusers:\n  - name: alice\n    ssh_authorized_keys: [{KEY}]\n".encode()
    with AwsImds(cloud_config) as imds:
        result = fetch_cli("--platform", "aws", "--metadata-url", imds.base_url, root=root)
    assert result.returncode == 0, result.stderr
    users = json.loads(result.stdout)["passwd"]["users"]
    assert users[0]["name"] == "alice"


def test_fetch_invalid_config_fails_without_echoing_it(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    bad = json.dumps({"provision": {"version": "1.0.0"},
                      "passwd": {"users": [{"name": 5, "passwordHash": SECRET_HASH}]}}).encode()
    with AwsImds(bad) as imds:
        result = fetch_cli("--platform", "aws", "--metadata-url", imds.base_url, root=root)
    assert result.returncode == 1
    assert "invalid" in result.stderr
    assert SECRET_HASH not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_fetch_no_user_data_exits_0_with_a_note(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    with AwsImds(None) as imds:
        result = fetch_cli("--platform", "aws", "--metadata-url", imds.base_url, root=root)
    assert result.returncode == 0
    assert result.stdout == "" and "provides no config" in result.stderr


def test_fetch_offline_exits_75_and_writes_the_flag(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    run_dir = tmp_path / "run"
    result = fetch_cli("--platform", "aws", "--offline", "--metadata-url", "http://127.0.0.1:9",
                       root=root, env={"PROVISION_RUN_DIR": str(run_dir)})
    assert result.returncode == 75
    assert (run_dir / "neednet").is_file()


def test_fetch_unreachable_service_is_one_line_error(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    result = subprocess.run(
        [sys.executable, "-m", "provision", "fetch", "--platform", "gce", "--sys-root", str(root),
         "--cmdline", "provision.fetch.timeout=1", "--metadata-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("provision fetch: error:") and "Traceback" not in result.stderr


def test_fetch_config_file_and_data_url(tmp_path: Path) -> None:
    root = make_sys_root(tmp_path / "root")
    config = tmp_path / "c.yaml"
    config.write_text("provision:\n  version: 1.0.0\n")
    result = fetch_cli("--config", str(config), root=root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["provision"]["version"] == "1.1.0"  # read as 1.0.0, printed in the newest spec
    url = "data:;base64," + base64.b64encode(b'{"provision":{"version":"1.0.0"}}').decode()
    result = subprocess.run(
        [sys.executable, "-m", "provision", "fetch", "--offline", "--sys-root", str(root),
         "--cmdline", f"provision.config.url={url}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_fetch_help_documents_the_seams() -> None:
    result = subprocess.run([sys.executable, "-m", "provision", "fetch", "--help"],
                            capture_output=True, text=True, timeout=60)
    for seam in ("--metadata-url", "--sys-root", "--cmdline", "PROVISION_METADATA_URL",
                 "PROVISION_SYS_ROOT", "PROVISION_CMDLINE", "provision.config.url=",
                 "provision.fetch.timeout="):
        assert seam in result.stdout


def test_fetch_resolves_merge_references_online_and_flags_them_offline(tmp_path: Path) -> None:
    from tests.standins.clouds import SimpleCloud

    extra = {"provision": {"version": "1.0.0"},
             "storage": {"files": [{"path": "/etc/extra", "contents": {"source": "data:,x"}}]}}
    with SimpleCloud("/extra.json", json.dumps(extra).encode()) as server:
        base = {"provision": {"version": "1.0.0",
                              "config": {"merge": [{"source": server.base_url + "/extra.json"}]}}}
        url = "data:;base64," + base64.b64encode(json.dumps(base).encode()).decode()
        root = make_sys_root(tmp_path / "root")
        run_dir = tmp_path / "run"
        env = {"PROVISION_RUN_DIR": str(run_dir)}
        offline = fetch_cli("--offline", "--cmdline", f"provision.config.url={url}", root=root,
                            env=env)
        assert offline.returncode == 75 and (run_dir / "neednet").is_file()
        assert server.requests == []
        online = fetch_cli("--cmdline", f"provision.config.url={url}", root=root, env=env)
    assert online.returncode == 0, online.stderr
    merged = json.loads(online.stdout)
    assert merged["storage"]["files"][0]["path"] == "/etc/extra"
    assert "config" not in merged["provision"]


def test_redaction_covers_every_kind_of_secret() -> None:
    from provision.commands.fetch import redact_secrets

    spec = {
        "provision": {"version": "1.0.0"},
        "passwd": {"users": [{"name": "a", "passwordHash": SECRET_HASH}]},
        "containers": {"registries": {"credentials": [
            {"registry": "r.example", "username": "u", "password": "hunter2"}]}},
        "storage": {
            "luks": [{"name": "data", "device": "/dev/vdb",
                      "keyFile": {"source": "data:,topsecretkey"}}],
            "files": [{"path": "/etc/motd", "contents": {"source": "data:,hello"}}],
        },
    }
    text = json.dumps(redact_secrets(spec))
    for secret in (SECRET_HASH, "hunter2", "topsecretkey"):
        assert secret not in text
    assert '"username": "u"' in text and "data:,hello" in text  # not secrets: kept


def test_fetch_output_redacts_urls_exactly_as_the_http_client_does(tmp_path: Path) -> None:
    """Credentials, query tokens and proxy passwords: the same text as the client's own errors."""
    from provision.errors import FetchError
    from provision.fetch.http import HttpClient
    from tests.standins.http_server import LoopbackHTTPServer, Reply

    with LoopbackHTTPServer() as server:
        server.route("/motd", Reply(403))
        source = f"http://alice:pa55w0rd@127.0.0.1:{server.port}/motd?token=t0ps3cr3t&x=1#frag"
        with pytest.raises(FetchError) as failure:
            HttpClient(deadline=2).get(source)
    client_message = str(failure.value)
    config = {
        "provision": {"version": "1.0.0", "proxy": {
            "httpProxy": "http://proxyuser:pr0xyp4ss@127.0.0.1:3128",
            "httpsProxy": "http://proxyuser:pr0xyp4ss@127.0.0.1:3129/?key=pr0xyk3y"},
            "config": {"merge": [{"source": "https://127.0.0.1/c.json?sig=m3rg3s1g"}]}},
        "storage": {"files": [{"path": "/etc/motd", "contents": {"source": source}}]},
    }
    url = "data:;base64," + base64.b64encode(json.dumps(config).encode()).decode()
    root = make_sys_root(tmp_path / "root")
    result = fetch_cli("--offline", "--cmdline", f"provision.config.url={url}", root=root,
                       env={"PROVISION_RUN_DIR": str(tmp_path / "run")})
    # Offline, the merge reference is not fetched: nothing printed but a note.
    assert result.returncode == 75
    config["provision"].pop("config")  # type: ignore[attr-defined]
    url = "data:;base64," + base64.b64encode(json.dumps(config).encode()).decode()
    result = fetch_cli("--cmdline", f"provision.config.url={url}", root=root)
    assert result.returncode == 0, result.stderr
    for secret in ("pa55w0rd", "t0ps3cr3t", "pr0xyp4ss", "pr0xyk3y", "frag"):
        assert secret not in result.stdout + result.stderr
    printed = json.loads(result.stdout)
    shown = printed["storage"]["files"][0]["contents"]["source"]
    assert shown in client_message and "alice:***@" in shown and "token=***" in shown
    assert printed["provision"]["proxy"]["httpProxy"] == "http://proxyuser:***@127.0.0.1:3128"


def test_fetch_output_file_is_safe_in_a_shared_directory(tmp_path: Path) -> None:
    """-o in a sticky, world-writable directory: planted symlinks are replaced, never followed."""
    from provision.cli import main

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    out = shared / "config.json"
    out.symlink_to(victim)
    # The old temporary name was predictable from the process id: plant those too.
    for pid in range(os.getpid() - 5, os.getpid() + 5):
        (shared / f".config.json.tmp{pid}").symlink_to(victim)
    config = tmp_path / "c.json"
    config.write_text(json.dumps(CONFIG))
    root = make_sys_root(tmp_path / "root")
    status = main(["fetch", "--sys-root", str(root), "--config", str(config), "-o", str(out)])
    assert status == 0
    assert victim.read_text() == "precious\n" and victim.stat().st_mode & 0o777 == 0o644
    assert not out.is_symlink() and out.stat().st_mode & 0o777 == 0o600
    assert json.loads(out.read_text())["passwd"]["users"][0]["passwordHash"] == "<redacted>"
    leftovers = {p.name for p in shared.iterdir()} - {"config.json"}
    assert all(name.startswith(".config.json.tmp") for name in leftovers)  # only the planted links


def test_fetch_output_file_in_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps(CONFIG))
    result = fetch_cli("--config", str(config), "-o", str(tmp_path / "missing" / "out.json"),
                       root=make_sys_root(tmp_path / "root"))
    assert result.returncode == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_provision_fetch_timeout_bounds_a_trickling_config_server(tmp_path: Path) -> None:
    """provision.fetch.timeout= on the kernel command line holds against a slow-loris server."""
    import time

    from tests.standins.http_server import LoopbackHTTPServer, Reply

    body = json.dumps(CONFIG).encode()
    with LoopbackHTTPServer() as server:
        server.route("/config.json", Reply(body=body, trickle=0.05))  # ~30 s to send
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "provision", "fetch", "--sys-root", str(make_sys_root(tmp_path / "root")),
             "--cmdline", f"provision.fetch.timeout=1 provision.config.url={server.url('/config.json')}"],
            capture_output=True, text=True, timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "1 s time limit (provision.fetch.timeout)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 8  # the interpreter's start-up plus the 1 s limit, on a loaded machine


def test_the_imdsv2_token_does_not_follow_a_redirect_to_another_host(tmp_path: Path) -> None:
    """User data redirected to another host: the config arrives, the session token does not."""
    from tests.standins.aws_imds import TOKEN_HEADER
    from tests.standins.http_server import LoopbackHTTPServer, Reply
    from tests.standins.metadata import Answer, Request

    with LoopbackHTTPServer(host="127.0.0.2") as elsewhere:
        elsewhere.route("/user-data", Reply(body=json.dumps(CONFIG).encode()))

        class RedirectingImds(AwsImds):
            def answer(self, request: Request) -> Answer:
                if request.path == "/latest/user-data" and not self._check_token(request):
                    return Answer(302, b"", {"Location": elsewhere.url("/user-data")})
                return super().answer(request)

        with RedirectingImds() as imds:
            result = fetch_cli("--platform", "aws", "--metadata-url", imds.base_url,
                               root=make_sys_root(tmp_path / "root"))
        [request] = elsewhere.requests_for("/user-data")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passwd"]["users"][0]["name"] == "core"
    assert imds.issued == 1
    assert TOKEN_HEADER not in request.headers and TOKEN_HEADER.lower() not in request.headers
