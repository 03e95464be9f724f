"""Provisioning reported to the platform from the boot: Azure's wireserver health report
and Equinix Metal's phone-home / user state, on success and on failure (stand-ins on
127.0.0.1 that check what they are sent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provision.instance.data import InstanceData
from provision.instance.report import report_outcome
from tests.standins.azure import AzureImds
from tests.standins.clouds import SimpleCloud
from tests.standins.metadata import Answer, MetadataStandIn, Request
from tests.standins.wireserver import Wireserver

GOOD = b'{"provision": {"version": "1.1.0"}}'


def bad_config(base_url: str) -> bytes:
    """A config whose file contents answer 404: the boot fails before writing anything."""
    return json.dumps({"provision": {"version": "1.1.0"}, "storage": {"files": [
        {"path": "/etc/x", "contents": {"source": f"{base_url}/gone"}}]}}).encode()


def boot(tmp_path: Path, platform: str, url: str, wireserver: str | None = None) -> subprocess.CompletedProcess[str]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "provision", "run", "--root", str(root), "--platform", platform,
            "--metadata-url", url, "--run-dir", str(tmp_path / "run/provision"),
            "--cmdline", "provision.fetch.timeout=3"]
    env = {**os.environ, "PROVISION_SYS_ROOT": str(tmp_path / "sys")}
    if wireserver:
        env["PROVISION_WIRESERVER_URL"] = wireserver
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


def test_azure_success_reports_ready(tmp_path: Path) -> None:
    with AzureImds(GOOD) as imds, Wireserver() as wire:
        done = boot(tmp_path, "azure", imds.base_url, wire.base_url)
        assert done.returncode == 0, done.stderr
        assert wire.reports == [("Ready", None, None)]
        for request in wire.requests:
            assert request.headers["x-ms-version"] == "2012-11-30"
            assert request.headers["x-ms-agent-name"]
    assert "reported ready" in done.stderr


def test_azure_failure_reports_not_ready_with_the_summary(tmp_path: Path) -> None:
    with AzureImds() as imds, Wireserver() as wire:
        imds.user_data = bad_config(imds.base_url)
        done = boot(tmp_path, "azure", imds.base_url, wire.base_url)
        assert done.returncode == 1
        [(state, substatus, description)] = wire.reports
    assert (state, substatus) == ("NotReady", "ProvisioningFailed")
    assert description is not None and "/etc/x" in description and len(description) <= 512
    assert not (tmp_path / "root/etc/x").exists()


def test_azure_unreachable_wireserver_does_not_change_the_outcome(tmp_path: Path) -> None:
    with AzureImds(GOOD) as imds:
        done = boot(tmp_path, "azure", imds.base_url, "http://127.0.0.1:9")
    assert done.returncode == 0, done.stderr
    assert "could not report the outcome to azure" in done.stderr


class PhoneHome(MetadataStandIn):
    """Equinix Metal's receivers: POST /phone-home (any body), POST /events (JSON with a state)."""

    def answer(self, request: Request) -> Answer:
        if request.method != "POST":
            return Answer(405)
        if request.path == "/phone-home":
            return Answer(204)
        if request.path == "/events":
            if request.headers.get("Content-Type") != "application/json":
                return Answer(415)
            event = json.loads(request.body)
            if event.get("state") not in ("running", "succeeded", "failed"):
                return Answer(422)
            return Answer(204)
        return Answer(404, b"Not Found")


def _packet(phone: MetadataStandIn) -> SimpleCloud:
    metal = SimpleCloud("/userdata", None)
    metal.files["/metadata"] = json.dumps({
        "id": "3cd6f2c1-0000", "hostname": "metal-1", "facility": "am6", "ssh_keys": [],
        "phone_home_url": phone.base_url + "/phone-home",
        "user_state_url": phone.base_url + "/events"}).encode()
    return metal


def test_packet_success_phones_home_and_sets_user_state(tmp_path: Path) -> None:
    with PhoneHome() as phone:
        with _packet(phone) as metal:
            done = boot(tmp_path, "packet", metal.base_url)
        assert done.returncode == 0, done.stderr
        posts = [(r.path, r.body) for r in phone.requests if r.method == "POST"]
    assert posts[0] == ("/phone-home", b"")
    assert posts[1][0] == "/events"
    assert json.loads(posts[1][1]) == {"state": "succeeded", "message": "provisioned"}


def test_packet_failure_sets_user_state_failed_without_phoning_home(tmp_path: Path) -> None:
    with PhoneHome() as phone:
        with _packet(phone) as metal:
            metal.user_data = bad_config(metal.base_url)
            done = boot(tmp_path, "packet", metal.base_url)
        assert done.returncode == 1
        posts = [(r.path, json.loads(r.body)) for r in phone.requests if r.method == "POST"]
    assert [p for p, _ in posts] == ["/events"]
    assert posts[0][1]["state"] == "failed" and "/etc/x" in posts[0][1]["message"]


def test_packet_report_without_urls_is_said_not_raised() -> None:
    lines: list[str] = []

    def no_client() -> object:
        raise AssertionError("no request without a URL")

    report_outcome("packet", InstanceData(platform="packet"), True, "ok",
                   no_client, lines.append)  # type: ignore[arg-type]
    assert lines and "could not report" in lines[0]


class PhoneHomeReceiver(MetadataStandIn):
    """cloud-init's phone_home receiver: a form-encoded POST; 503 for the first ``fail`` tries."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail

    def answer(self, request: Request) -> Answer:
        if request.method != "POST":
            return Answer(405)
        if request.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return Answer(415)
        if self.fail:
            self.fail -= 1
            return Answer(503)
        return Answer(200, b"ok")


def test_cloud_config_phone_home_posts_the_host_keys_and_instance_id(tmp_path: Path) -> None:
    from urllib.parse import parse_qs

    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAhostkey root@image\n")
    with PhoneHomeReceiver() as receiver, SimpleCloud("/openstack/latest/user_data", None) as nova:
        nova.user_data = (f"#cloud-config\nhostname: web-1\nphone_home:\n  url: {receiver.base_url}/$INSTANCE_ID/\n"
                          "  post: [pub_key_ed25519, pub_key_rsa, instance_id, hostname]\n").encode()
        nova.files["/openstack/latest/meta_data.json"] = b'{"uuid": "83679162-aa", "hostname": "vm1"}'
        done = boot(tmp_path, "openstack", nova.base_url)
        assert done.returncode == 0, done.stderr
        [post] = [r for r in receiver.requests if r.method == "POST"]
    assert post.path == "/83679162-aa/"
    form = {k: v[0] for k, v in parse_qs(post.body.decode()).items()}
    assert form == {"pub_key_ed25519": "ssh-ed25519 AAAAhostkey root@image", "pub_key_rsa": "N/A",
                    "instance_id": "83679162-aa", "hostname": "web-1"}


def test_health_document_escapes_the_description() -> None:
    from xml.etree import ElementTree

    from provision.instance.report import health_document

    body = health_document("1", "c<1>", "i&2", False, "cause: <bad> & " + "x" * 600)
    root = ElementTree.fromstring(body)
    assert root.findtext("Container/ContainerId") == "c<1>"
    description = root.findtext("Container/RoleInstanceList/Role/Health/Details/Description")
    assert description is not None and description.startswith("cause: <bad> & ") and len(description) == 512
