"""Fixtures for the VM tests: one initramfs for the session, fresh disks per boot."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vm import guest

# Timings collected by the boots (guest.record_timings), printed at the end and
# written next to the session's temporary files (docs/performance.md quotes them).
TIMINGS = guest.TIMINGS


@dataclass(frozen=True)
class VmEnv:
    kernel: Path
    initrd: Path
    workdir: Path

    def vm(self, disks: list[Path], cmdline: str, **kwargs: object) -> guest.Vm:
        return guest.Vm(self.kernel, self.initrd, disks, cmdline, **kwargs)  # type: ignore[arg-type]


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (loop devices, mkinitramfs)"
    for tool in ("qemu-system-x86_64", "qemu-img", "mkinitramfs", "mkfs.ext4", "xorriso",
                 "sgdisk", "losetup", "busybox"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (scripts/system-packages.txt)"
    if guest.kernel_version() is None:
        return "no kernel in /boot (apt-get install linux-image-amd64)"
    return None


@pytest.fixture(scope="session")
def vm_env(tmp_path_factory: pytest.TempPathFactory) -> VmEnv:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    kver = guest.kernel_version()
    assert kver is not None
    workdir = tmp_path_factory.mktemp("vm")
    initrd = guest.build_initramfs(workdir / "initrd.img", workdir, kver)
    return VmEnv(Path(f"/boot/vmlinuz-{kver}"), initrd, workdir)


@pytest.fixture(scope="session")
def clevis_initrd(vm_env: VmEnv) -> Path:
    """The hooks' initramfs with LUKS and clevis (TPM2, Tang) tooling; built once, for
    the tests that bind volumes (test_boot_clevis, the Ignition LUKS blackbox cases)."""
    kver = guest.kernel_version()
    assert kver is not None
    return guest.build_initramfs(vm_env.workdir / "initrd-clevis.img", vm_env.workdir, kver,
                                 env={"PROVISION_DISK_FEATURES": "ext4 luks clevis"})


@pytest.fixture
def fresh_disks(tmp_path: Path) -> tuple[Path, Path]:
    """The test image: a root filesystem on vda and a blank 64 MiB vdb."""
    return guest.build_root_image(tmp_path / "root.img"), guest.blank_disk(tmp_path / "data.img", 64)


@pytest.fixture(scope="session", autouse=True)
def _write_timings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    if TIMINGS:
        out = Path(os.environ.get("PROVISION_VM_TIMINGS", tmp_path_factory.getbasetemp() / "vm-timings.json"))
        out.write_text(json.dumps(TIMINGS, indent=2, sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("VM boot timings (TCG)")
        for name, values in sorted(TIMINGS.items()):
            terminalreporter.write_line(f"{name}: {json.dumps(values, sort_keys=True)}")
