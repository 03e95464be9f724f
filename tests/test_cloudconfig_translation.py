"""Translation fixes in the #cloud-config importer, on cloud-init's documented examples.

fstab lines are read back by util-linux's own fstab parser (findmnt), so the
escaping is checked against what mount will see, not against our encoder.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.config.pipeline import ParsedConfig, parse_config
from provision.fetch.resource import decode_data_url


def translate(text: str) -> ParsedConfig:
    return parse_config(("#cloud-config\n" + text).encode(), "user-data")


def spec_of(text: str) -> dict[str, Any]:
    parsed = translate(text)
    assert parsed.ok, [(d.message, d.position) for d in parsed.diagnostics]
    assert parsed.spec is not None
    return parsed.spec


def contents(resource: dict[str, Any]) -> bytes:
    data = decode_data_url(resource["source"])
    return gzip.decompress(data) if resource.get("compression") == "gzip" else data


def fstab(spec: dict[str, Any]) -> bytes:
    [entry] = [f for f in spec["storage"]["files"] if f["path"] == "/etc/fstab"]
    return b"".join(contents(r) for r in entry["append"])


def read_back(data: bytes, tmp_path: Path) -> list[dict[str, str]]:
    """The entries as util-linux parses them: (source, target, fstype, options, freq, passno)."""
    path = tmp_path / "fstab"
    path.write_bytes(data)
    done = subprocess.run(["findmnt", "--fstab", "--tab-file", str(path), "--json",
                           "-o", "SOURCE,TARGET,FSTYPE,OPTIONS,FREQ,PASSNO"],
                          capture_output=True, text=True, check=True)
    entries: list[dict[str, str]] = json.loads(done.stdout)["filesystems"]
    return [{k: str(v) for k, v in e.items()} for e in entries]


def test_mount_points_with_spaces_are_escaped_cc_mounts_example3(tmp_path: Path) -> None:
    # cloud-init doc/module-docs/cc_mounts/example3.yaml
    spec = spec_of('mounts:\n- [ /dev/sr0, "/mnt/Cdrom Drive", auto, "uid=1000,gid=1000", "0", "0" ]\n')
    assert fstab(spec) == b"/dev/sr0\t/mnt/Cdrom\\040Drive\tauto\tuid=1000,gid=1000\t0\t0\n"
    [entry] = read_back(fstab(spec), tmp_path)
    assert entry["target"] == "/mnt/Cdrom Drive" and entry["source"] == "/dev/sr0"
    assert {"path": "/mnt/Cdrom Drive", "mode": 0o755} in spec["storage"]["directories"]


def test_tabs_newlines_and_backslashes_cannot_break_the_fstab_line(tmp_path: Path) -> None:
    spec = spec_of('mounts:\n- [ "/dev/vdb", "/srv/a\\tb\\\\c\\nd", ext4 ]\n')
    [entry] = read_back(fstab(spec), tmp_path)
    assert entry["target"] == "/srv/a\tb\\c\nd"
    assert fstab(spec).count(b"\n") == 1


def test_short_entries_get_nofail_from_the_defaults_cc_mounts_example1(tmp_path: Path) -> None:
    # cloud-init doc/examples/cloud-config-mount-points.txt (without the ephemeral0 and swap lines)
    spec = spec_of('mounts:\n - [ sdc, /opt/data ]\n - [ xvdh, /opt/data, "auto", "defaults,nofail", "0", "0" ]\n'
                   ' - [ dd, /dev/zero ]\nmount_default_fields: [ None, None, "auto", "defaults,nofail", "0", "2" ]\n')
    entries = read_back(fstab(spec), tmp_path)
    assert [(e["source"], e["target"], e["fstype"], e["options"], e["passno"]) for e in entries] == [
        ("/dev/sdc", "/opt/data", "auto", "defaults,nofail", "2"),
        ("/dev/xvdh", "/opt/data", "auto", "defaults,nofail", "0"),
        ("dd", "/dev/zero", "auto", "defaults,nofail", "2"),  # not a device name: kept as cloud-init keeps it
    ]


def test_null_fields_take_the_defaults() -> None:
    spec = spec_of("mounts:\n- [ vdb, /data, null, null ]\n")
    assert fstab(spec) == b"/dev/vdb\t/data\tauto\tdefaults,nofail\t0\t2\n"


def test_explicit_options_are_kept_without_nofail() -> None:
    assert fstab(spec_of("mounts:\n- [ vdb, /data, ext4, noatime ]\n")) == b"/dev/vdb\t/data\text4\tnoatime\t0\t2\n"


def test_network_sources_never_get_a_dev_prefix(tmp_path: Path) -> None:
    # The gluster line is cloud-init's doc/examples/cloud-config-gluster.txt.
    spec = spec_of("mounts:\n"
                   " - [ 'volfile-server-hostname:6996', /mnt/data, glusterfs, \"defaults,nofail\", \"0\", \"2\" ]\n"
                   " - [ 'nfs.example.com:/export/home', /home, nfs ]\n"
                   " - [ '//fileserver/share', /mnt/share, cifs, 'credentials=/etc/cifs-creds' ]\n"
                   " - [ '[fd00::1]:/export', /mnt/v6, nfs4 ]\n")
    entries = read_back(fstab(spec), tmp_path)
    assert [(e["source"], e["options"]) for e in entries] == [
        ("volfile-server-hostname:6996", "defaults,nofail"),
        ("nfs.example.com:/export/home", "defaults,nofail,_netdev"),  # default options: waits for the network
        ("//fileserver/share", "credentials=/etc/cifs-creds"),
        ("[fd00::1]:/export", "defaults,nofail,_netdev"),
    ]


def test_pseudo_filesystems_are_kept_as_written() -> None:
    assert fstab(spec_of("mounts:\n- [ tmpfs, /tmp, tmpfs, 'size=1G,mode=1777' ]\n")).startswith(b"tmpfs\t/tmp\t")


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("sdb", "/dev/sdb"),
        ("sdb.1", "/dev/sdb1"),
        ("xvdf.2", "/dev/xvdf2"),
        ("nvme0n1.1", "/dev/nvme0n1p1"),
        ("mmcblk0.3", "/dev/mmcblk0p3"),
        ("/dev/vdb.1", "/dev/vdb1"),
        ("/dev/disk/by-id/virtio-data.2", "/dev/disk/by-id/virtio-data-part2"),
        ("/dev/disk/by-path/pci-0000:00:05.0.1", "/dev/disk/by-path/pci-0000:00:05.0-part1"),
        ("/dev/disk/azure/scsi1/lun0.1", "/dev/disk/azure/scsi1/lun0-part1"),
        ("/dev/vdb.0", "/dev/vdb"),  # partition 0: the whole disk
        ("UUID=1234-ABCD", "UUID=1234-ABCD"),
        ("LABEL=data", "LABEL=data"),
    ],
)
def test_cloud_init_device_names(name: str, device: str) -> None:
    spec = spec_of(f"mounts:\n- [ '{name}', /data, auto, defaults ]\n")
    assert fstab(spec).split(b"\t")[0].decode() == device


def test_a_by_uuid_link_has_no_partitions() -> None:
    parsed = translate("mounts:\n- [ /dev/disk/by-uuid/abcd.1, /data ]\n")
    [diag] = parsed.diagnostics
    assert "partition 1 of /dev/disk/by-uuid/abcd" in diag.message and diag.position is not None


def test_fs_setup_partitions_of_links_and_dotted_names() -> None:
    # The Azure lines are cloud-init's doc/examples/cloud-config-disk-setup.txt.
    spec = spec_of("fs_setup:\n"
                   "  - {device: /dev/disk/azure/scsi1/lun0, partition: 1, filesystem: ext4}\n"
                   "  - {device: nvme1n1.2, filesystem: xfs}\n"
                   "  - {device: /dev/vdc, partition: none, filesystem: ext4}\n")
    assert [f["device"] for f in spec["storage"]["filesystems"]] == [
        "/dev/disk/azure/scsi1/lun0-part1", "/dev/nvme1n1p2", "/dev/vdc"]


def test_device_aliases_are_applied_everywhere_cloud_init_applies_them() -> None:
    # cloud-init doc/examples/cloud-config-disk-setup.txt, the SmartOS and Azure sections
    spec = spec_of("device_aliases: {'ephemeral0': '/dev/vdb', 'data': '/dev/disk/by-id/virtio-data'}\n"
                   "disk_setup:\n  data:\n    table_type: gpt\n    layout: true\n    overwrite: false\n"
                   "fs_setup:\n  - {label: ephemeral0, filesystem: ext4, device: ephemeral0.0}\n"
                   "  - {label: d, filesystem: xfs, device: data.1}\n"
                   "mounts:\n  - [ data.1, /srv/data ]\n")
    storage = spec["storage"]
    assert storage["disks"][0]["device"] == "/dev/disk/by-id/virtio-data"
    assert [f["device"] for f in storage["filesystems"]] == ["/dev/vdb", "/dev/disk/by-id/virtio-data-part1"]
    assert fstab(spec).startswith(b"/dev/disk/by-id/virtio-data-part1\t/srv/data\t")


def test_cloud_specific_names_without_an_alias_are_refused_at_their_line() -> None:
    parsed = translate("mounts:\n - [ ephemeral0, /mnt, auto, 'defaults,noexec' ]\n - [ swap, none, swap, sw ]\n")
    lines = sorted(d.position.line for d in parsed.diagnostics if d.position)
    assert lines == [3, 4]
    assert all("cloud-specific device name" in d.message for d in parsed.diagnostics)


def test_primary_group_is_created_when_the_document_does_not_define_it() -> None:
    spec = spec_of("users:\n  - name: alice\n    primary_group: developers\n    groups: [docker]\n")
    assert {"name": "developers"} in spec["passwd"]["groups"]
    assert spec["passwd"]["users"][0]["primaryGroup"] == "developers"


def test_primary_group_defined_by_the_document_is_not_duplicated() -> None:
    spec = spec_of("groups:\n  - developers\nusers:\n  - name: alice\n    primary_group: developers\n")
    assert [g["name"] for g in spec["passwd"]["groups"]] == ["developers"]


def _unquote_exec(line: str) -> list[str]:
    """systemd's unquoting of the ExecStart lines the importer writes (quotes, C escapes, $$ and %%)."""
    words = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', line):
        word = match.group(1) if match.group(1) is not None else match.group(2)
        word = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), word)
        words.append(word.replace("$$", "$").replace("%%", "%"))
    return words


