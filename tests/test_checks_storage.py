"""Semantic checks on disks and partitions, RAID, LUKS and filesystems."""

from __future__ import annotations

from typing import Any

import pytest
from checks_fixtures import only

from provision.config.build import build_config
from provision.config.checks import run_checks
from provision.diagnostics import Diagnostic, Severity

LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
P = ("storage", "disks", 0, "partitions")


def check(**storage: Any) -> list[Diagnostic]:
    return run_checks(build_config({"provision": {"version": "1.0.0"}, "storage": storage}))


def disk(*partitions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"device": "/dev/vda", "partitions": list(partitions), **extra}


# --- disks and partitions -------------------------------------------------


def test_disk_device_must_be_absolute_and_unique() -> None:
    only(
        check(disks=[{"device": "vda"}]),
        Severity.ERROR,
        ("storage", "disks", 0, "device"),
        "not absolute",
    )
    only(
        check(disks=[{"device": "/dev/vda"}, {"device": "/dev/vda"}]),
        Severity.ERROR,
        ("storage", "disks", 1, "device"),
        "duplicate disk device",
    )
    assert check(disks=[{"device": "/dev/vda"}, {"device": "/dev/disk/by-id/virtio-x"}]) == []


def test_partition_numbers_collide() -> None:
    found = check(disks=[disk({"number": 1, "label": "a"}, {"number": 1, "label": "b"})])
    diag = only(found, Severity.ERROR, (*P, 1, "number"), "partition numbers collide")
    assert "partitions[0]" in diag.message
    assert check(disks=[disk({"number": 1, "label": "a"}, {"number": 2, "label": "b"})]) == []
    # Number 0 means "next free": several are fine.
    assert check(disks=[disk({"label": "a"}, {"label": "b"})]) == []


def test_explicit_ranges_must_not_overlap() -> None:
    found = check(
        disks=[
            disk(
                {"label": "a", "startMiB": 1, "sizeMiB": 100},
                {"label": "b", "startMiB": 50, "sizeMiB": 10},
            )
        ]
    )
    only(found, Severity.ERROR, (*P, 1), "partitions overlap")
    # Adjacent ranges, and ranges left to the partitioner (0 or unset), do not overlap.
    assert (
        check(
            disks=[
                disk(
                    {"label": "a", "startMiB": 1, "sizeMiB": 100},
                    {"label": "b", "startMiB": 101, "sizeMiB": 10},
                    {"label": "c", "startMiB": 0, "sizeMiB": 10},
                    {"label": "d", "sizeMiB": 0},
                )
            ]
        )
        == []
    )


def test_partition_labels_length_colon_and_uniqueness() -> None:
    only(
        check(disks=[disk({"label": "x" * 37})]), Severity.ERROR, (*P, 0, "label"), "36 characters"
    )
    assert check(disks=[disk({"label": "x" * 36})]) == []
    # GPT counts UTF-16 code units: 18 characters outside the BMP are 36 units.
    assert check(disks=[disk({"label": "\U0001f600" * 18})]) == []
    only(check(disks=[disk({"label": "\U0001f600" * 19})]), Severity.ERROR, (*P, 0, "label"), "36")
    only(check(disks=[disk({"label": "boot:efi"})]), Severity.ERROR, (*P, 0, "label"), "colon")
    found = check(disks=[disk({"label": "root"}, {"label": "root"})])
    only(found, Severity.ERROR, (*P, 1, "label"), "same partition label twice")
    # Across disks it is legal but makes /dev/disk/by-partlabel/ ambiguous.
    found = check(
        disks=[disk({"label": "root"}), {"device": "/dev/vdb", "partitions": [{"label": "root"}]}]
    )
    diag = only(
        found, Severity.WARNING, ("storage", "disks", 1, "partitions", 0, "label"), "also used by"
    )
    assert "storage.disks[0].partitions[0].label" in diag.message


@pytest.mark.parametrize("key", ["typeGuid", "guid"])
def test_guid_syntax(key: str) -> None:
    only(
        check(disks=[disk({"label": "a", key: "linux"})]),
        Severity.ERROR,
        (*P, 0, key),
        "doesn't match the form",
    )
    only(
        check(disks=[disk({"label": "a", key: LINUX_FS + "0"})]),
        Severity.ERROR,
        (*P, 0, key),
        "form",
    )
    assert check(disks=[disk({"label": "a", key: LINUX_FS})]) == []
    assert check(disks=[disk({"label": "a", key: LINUX_FS.lower()})]) == []


