"""coreos/ignition's LUKS blackbox tests, ported as data, run in one QEMU boot (TCG).

The data is tests/data/ignition-blackbox/luks.yaml. This machine's kernel has
no dm-crypt, so every case runs inside one guest: each gets Ignition's base
disk (laid out here with sgdisk and mkfs) as a virtio disk of its own, and
the guest's init — a script appended to the clevis initramfs, booted with
rdinit= — runs ``provision apply`` once per case with the case's config on a
root of its own, with a software TPM2 (swtpm) attached. The script prints
what each apply said and left in its root, and reopens each volume it made
independently of provision (cryptsetup with the key the root keeps, or
clevis through the TPM). Back on the host, each disk is read with sfdisk,
blkid and cryptsetup (LUKS headers need no dm-crypt): the table and
filesystems Ignition's test expects, and the volume's header and key.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.vm import guest
from tests.vm.conftest import VmEnv
from tests.vm.guest import record_timings, swtpm

pytestmark = [pytest.mark.vm, pytest.mark.root, pytest.mark.slow]

CASES: list[dict[str, Any]] = yaml.safe_load(
    (guest.CHECKOUT / "tests/data/ignition-blackbox/luks.yaml").read_text())
BOOT_TIMEOUT = 420
DISK_MIB = 400  # Ignition's base disk: three 128 MiB partitions from MiB 2
MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "vfat": ["mkfs.vfat"]}
MARKER = "LUKS-BBOX"
# cryptsetup's default KDF (argon2id, tuned to take 2 s, with up to half the
# guest's memory) costs some 15 s per key slot operation under TCG; a cheap
# one keeps the boot short. Only speed changes: provision passes `options`
# through to luksFormat (the key slot clevis adds is pbkdf2 anyway).
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
OWN_RECORDS = "/etc/.provision/"  # provision's record of the attempt, not part of the machine

if not (shutil.which("swtpm") and shutil.which("clevis") and shutil.which("cryptsetup")):
    pytestmark.append(pytest.mark.skip(reason="needs swtpm, clevis and cryptsetup (scripts/system-packages.txt)"))

GUEST_HEAD = f"""#!/bin/sh
# The guest's init: apply each case's config to its own root and disk, report, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mkdir -p /run/cryptsetup
# What an initramfs' init sets up and devtmpfs lacks: clevis' bash needs /dev/fd.
ln -s /proc/self/fd /dev/fd
say() {{ echo "{MARKER} $*"; }}
uptime_s() {{ cut -d' ' -f1 /proc/uptime; }}
for m in virtio_pci virtio_blk ext4 dm_crypt xts algif_skcipher; do modprobe "$m" || say "- modprobe $m failed"; done
# apply_case INDEX: provision apply /bbox/INDEX.ign to /tmp/root-INDEX; print status, stderr, nodes.
apply_case() {{
  root=/tmp/root-$1; mkdir -p "$root/etc"
  start=$(uptime_s)
  PROVISION_STATE_DIR=/run/state-$1 python3 -I -S /usr/lib/provision/provision.pyz \\
    apply --root "$root" "/bbox/$1.ign" >"/tmp/out-$1" 2>"/tmp/err-$1"
  say "$1 status $?"
  say "$1 seconds $(awk -v a="$start" -v b="$(uptime_s)" 'BEGIN {{ printf "%.1f", b - a }}')"
  say "$1 stdout $(base64 -w0 < "/tmp/out-$1")"
  say "$1 stderr $(base64 -w0 < "/tmp/err-$1")"
  find "$root" -mindepth 1 | sort | while read -r node; do
    if [ -f "$node" ]; then say "$1 file ${{node#"$root"}} $(stat -c %a "$node") $(base64 -w0 < "$node")"
    else say "$1 node ${{node#"$root"}}"; fi
  done
}}
# mapped INDEX NAME: is /dev/mapper/NAME open (provision leaves it so, as Ignition does)? Close it.
mapped() {{
  if [ -b "/dev/mapper/$2" ]; then say "$1 mapped"; cryptsetup close "$2" || say "$1 close failed"; fi
}}
# reopened INDEX NAME: the volume opened again, by other means than provision's.
reopened() {{
  if [ -b "/dev/mapper/$2" ]; then say "$1 reopened"; cryptsetup close "$2"; fi
}}
"""

GUEST_TAIL = """say "done"
sync
busybox poweroff -f || echo o > /proc/sysrq-trigger
sleep 10
"""


@dataclass
class Case:
    index: int
    data: dict[str, Any]
    image: Path
    device: str  # the guest's name for the case's disk
    names: dict[str, str]  # $uuidN -> the UUID standing in for it
    digest: str = ""  # sha256 of the image before the boot
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def mapper(self) -> str:
        return self.names["1"]

    def node(self, number: int) -> str:
        return f"{self.device}{number}"


def _writable_loop(image: Path, start: int, size: int) -> str:
    return subprocess.run(["losetup", "--find", "--show", "--offset", str(start * 512),
                           "--sizelimit", str(size * 512), str(image)],
                          check=True, capture_output=True, text=True).stdout.strip()


def lay_out(image: Path, partitions: list[dict[str, Any]]) -> None:
    """Ignition's starting disk: the partitions with sgdisk, then their filesystems."""
    guest.blank_disk(image, DISK_MIB)
    args = ["sgdisk", "--clear"]
    for part in partitions:
        n, start = part["number"], part["start"]
        args += [f"--new={n}:{start}:{start + part['size'] - 1}", f"--typecode={n}:{part['type']}",
                 f"--change-name={n}:{part['label']}"]
    subprocess.run([*args, str(image)], check=True, capture_output=True)
    for part in partitions:
        device = _writable_loop(image, part["start"], part["size"])
        try:
            subprocess.run([*MKFS[part["fs"]], device], check=True, capture_output=True)
        finally:
            subprocess.run(["losetup", "-d", device], check=False, capture_output=True)