def test_cloud_init_per_runs_once_with_cloud_init_semantics(tmp_path: Path) -> None:
    log = tmp_path / "log"
    spec = spec_of("bootcmd:\n"
                   f"  - cloud-init-per once my-mkfs sh -c 'echo once >> {log}; exit 4'\n"
                   f"  - [cloud-init-per, instance, greet, sh, -c, 'echo \"$0\" >> {log}', 'a b']\n"
                   f"  - cloud-init-per always tick echo always >> {log}\n")
    [unit] = spec["systemd"]["units"]
    execs = [line.removeprefix("ExecStart=") for line in unit["contents"].splitlines()
             if line.startswith("ExecStart=")]
    sem = tmp_path / "sem"
    statuses = []
    for _boot in range(2):
        for line in execs:
            argv = [w.replace("/var/lib/provision/sem", str(sem)) for w in _unquote_exec(line)]
            statuses.append(subprocess.run(argv).returncode)
    assert log.read_text() == "once\na b\nalways\nalways\n"
    assert statuses == [4, 0, 0, 0, 0, 0]  # the command's own status, then the marker skips it
    assert sorted(p.name for p in sem.iterdir()) == ["bootper.greet.instance", "bootper.my_mkfs.once"]


def test_cloud_init_per_misuse_is_an_error_at_the_command() -> None:
    parsed = translate("runcmd:\n  - echo fine\n  - cloud-init-per sometimes x echo\n")
    [diag] = parsed.diagnostics
    assert diag.is_error and "sometimes" in diag.message and diag.position is not None
    assert diag.position.line == 4