def test_a_partition_needs_a_number_or_a_label() -> None:
    only(check(disks=[disk({"sizeMiB": 5})]), Severity.ERROR, (*P, 0), "number >= 1 or a label")
    assert check(disks=[disk({"sizeMiB": 5, "number": 3})]) == []


def test_should_exist_false_allows_only_number_and_wipe() -> None:
    found = check(disks=[disk({"number": 3, "shouldExist": False, "label": "x", "sizeMiB": 4})])
    diag = only(found, Severity.ERROR, (*P, 0, "shouldExist"), "shouldExist specified false")
    assert "label" in diag.message and "sizeMiB" in diag.message
    assert (
        check(disks=[disk({"number": 3, "shouldExist": False, "wipePartitionEntry": True})]) == []
    )


def test_should_exist_false_mixes_with_next_free_numbers() -> None:
    # Ignition refused this until "stages/disks: Allow deleting a partition while creating
    # number 0"; deletions happen first, so the deleted number is free (partitions.complex).
    assert check(disks=[disk({"number": 1, "shouldExist": False}, {"label": "z"})]) == []
    assert check(disks=[disk({"number": 1, "shouldExist": False}, {"label": "z", "startMiB": 0})]) == []


# --- RAID ------------------------------------------------------------------


def raid(**kw: Any) -> dict[str, Any]:
    return {"name": "md0", "level": "raid1", "devices": ["/dev/vdb", "/dev/vdc"], **kw}


def test_a_valid_array() -> None:
    assert (
        check(
            raid=[
                raid(),
                raid(
                    name="data",
                    level="5",
                    devices=["/dev/a", "/dev/b", "/dev/c", "/dev/d"],
                    spares=1,
                ),
            ]
        )
        == []
    )


def test_force_allows_a_degraded_array() -> None:
    assert check(raid=[raid(devices=["/dev/vdb"], options=["--force"])]) == []


def test_duplicate_array_names_and_members() -> None:
    found = check(raid=[raid(), raid(devices=["/dev/vdd", "/dev/vde"])])
    only(found, Severity.ERROR, ("storage", "raid", 1, "name"), "duplicate RAID array name")
    found = check(raid=[raid(), raid(name="md1", devices=["/dev/vdc", "/dev/vdd"])])
    only(found, Severity.ERROR, ("storage", "raid", 1, "devices", 0), "duplicate RAID member")


@pytest.mark.parametrize(
    ("array", "path", "text"),
    [
        (raid(devices=["/dev/vdb"]), ("devices",), "raid1 needs at least 2 active devices, got 1"),
        (raid(level="raid6", devices=["/dev/a", "/dev/b", "/dev/c"]), ("devices",), "at least 4"),
        (raid(spares=2), ("spares",), "no active device"),
        (
            raid(level="raid0", spares=1, devices=["/dev/a", "/dev/b", "/dev/c"]),
            ("spares",),
            "spares unsupported",
        ),
        (raid(devices=[]), ("devices",), "raid devices required"),
        (raid(name="a/b"), ("name",), "slashes"),
        (raid(devices=["/dev/vdb", "vdc"]), ("devices", 1), "not absolute"),
        (raid(level="raid7"), ("level",), "unrecognized raid level"),
    ],
)
def test_array_sanity(array: dict[str, Any], path: tuple[object, ...], text: str) -> None:
    only(check(raid=[array]), Severity.ERROR, ("storage", "raid", 0, *path), text)


# --- LUKS ------------------------------------------------------------------


def luks(**kw: Any) -> dict[str, Any]:
    return {"name": "data", "device": "/dev/vdb", **kw}


def test_luks_checks() -> None:
    assert check(luks=[luks(label="x" * 47, uuid="6e9a7e8c-61ab-4d3e-a1c4-6b7c4b1f2e10")]) == []
    only(
        check(luks=[luks(), luks(device="/dev/vdc")]),
        Severity.ERROR,
        ("storage", "luks", 1, "name"),
        "duplicate LUKS name",
    )
    only(
        check(luks=[luks(), luks(name="other")]),
        Severity.ERROR,
        ("storage", "luks", 1, "device"),
        "duplicate LUKS device",
    )
    only(check(luks=[luks(name="a/b")]), Severity.ERROR, ("storage", "luks", 0, "name"), "slashes")
    only(check(luks=[luks(label="x" * 48)]), Severity.ERROR, ("storage", "luks", 0, "label"), "47")
    only(
        check(luks=[luks(uuid="nope")]),
        Severity.ERROR,
        ("storage", "luks", 0, "uuid"),
        "not a UUID",
    )
    only(
        check(luks=[luks(device="vdb")]),
        Severity.ERROR,
        ("storage", "luks", 0, "device"),
        "not absolute",
    )