def table(image: Path) -> dict[int, dict[str, Any]]:
    """The GPT as sfdisk reads it: number -> label, start, size (sectors) and type GUID."""
    done = subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True, check=True)
    found = {}
    for entry in json.loads(done.stdout)["partitiontable"]["partitions"]:
        number = int(re.search(r"(\d+)$", entry["node"]).group(1))  # type: ignore[union-attr]
        found[number] = {"label": entry.get("name", ""), "start": entry["start"], "size": entry["size"],
                         "type": entry["type"].upper()}
    return found


def guest_config(case: Case) -> bytes:
    """The case's config with Ignition's variables filled in for the guest, and a fast KDF."""
    config = json.loads(json.dumps(case.data["config"]))
    for volume in config["storage"]["luks"]:
        volume["options"] = [*volume.get("options", []), *FAST_KDF]
    text = json.dumps({"ignition": {"version": case.data["version"]}, **config})
    text = re.sub(r"\$disk0p(\d+)", lambda m: case.node(int(m.group(1))), text)
    text = re.sub(r"\$uuid(\d+)", lambda m: case.names[m.group(1)], text)
    assert "$" not in text, text
    return text.encode()


def guest_steps(case: Case) -> str:
    """The shell lines that run one case in the guest."""
    i, name = case.index, case.mapper
    lines = [f"apply_case {i}", f"mapped {i} {name}"]
    volume = case.data.get("volume")
    if volume is not None:
        device = case.node(volume["partition"])
        if volume["opens_with"] == "keyfile":
            lines.append(f'cryptsetup open --key-file "/tmp/root-{i}/etc/luks/{name}" {device} {name} '
                         f'|| say "{i} reopen failed"')
        else:  # tpm2: the clevis binding, through the TPM
            lines.append(f'clevis luks unlock -d {device} -n {name} || say "{i} reopen failed"')
        lines.append(f"reopened {i} {name}")
    return "\n".join(lines) + "\n"


