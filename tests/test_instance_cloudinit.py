"""Jinja user data at boot: the fetch phase gives it the instance's metadata in
cloud-init's instance-data.json shape, before the user data is parsed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from accounts_fixtures import make_debian_root

from provision.instance.cloudinit import instance_data_document
from provision.instance.data import InstanceData, PublicKey

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f my-key"


def test_v1_keys_under_both_spellings_and_cloud_init_platform_names() -> None:
    document = instance_data_document(InstanceData(
        platform="aws", instance_id="i-0abc", local_hostname="ip-10-0-0-1", region="eu-west-1",
        zone="eu-west-1b", public_keys=(PublicKey(KEY),)))
    assert document == {"v1": {
        "cloud_name": "aws", "cloud-name": "aws", "platform": "ec2", "public_ssh_keys": [KEY],
        "instance_id": "i-0abc", "instance-id": "i-0abc", "local_hostname": "ip-10-0-0-1",
        "local-hostname": "ip-10-0-0-1", "region": "eu-west-1",
        "availability_zone": "eu-west-1b", "availability-zone": "eu-west-1b"}}


def test_what_the_platform_did_not_give_is_absent() -> None:
    # A template using it then fails at its line instead of rendering a placeholder.
    v1 = instance_data_document(InstanceData(platform="nocloud", instance_id="iid-1"))["v1"]
    assert "region" not in v1 and "local_hostname" not in v1
    assert v1["platform"] == v1["cloud_name"] == "nocloud"


MULTIPART = b"""MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/jinja2

## template: jinja
#cloud-config
write_files:
  - path: /etc/instance-note
    content: "{{ v1.instance_id }} named {{ local_hostname }} on {{ v1.cloud_name }}"
--XX--
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="provision run --root writes files owned by root")
def test_a_nocloud_boot_renders_jinja_user_data_with_the_seeds_meta_data(tmp_path: Path) -> None:
    from tests.standins.systree import make_sys_root

    sys_root = make_sys_root(tmp_path / "sys")
    seed = sys_root / "seed"
    seed.mkdir()
    (seed / "user-data").write_bytes(MULTIPART)
    (seed / "meta-data").write_text("instance-id: iid-jinja01\nlocal-hostname: tmpl.example\n")
    root = make_debian_root(tmp_path / "root")
    run_dir = tmp_path / "run/provision"
    argv = [sys.executable, "-m", "provision", "run", "--root", str(root), "--run-dir", str(run_dir),
            "--cmdline", "ds=nocloud;s=file:///seed/"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PROVISION_SYS_ROOT": str(sys_root)}
    env.pop("PROVISION_INSTANCE_DATA", None)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (root / "etc/instance-note").read_text() == "iid-jinja01 named tmpl.example on nocloud"
    kept = run_dir / "instance-data.json"
    assert json.loads(kept.read_text())["v1"]["instance_id"] == "iid-jinja01"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
