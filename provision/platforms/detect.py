"""Work out which platform this machine runs on, and say why.

Evidence comes only from local files: the kernel command line, DMI and
/sys/hypervisor, filesystem labels and the QEMU fw_cfg directory. Nothing
here opens a socket, so a machine without evidence for a cloud never waits
on that cloud's metadata timeout. Each piece of evidence has a strength; the
strongest wins, and ties go to the first found (command line, fw_cfg, DMI of
a specific cloud, labels, generic hypervisor DMI).

DMI rules for the HTTP clouds live in their datasources/*.json entries; the
rules for the local platforms are in :data:`LOCAL_RULES` below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provision.platforms.settings import Settings
from provision.platforms.systree import labelled_devices, machine_facts

EXPLICIT = 100  # provision.platform= or --platform
CMDLINE_SOURCE = 90  # provision.config.url=, provision.config.device=, ds=nocloud
FW_CFG = 80  # our own fw_cfg entry is present: the host meant it for us
CLOUD_DMI = 60
LABEL = 50
HYPERVISOR_DMI = 10  # a plain QEMU/KVM VM says little about where the config is

FW_CFG_NAME = "opt/org.provision/config"
IGNITION_FW_CFG_NAME = "opt/com.coreos/config"  # Ignition's key: existing VM definitions work
FW_CFG_NAMES = (FW_CFG_NAME, IGNITION_FW_CFG_NAME)  # ours first
FW_CFG_ROOT = "/sys/firmware/qemu_fw_cfg"

CONFIG_DRIVE_LABELS = ("config-2", "CONFIG-2")
CIDATA_LABELS = ("cidata", "CIDATA")

# VMware's DMI names the platform outright; QEMU's only says "some VM".
VMWARE_RULES: Mapping[str, list[dict[str, str]]] = {
    "vmware": [
        {"field": "product_name", "contains": "VMware"},
        {"field": "sys_vendor", "equals": "VMware, Inc."},
    ],
}
# Platforms with code of their own that name themselves in DMI. Nutanix's string is
# from public descriptions and unconfirmed on real machines.
NAMED_HYPERVISOR_RULES: Mapping[str, list[dict[str, str]]] = {
    "kubevirt": [{"field": "sys_vendor", "equals": "KubeVirt"}],
    "cloudsigma": [{"field": "product_name", "contains": "CloudSigma"}],
    "smartos": [{"field": "product_name", "prefix": "SmartDC"}],
    "virtualbox": [{"field": "product_name", "equals": "VirtualBox"}],
    "nutanix": [{"field": "sys_vendor", "equals": "Nutanix"}],
}
# Labelled filesystems other than config drives and cidata.
OTHER_LABELS = (("opennebula", ("CONTEXT",)), ("rbxcloud", ("CLOUDMD", "cloudmd")))
# Local sockets a platform's metadata service listens on.
SOCKETS = (("lxd", "/dev/lxd/sock"), ("smartos", "/native/.zonecontrol/metadata.sock"))
QEMU_RULES: Mapping[str, list[dict[str, str]]] = {
    "qemu": [
        {"field": "sys_vendor", "equals": "QEMU"},
        {"field": "product_name", "prefix": "KVM"},
    ],
}


@dataclass(frozen=True)
class Evidence:
    platform: str
    source: str  # where it was seen, e.g. "/sys/class/dmi/id/sys_vendor"
    detail: str  # what was seen, e.g. "'Amazon EC2'"
    strength: int


@dataclass(frozen=True)
class Detection:
    platform: str | None
    evidence: tuple[Evidence, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "evidence": [
                {"platform": e.platform, "source": e.source, "detail": e.detail,
                 "strength": e.strength}
                for e in self.evidence
            ],
        }


def _swapped_uuid(value: str) -> str:
    # Some firmware reports the first three UUID fields little-endian.
    parts = value.split("-")
    if len(parts) != 5 or len(parts[0]) != 8:
        return value
    swap = [bytes.fromhex(p)[::-1].hex() if all(c in "0123456789abcdefABCDEF" for c in p)
            else p for p in parts[:3]]
    return "-".join([*swap, *parts[3:]])


def rule_matches(rule: Mapping[str, str], facts: Mapping[str, str]) -> bool:
    """One detection rule against the machine facts; comparisons ignore case."""
    value = facts.get(rule["field"], "").lower()
    if not value:
        return False
    if "equals" in rule:
        return value == rule["equals"].lower()
    if "prefix" in rule:
        return value.startswith(rule["prefix"].lower())
    if "contains" in rule:
        return rule["contains"].lower() in value
    if "uuid_prefix" in rule:
        prefix = rule["uuid_prefix"].lower()
        return value.startswith(prefix) or _swapped_uuid(value).startswith(prefix)
    raise ValueError(f"detection rule without a comparison: {dict(rule)}")


def _fact_source(field: str) -> str:
    return "/sys/hypervisor/uuid" if field == "hypervisor_uuid" else f"/sys/class/dmi/id/{field}"


def _dmi_evidence(
    rules: Mapping[str, Iterable[Mapping[str, str]]], facts: Mapping[str, str], strength: int
) -> list[Evidence]:
    found = []
    for platform, platform_rules in rules.items():
        for rule in platform_rules:
            if rule_matches(rule, facts):
                field = rule["field"]
                found.append(Evidence(platform, _fact_source(field), repr(facts[field]), strength))
                break
    return found


def _cmdline_evidence(settings: Settings) -> list[Evidence]:
    kernel = settings.kernel
    found = []
    if settings.platform:
        where = ("kernel command line" if settings.platform == kernel.platform
                 else "--config" if settings.config_file else "--platform")
        found.append(Evidence(settings.platform, where, f"platform {settings.platform!r}",
                              EXPLICIT))
    if kernel.config_url:
        found.append(Evidence("metal", "kernel command line", "config URL (*.config.url=...)",
                              CMDLINE_SOURCE))
    if kernel.config_device:
        found.append(Evidence("metal", "kernel command line",
                              f"config device {kernel.config_device}", CMDLINE_SOURCE))
    if kernel.cloud_config_url:
        found.append(Evidence("maas", "kernel command line", "cloud-config-url=...",
                              CMDLINE_SOURCE))
    if kernel.nocloud_named:  # with a seed, or just "look for cidata" (cloud-init's meaning)
        found.append(Evidence("nocloud", "kernel command line",
                              "ds=nocloud;s=..." if kernel.nocloud_seed else "ds=nocloud",
                              CMDLINE_SOURCE))
    return found


def _local_evidence(settings: Settings) -> list[Evidence]:
    found = []
    for name in FW_CFG_NAMES:
        if settings.host_path(f"{FW_CFG_ROOT}/by_name/{name}").is_dir():
            found.append(Evidence("qemu", f"{FW_CFG_ROOT}/by_name/{name}", "present", FW_CFG))
            break
    for platform, path in SOCKETS:
        if settings.host_path(path).is_socket():
            found.append(Evidence(platform, path, "a socket", FW_CFG))
    labelled = (("openstack", CONFIG_DRIVE_LABELS), ("nocloud", CIDATA_LABELS), *OTHER_LABELS)
    devices = labelled_devices(settings, [label for _, labels in labelled for label in labels])
    for platform, labels in labelled:
        label = next((label for label in labels if label in devices), None)
        if label is not None:
            found.append(Evidence(platform, f"filesystem label {label!r}", devices[label], LABEL))
    return found


def http_cloud_rules() -> dict[str, list[Mapping[str, str]]]:
    from provision.platforms.http_cloud import load_entries

    return {name: list(entry.detect) for name, entry in load_entries().items()}


def detect_platform(settings: Settings) -> Detection:
    facts = machine_facts(settings)
    evidence = [
        *_cmdline_evidence(settings),
        *_local_evidence(settings),
        *_dmi_evidence(http_cloud_rules(), facts, CLOUD_DMI),
        *_dmi_evidence(VMWARE_RULES, facts, CLOUD_DMI),
        *_dmi_evidence(NAMED_HYPERVISOR_RULES, facts, CLOUD_DMI),
        *_dmi_evidence(QEMU_RULES, facts, HYPERVISOR_DMI),
    ]
    evidence.sort(key=lambda e: -e.strength)  # stable: ties keep discovery order
    return Detection(evidence[0].platform if evidence else None, tuple(evidence))