def parse_report(console: str) -> dict[int, dict[str, Any]]:
    reports: dict[int, dict[str, Any]] = {}
    for line in console.splitlines():
        words = line.strip().split(" ")
        if words[0] != MARKER or len(words) < 3 or not words[1].isdigit():
            continue
        report = reports.setdefault(int(words[1]), {"files": {}, "nodes": [], "events": []})
        kind, rest = words[2], words[3:]
        if kind == "status":
            report["status"] = int(rest[0])
        elif kind == "seconds":
            report["seconds"] = float(rest[0])
        elif kind in ("stdout", "stderr"):
            report[kind] = base64.b64decode(rest[0] if rest else "").decode(errors="replace")
        elif kind == "file":
            report["files"][rest[0]] = (int(rest[1], 8), base64.b64decode(rest[2] if len(rest) > 2 else ""))
        elif kind == "node":
            report["nodes"].append(rest[0])
        else:
            report["events"].append(" ".join([kind, *rest]))
    return reports


@pytest.fixture(scope="module")
def luks_boot(vm_env: VmEnv, clevis_initrd: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[guest.Boot, list[Case]]:
    work = tmp_path_factory.mktemp("luks-bbox")
    started = time.monotonic()
    cases = []
    made: dict[str, Path] = {}  # a layout made once is copied (mkfs is the slow part)
    for index, data in enumerate(CASES):
        image = work / f"case{index}.img"
        layout = json.dumps(data["in"], sort_keys=True)
        if layout in made:
            subprocess.run(["cp", "--sparse=always", str(made[layout]), str(image)], check=True)
        else:
            lay_out(image, data["in"])
            made[layout] = image
        names = {n: str(uuid.uuid4()) for n in sorted(set(re.findall(r"\$uuid(\d+)", json.dumps(data["config"]))))}
        cases.append(Case(index, data, image, f"/dev/vd{chr(ord('b') + index)}", names, guest.sha256_file(image)))
    script = GUEST_HEAD + "".join(guest_steps(c) for c in cases) + GUEST_TAIL
    files = {"/provision-bbox": script.encode()} | {f"/bbox/{c.index}.ign": guest_config(c) for c in cases}
    initrd = guest.with_files(clevis_initrd, work / "initrd-bbox.img", files)
    root = guest.build_root_image(work / "root.img")
    host_seconds = time.monotonic() - started
    with swtpm(work / "tpm") as tpm_args:
        vm = guest.Vm(vm_env.kernel, initrd, [root, *(c.image for c in cases)], "rdinit=/provision-bbox panic=-1",
                      extra=tpm_args)
        boot = vm.boot(work / "serial.log", timeout=BOOT_TIMEOUT, stop_on=[f"{MARKER} done"])
    reports = parse_report(boot.console)
    for case in cases:
        case.report = reports.get(case.index, {})
    record_timings("Ignition's LUKS blackbox cases: 3 applies in one boot (swtpm)", boot,
                   apply_seconds={c.data["name"]: c.report.get("seconds") for c in cases},
                   disk_layout_seconds=round(host_seconds, 1))
    return boot, cases


def luks_dump(image: Path, start: int, size: int) -> dict[str, Any]:
    with guest.loop_device(image, guest.Partition(0, "", start * 512, size * 512)) as device:
        done = subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", device],
                              capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def opens_with_key(image: Path, start: int, size: int, key: bytes, tmp: Path) -> bool:
    key_file = tmp / "key"
    key_file.write_bytes(key)
    with guest.loop_device(image, guest.Partition(0, "", start * 512, size * 512)) as device:
        done = subprocess.run(["cryptsetup", "open", "--test-passphrase", "--key-file", str(key_file), device],
                              capture_output=True)
    return done.returncode == 0


def check_disk(case: Case) -> None:
    """Ignition's expectation: the table as `out` says, each filesystem of the type it says."""
    found = table(case.image)
    expected = case.data["out"]
    assert sorted(found) == sorted(p["number"] for p in expected), found
    for part in expected:
        got = found[part["number"]]
        assert (got["label"], got["start"], got["size"], got["type"]) == (
            part["label"], part["start"], part["size"], part["type"].upper()), (part, got)
        with guest.loop_device(case.image, guest.Partition(0, "", got["start"] * 512, got["size"] * 512)) as dev:
            probed = guest.probe(dev)
        assert probed.get("TYPE") == part["fs"], (part["number"], probed)
        if part["fs"] == "crypto_LUKS":
            assert probed.get("VERSION") == "2", probed


def check_volume(case: Case, tmp: Path) -> None:
    """Beyond Ignition's test: the header, the key, what the root keeps, the reopening."""
    volume, report, name = case.data["volume"], case.report, case.mapper
    part = table(case.image)[volume["partition"]]
    header = luks_dump(case.image, part["start"], part["size"])
    uuid_ = subprocess.run(["blkid", "-p", "-s", "UUID", "-o", "value", "--offset", str(part["start"] * 512),
                            "--size", str(part["size"] * 512), str(case.image)],
                           capture_output=True, text=True).stdout.strip()
    crypttab = report["files"].get("/etc/crypttab", (0, b""))[1].decode()
    tokens = list(header["tokens"].values())
    if volume["opens_with"] == "keyfile":
        key = volume["key"].encode()
        assert opens_with_key(case.image, part["start"], part["size"], key, tmp), "the config's key does not open it"
        assert not opens_with_key(case.image, part["start"], part["size"], b"not the key", tmp)
        assert (len(header["keyslots"]), tokens) == (1, []), header
        assert report["files"].get(f"/etc/luks/{name}") == (0o400, key), report["files"]
        assert crypttab.split() == [name, f"UUID={uuid_}", f"/etc/luks/{name}", "luks"], crypttab
    else:  # tpm2: bound with clevis, the random provisioning key gone, nothing kept in the root
        assert len(header["keyslots"]) == 1, header
        assert [t["type"] for t in tokens] == ["clevis"], tokens
        with guest.loop_device(case.image, guest.Partition(0, "", part["start"] * 512, part["size"] * 512)) as dev:
            listed = subprocess.run(["clevis", "luks", "list", "-d", dev], capture_output=True, text=True).stdout
        assert re.search(r'^\d+: sss .*"tpm2"', listed, re.M), listed
        assert f"/etc/luks/{name}" not in report["files"], report["files"]
        assert crypttab.split() == [name, f"UUID={uuid_}", "none", "luks"], crypttab
    assert "mapped" in report["events"] and "reopened" in report["events"], report["events"]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_ignition_luks_case(index: int, luks_boot: tuple[guest.Boot, list[Case]], tmp_path: Path) -> None:
    boot, cases = luks_boot
    case = cases[index]
    report = case.report
    assert f"{MARKER} done" in boot.console and "status" in report, (
        f"the guest did not finish the cases ({boot.stopped_at}):\n{boot.console[-6000:]}")
    assert not [e for e in report["events"] if "failed" in e], (report["events"], report.get("stderr"))
    assert f"{MARKER} - " not in boot.console, boot.console[-6000:]  # the guest's own set-up failed
    if case.data.get("expect") == "fails":
        assert report["status"] != 0, report
        assert case.data["error"] in report["stderr"], report["stderr"]
        assert "mapped" not in report["events"]
        assert guest.sha256_file(case.image) == case.digest, "a failed apply changed the disk"
        changed = [p for p in [*report["files"], *report["nodes"]] if not (p + "/").startswith(OWN_RECORDS)
                   and p != "/etc"]
        assert changed == [], f"a failed apply changed the root: {changed}"
        check_disk(case)
        return
    assert report["status"] == 0, report.get("stderr")
    check_disk(case)
    check_volume(case, tmp_path)