def test_binary_yaml_content_as_cloud_init_reads_it_cc_write_files_example3() -> None:
    # cloud-init doc/module-docs/cc_write_files/example3.yaml: gzip data given as YAML !!binary
    corpus = Path(__file__).parent / "corpus/cloud-init/module-docs/cc_write_files/example3.yaml"
    parsed = parse_config(corpus.read_bytes(), "user-data")
    assert parsed.ok and parsed.spec is not None
    [entry] = parsed.spec["storage"]["files"]
    assert entry["path"] == "/usr/bin/hello" and entry["mode"] == 0o755
    assert contents(entry["contents"]) == b"#!/bin/sh\necho hello world\n"


def test_binary_yaml_stays_refused_outside_cloud_config() -> None:
    parsed = parse_config(b"variant: provision\nversion: 1.0.0\nstorage: !!binary aGVsbG8=\n", "c.yaml")
    assert not parsed.ok and "unsupported YAML tag" in parsed.diagnostics[0].message
    bad = translate("write_files:\n  - path: /x\n    content: !!binary |\n      not*base64\n")
    [diag] = bad.diagnostics
    assert "not valid base64" in diag.message and diag.position is not None and diag.position.line == 4


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.characters(min_codepoint=32, max_codepoint=0x24FF)
                        | st.sampled_from(["\t", "\n", "\\", " ", "\\040"]), min_size=1, max_size=12)
                .map("".join), min_size=1, max_size=4))