def test_cex_is_refused_clevis_is_checked() -> None:
    only(
        check(luks=[luks(cex={"enabled": True})]),
        Severity.ERROR,
        ("storage", "luks", 0, "cex"),
        "not supported",
    )
    # Present but switched off: nothing to refuse.
    assert check(luks=[luks(clevis={"tpm2": False, "tang": []}, cex={"enabled": False})]) == []
    assert check(luks=[luks(clevis={"tpm2": True})]) == []
    tang = {"url": "https://tang.example", "thumbprint": "x"}
    assert check(luks=[luks(clevis={"tpm2": True, "tang": [tang], "threshold": 2})]) == []


@pytest.mark.parametrize(
    ("clevis", "where", "message"),
    [
        ({"tpm2": True, "threshold": 2}, ("threshold",), "threshold 2 is more than the 1 pin"),
        ({"threshold": 1}, ("threshold",), "more than the 0 pin"),
        ({"tang": [{"url": "ftp://tang.example", "thumbprint": "x"}]}, ("tang", 0, "url"), "http:// or https://"),
        ({"tang": [{"url": "http://tang.example"}]}, ("tang", 0, "thumbprint"), "thumbprint is required"),
        ({"tang": [{"url": "http://t", "thumbprint": "x", "advertisement": "{"}]},
         ("tang", 0, "advertisement"), "not valid JSON"),
        ({"tang": [{"url": "http://t", "thumbprint": "x"}, {"url": "http://t", "thumbprint": "y"}]},
         ("tang", 1, "url"), "duplicate Tang server URL"),
        ({"custom": {"pin": "tang", "config": "{}"}, "tpm2": True}, (), "cannot use custom clevis config"),
        ({"custom": {"pin": "yubikey", "config": "{}"}}, ("custom", "pin"), "unsupported clevis pin"),
        ({"custom": {"pin": "tpm2"}}, ("custom", "config"), "missing required custom clevis config"),
        ({"custom": {"config": "{}"}}, ("custom", "pin"), "missing required custom clevis pin"),
        ({"custom": {"pin": "tpm2", "config": "[1,"}}, ("custom", "config"), "not valid JSON"),
        ({"custom": {"pin": "tpm2", "config": "[]"}}, ("custom", "config"), "must be a JSON object"),
    ],
)
def test_clevis_mistakes_are_positioned(clevis: dict[str, object], where: tuple[object, ...], message: str) -> None:
    only(check(luks=[luks(clevis=clevis)]), Severity.ERROR, ("storage", "luks", 0, "clevis", *where), message)


