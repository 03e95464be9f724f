"""A corpus of Ignition configs for the differential test against ignition-validate.

Three groups:
- AGREE: configs on which provision and ignition-validate must reach the same
  verdict (valid or invalid) — named ``ok_*`` and ``bad_*``.
- UNKNOWN_KEYS: Ignition only warns about unknown keys; provision rejects them.
- STRICTER: provision rejects on purpose what Ignition accepts (it would fail
  or be silently useless at boot): malformed SSH keys, unidentifiable password
  hashes, Clevis bindings (not supported yet).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

Config = dict[str, Any]


def _key(comment: str) -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + hashlib.sha256(comment.encode()).digest()
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


HASH = "$6$provisionex$BmON/g1p1C9BeI1o61nW8PO5cVjPjbSV1vG3pKJz2w3I68nLCysd2SgKwscnpBaAUr.quXSiW4Sq0VCyJbzHZ0"
SHA512 = "sha512-" + hashlib.sha512(b"x").hexdigest()
SHA256 = "sha256-" + hashlib.sha256(b"x").hexdigest()
UNIT = "[Unit]\nDescription=demo\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"


def ign(version: str, **sections: Any) -> Config:
    return {"ignition": {"version": version}, **sections}


def files(*nodes: Config, **more: Any) -> Config:
    return {"files": list(nodes), **more}


AGREE: dict[str, Config] = {
    # -- valid ----------------------------------------------------------------
    "ok_minimal_3_0": ign("3.0.0"),
    "ok_minimal_3_1": ign("3.1.0"),
    "ok_minimal_3_2": ign("3.2.0"),
    "ok_minimal_3_3": ign("3.3.0"),
    "ok_files": ign("3.3.0", storage=files(
        {"path": "/etc/motd", "mode": 420, "contents": {"source": "data:,hello%0A"}},
        {"path": "/etc/b64", "contents": {"source": "data:;base64,eA==", "verification": {"hash": SHA512}}},
        {"path": "/etc/appended", "append": [{"source": "data:,more"}], "user": {"name": "core"}, "group": {"id": 10}},
        {"path": "/etc/replaced", "overwrite": True, "contents": {"source": "https://example.com/f"}},
        {"path": "/etc/empty"},
    )),
    "ok_gzip_and_sha256_3_1": ign("3.1.0", storage=files(
        {"path": "/etc/z", "contents": {"source": "http://example.com/z.gz", "compression": "gzip", "verification": {"hash": SHA256},
                                        "httpHeaders": [{"name": "Authorization", "value": "Bearer x"}]}},
    )),
    "ok_dirs_and_links": ign("3.3.0", storage={
        "directories": [{"path": "/var/lib/app", "mode": 448}],
        "links": [{"path": "/etc/localtime", "target": "/usr/share/zoneinfo/UTC"},
                  {"path": "/etc/hard", "target": "/etc/motd", "hard": True}],
        "files": [{"path": "/etc/motd"}],
    }),
    "ok_units": ign("3.3.0", systemd={"units": [
        {"name": "demo.service", "enabled": True, "contents": UNIT,
         "dropins": [{"name": "10-env.conf", "contents": "[Service]\nEnvironment=A=1\n"}]},
        {"name": "getty@tty1.service", "enabled": False},
        {"name": "sshd.socket", "mask": True},
    ]}),
    "ok_users": ign("3.3.0", passwd={
        "users": [{"name": "core", "passwordHash": HASH, "sshAuthorizedKeys": [_key("a@b")], "uid": 1000,
                   "groups": ["wheel"], "shell": "/bin/bash", "homeDir": "/home/core", "gecos": "Core"},
                  {"name": "gone", "shouldExist": False}],
        "groups": [{"name": "wheel", "gid": 10}, {"name": "old", "shouldExist": False}],
    }),
    "ok_disks": ign("3.3.0", storage={
        "disks": [{"device": "/dev/vda", "wipeTable": True, "partitions": [
            {"number": 1, "label": "boot", "sizeMiB": 512, "typeGuid": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"},
            {"number": 2, "label": "root", "startMiB": 0, "sizeMiB": 0},
            {"number": 3, "shouldExist": False, "wipePartitionEntry": True},
        ]}],
        "raid": [{"name": "data", "level": "raid1", "devices": ["/dev/vdb", "/dev/vdc"]}],
        "filesystems": [
            {"device": "/dev/disk/by-partlabel/root", "format": "ext4", "label": "root", "path": "/", "wipeFilesystem": True},
            {"device": "/dev/md/data", "format": "xfs", "label": "data", "mountOptions": ["noatime"]},
            {"device": "/dev/vdd", "format": "none"},
        ],
    }),
    "ok_luks_3_2": ign("3.2.0", storage={"luks": [{"name": "secret", "device": "/dev/vdb", "label": "secret", "wipeVolume": True}]}),
    "ok_kargs_3_3": ign("3.3.0", kernelArguments={"shouldExist": ["console=ttyS0"], "shouldNotExist": ["quiet"]}),
    "ok_config_merge": ign("3.3.0"),
    "ok_nulls": ign("3.3.0", storage=files({"path": "/a", "contents": None, "mode": None, "user": {"id": None, "name": None}})),
    "ok_proxy_3_1": ign("3.1.0"),
    # -- invalid --------------------------------------------------------------
    "bad_version_2x": {"ignition": {"version": "2.2.0"}},
    "bad_version_unknown": {"ignition": {"version": "3.9.0"}},
    "bad_relative_path": ign("3.3.0", storage=files({"path": "etc/motd"})),
    "bad_unclean_path": ign("3.3.0", storage=files({"path": "/etc/../motd"})),
    "bad_duplicate_file": ign("3.3.0", storage=files({"path": "/etc/a"}, {"path": "/etc/a"})),
    "bad_file_and_dir_same_path": ign("3.3.0", storage={"files": [{"path": "/etc/a"}], "directories": [{"path": "/etc/a"}]}),
    "bad_path_under_link": ign("3.3.0", storage={"links": [{"path": "/etc/l", "target": "/tmp"}], "files": [{"path": "/etc/l/x"}]}),
    "bad_overwrite_without_source": ign("3.3.0", storage=files({"path": "/etc/a", "overwrite": True})),
    "bad_hash_length": ign("3.3.0", storage=files({"path": "/a", "contents": {"source": "data:,x", "verification": {"hash": "sha512-abcd"}}})),
    "bad_hash_function": ign("3.3.0", storage=files({"path": "/a", "contents": {"source": "data:,x", "verification": {"hash": "md5-" + "0" * 32}}})),
    "bad_sha256_in_3_0": ign("3.0.0", storage=files({"path": "/a", "contents": {"source": "data:,x", "verification": {"hash": SHA256}}})),
    "bad_url_scheme": ign("3.3.0", storage=files({"path": "/a", "contents": {"source": "ftp://example.com/x"}})),
    "bad_data_url": ign("3.3.0", storage=files({"path": "/a", "contents": {"source": "data:;base64,@@@"}})),
    "bad_headers_on_data": ign("3.3.0", storage=files({"path": "/a", "contents": {"source": "data:,x", "httpHeaders": [{"name": "A", "value": "b"}]}})),
    "bad_user_id_and_name": ign("3.3.0", storage=files({"path": "/a", "user": {"id": 1, "name": "core"}})),
    "bad_mode_type": ign("3.3.0", storage=files({"path": "/a", "mode": "0644"})),
    "bad_partition_number_clash": ign("3.3.0", storage={"disks": [{"device": "/dev/vda", "partitions": [{"number": 1, "label": "a"}, {"number": 1, "label": "b"}]}]}),
    "bad_partition_overlap": ign("3.3.0", storage={"disks": [{"device": "/dev/vda", "partitions": [
        {"number": 1, "startMiB": 1, "sizeMiB": 100}, {"number": 2, "startMiB": 50, "sizeMiB": 100}]}]}),
    "bad_partition_label_colon": ign("3.3.0", storage={"disks": [{"device": "/dev/vda", "partitions": [{"label": "a:b"}]}]}),
    "bad_partition_label_long": ign("3.3.0", storage={"disks": [{"device": "/dev/vda", "partitions": [{"label": "x" * 37}]}]}),
    "bad_partition_guid": ign("3.3.0", storage={"disks": [{"device": "/dev/vda", "partitions": [{"label": "a", "typeGuid": "not-a-guid"}]}]}),
    "bad_should_not_exist_with_label": ign("3.3.0", storage={"disks": [{"device": "/dev/vda", "partitions": [{"number": 1, "shouldExist": False, "label": "x"}]}]}),
    "bad_fs_label_too_long_xfs": ign("3.3.0", storage={"filesystems": [{"device": "/dev/vdb", "format": "xfs", "label": "thirteenchars"}]}),
    "bad_fs_format": ign("3.3.0", storage={"filesystems": [{"device": "/dev/vdb", "format": "ntfs"}]}),
    "bad_fs_none_before_3_3": ign("3.2.0", storage={"filesystems": [{"device": "/dev/vdb", "format": "none"}]}),
    "bad_unit_suffix": ign("3.3.0", systemd={"units": [{"name": "demo.txt", "contents": UNIT}]}),
    "bad_dropin_suffix": ign("3.3.0", systemd={"units": [{"name": "demo.service", "dropins": [{"name": "10-env", "contents": "[Service]\n"}]}]}),
    "bad_unit_section_unclosed": ign("3.3.0", systemd={"units": [{"name": "demo.service", "contents": "[Service\nExecStart=/bin/true\n"}]}),
    "bad_unit_option_without_value": ign("3.3.0", systemd={"units": [{"name": "demo.service", "contents": "[Service]\nExecStart\n"}]}),
    "bad_duplicate_unit": ign("3.3.0", systemd={"units": [{"name": "a.service"}, {"name": "a.service"}]}),
    "bad_duplicate_user": ign("3.3.0", passwd={"users": [{"name": "a"}, {"name": "a"}]}),
}

AGREE["ok_clevis_binding"] = ign("3.2.0", storage={"luks": [{"name": "x", "device": "/dev/vdb", "clevis": {
    "tpm2": True, "threshold": 2, "tang": [{"url": "https://tang.example", "thumbprint": "x"}]}}]})

UNKNOWN_KEYS: dict[str, Config] = {
    "unknown_key_in_file": ign("3.3.0", storage=files({"path": "/a", "foo": 1})),
    "mount_options_in_3_0": ign("3.0.0", storage={"filesystems": [{"device": "/dev/vda", "format": "ext4", "mountOptions": ["ro"]}]}),
    "luks_in_3_1": ign("3.1.0", storage={"luks": [{"name": "x", "device": "/dev/vdb"}]}),
    "kernel_arguments_in_3_2": ign("3.2.0", kernelArguments={"shouldExist": ["a"]}),
}

STRICTER: dict[str, Config] = {
    "not_an_ssh_key": ign("3.3.0", passwd={"users": [{"name": "a", "sshAuthorizedKeys": ["not a key"]}]}),
    "unidentifiable_password_hash": ign("3.3.0", passwd={"users": [{"name": "a", "passwordHash": "zzz"}]}),
    # systemd ignores an assignment outside a section: the unit would do nothing.
    "unit_option_outside_section": ign("3.3.0", systemd={"units": [{"name": "demo.service", "contents": "ExecStart=/bin/true\n"}]}),
    # useradd cannot create a user without a name; Ignition only finds out at boot.
    "user_without_name": ign("3.3.0", passwd={"users": [{"uid": 5}]}),
    # A data: URL whose hash cannot match fails at boot in Ignition; we say so now.
    "data_url_hash_mismatch": ign("3.3.0", storage=files({"path": "/a", "contents": {"source": "data:,y", "verification": {"hash": SHA512}}})),
    # clevis' sss pin refuses a threshold above its pins only at bind time, on the machine.
    "clevis_threshold_above_pins": ign("3.2.0", storage={"luks": [{"name": "x", "device": "/dev/vdb", "clevis": {"tpm2": True, "threshold": 2}}]}),
}

AGREE["ok_config_merge"]["ignition"]["config"] = {"merge": [{"source": "https://example.com/base.ign", "verification": {"hash": SHA512}}]}
AGREE["ok_proxy_3_1"]["ignition"]["proxy"] = {"httpsProxy": "http://proxy:3128", "noProxy": ["localhost"]}