def test_any_mount_point_reads_back_unchanged(names: list[str]) -> None:
    """Whatever the mount point's characters, util-linux reads back exactly the path we meant."""
    import tempfile

    from provision.importers.cloudconfig.storage import escape_fstab_field

    targets = ["/mnt/" + name for name in names]
    data = "".join(f"/dev/vdb\t{escape_fstab_field(t)}\tauto\tdefaults\t0\t0\n" for t in targets).encode()
    with tempfile.TemporaryDirectory() as tmp:
        assert [e["target"] for e in read_back(data, Path(tmp))] == targets


def test_fs_setup_default_partition_any_on_a_disk_the_document_partitions() -> None:
    # cloud-init's default is partition: any, the first partition without a filesystem: on a
    # disk disk_setup has just partitioned, partition 1 — never the bare disk (that would
    # destroy the new partition table).
    spec = spec_of("disk_setup:\n  /dev/vdb: {table_type: gpt, layout: true}\n"
                   "  nvme1n1: {table_type: gpt, layout: true}\n"
                   "fs_setup:\n  - {device: /dev/vdb, filesystem: ext4, label: data}\n"
                   "  - {device: nvme1n1, filesystem: ext4, partition: auto}\n"
                   "  - {device: /dev/xvda1, filesystem: xfs}\n")
    assert [f["device"] for f in spec["storage"]["filesystems"]] == ["/dev/vdb1", "/dev/nvme1n1p1", "/dev/xvda1"]


def test_fs_setup_default_partition_on_an_unknown_disk_says_what_it_does() -> None:
    parsed = translate("fs_setup:\n  - device: /dev/vdc\n    filesystem: ext4\n  - {device: /dev/vdd, "
                       "filesystem: ext4, partition: none}\n")
    assert parsed.ok and parsed.spec is not None
    assert [f["device"] for f in parsed.spec["storage"]["filesystems"]] == ["/dev/vdc", "/dev/vdd"]
    [diag] = parsed.diagnostics
    assert "whole device /dev/vdc" in diag.message and diag.position is not None and diag.position.line == 3