def test_tang_advertisement_must_carry_the_thumbprint() -> None:
    """An advertisement given in the config is checked against the thumbprint at validate."""
    import base64
    import json

    key = {"kty": "EC", "crv": "P-256", "key_ops": ["verify"], "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
    payload = base64.urlsafe_b64encode(json.dumps({"keys": [key]}).encode()).decode().rstrip("=")
    advert = json.dumps({"payload": payload, "protected": "e30", "signature": "AA"})
    from provision.disks.clevis import thumbprints

    good = sorted(thumbprints(key))[0]
    assert check(luks=[luks(clevis={"tang": [{"url": "http://t", "thumbprint": good,
                                               "advertisement": advert}]})]) == []
    only(
        check(luks=[luks(clevis={"tang": [{"url": "http://t", "thumbprint": "nope", "advertisement": advert}]})]),
        Severity.ERROR, ("storage", "luks", 0, "clevis", "tang", 0, "thumbprint"), "no signing key",
    )


def test_a_raid_member_cannot_also_be_a_luks_device() -> None:
    found = check(raid=[raid()], luks=[luks(device="/dev/vdc")])
    only(found, Severity.ERROR, ("storage", "luks", 0, "device"), "also a RAID member")
    assert check(raid=[raid()], luks=[luks(device="/dev/md/md0")]) == []


# --- filesystems -------------------------------------------------------------


def fs(**kw: Any) -> dict[str, Any]:
    return {"device": "/dev/vdb1", "format": "ext4", **kw}


@pytest.mark.parametrize(
    ("fmt", "limit"), [("ext4", 16), ("xfs", 12), ("vfat", 11), ("swap", 15), ("btrfs", 256)]
)
def test_label_length_per_format(fmt: str, limit: int) -> None:
    assert check(filesystems=[fs(format=fmt, label="L" * limit)]) == []
    only(
        check(filesystems=[fs(format=fmt, label="L" * (limit + 1))]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "label"),
        f"longer than {limit} characters when using {fmt}",
    )


def test_fields_need_a_format() -> None:
    only(
        check(filesystems=[{"device": "/dev/vdb1", "label": "x"}]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "label"),
        "must specify format",
    )
    diag = only(
        check(filesystems=[{"device": "/dev/vdb1", "path": "/var", "wipeFilesystem": True}]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "device"),
        "format cannot be empty",
    )
    assert "path" in diag.message and "wipeFilesystem" in diag.message
    assert check(filesystems=[{"device": "/dev/vdb1"}]) == []


def test_paths_and_uuids() -> None:
    only(
        check(filesystems=[fs(path="var")]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "path"),
        "not absolute",
    )
    only(
        check(filesystems=[fs(device="vdb1")]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "device"),
        "not absolute",
    )
    only(
        check(filesystems=[fs(uuid="1234")]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "uuid"),
        "not a UUID",
    )
    only(
        check(filesystems=[fs(format="vfat", uuid=LINUX_FS)]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "uuid"),
        "vfat",
    )
    assert check(filesystems=[fs(uuid=LINUX_FS, path="/var")]) == []
    assert (
        check(
            filesystems=[
                fs(format="vfat", uuid="1A2B-3C4D"),
                fs(device="/dev/vdb2", format="vfat", uuid="1a2b3c4d"),
            ]
        )
        == []
    )


@pytest.mark.parametrize("fmt", ["swap", "none"])
def test_swap_and_none_are_not_mounted(fmt: str) -> None:
    only(
        check(filesystems=[fs(format=fmt, path="/mnt")]),
        Severity.WARNING,
        ("storage", "filesystems", 0, "path"),
        "is not mounted; its path is ignored",
    )


def test_subvolumes() -> None:
    subs = [
        {"name": "@home", "path": "/home"},
        {"name": "var/log", "path": "/var/log", "mountOptions": ["noatime"]},
    ]
    assert check(filesystems=[fs(format="btrfs", path="/", subvolumes=subs)]) == []
    only(
        check(filesystems=[fs(subvolumes=subs)]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "subvolumes"),
        "only supported on btrfs",
    )
    only(
        check(filesystems=[fs(format="btrfs", subvolumes=[{"name": "../x"}])]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "subvolumes", 0, "name"),
        "relative path",
    )
    only(
        check(filesystems=[fs(format="btrfs", subvolumes=[{"name": "a"}, {"name": "a"}])]),
        Severity.ERROR,
        ("storage", "filesystems", 0, "subvolumes", 1, "name"),
        "duplicate subvolume name",
    )


def test_duplicate_devices_and_mount_paths() -> None:
    only(
        check(filesystems=[fs(), fs()]),
        Severity.ERROR,
        ("storage", "filesystems", 1, "device"),
        "duplicate filesystem device",
    )
    found = check(
        filesystems=[
            fs(path="/var"),
            fs(device="/dev/vdc", format="btrfs", subvolumes=[{"name": "v", "path": "/var"}]),
        ]
    )
    only(
        found,
        Severity.ERROR,
        ("storage", "filesystems", 1, "subvolumes", 0, "path"),
        "duplicate mount path",
    )


def test_a_filesystem_on_a_partitioned_disk() -> None:
    found = check(disks=[disk({"label": "a"})], filesystems=[fs(device="/dev/vda")])
    only(
        found,
        Severity.ERROR,
        ("storage", "filesystems", 0, "device"),
        "overwrites partitioned device",
    )
    found = check(
        disks=[{"device": "/dev/vda", "wipeTable": True}], filesystems=[fs(device="/dev/vda")]
    )
    only(found, Severity.WARNING, ("storage", "filesystems", 0, "device"), "will be wiped")
    assert (
        check(
            disks=[{"device": "/dev/vda", "wipeTable": True}],
            filesystems=[fs(device="/dev/vda", wipeFilesystem=True)],
        )
        == []
    )
