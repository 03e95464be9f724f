"""Helpers for the VM tests: the guest's disks, the initramfs, and QEMU itself.

The guest boots Debian's distribution kernel with an initramfs built by
mkinitramfs with our hooks, from a small prebuilt root filesystem (busybox
and an /sbin/init that reports the uptime and powers off) on /dev/vda, plus
blank disks for the config to partition. QEMU runs under TCG with a hard
timeout and is always killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
INIT_MARKER = "GUEST-INIT: reached the root filesystem"
FW_CFG_NAME = "opt/org.provision/config"

GUEST_INIT = f"""#!/bin/sh
# The whole "operating system" of the test image: say we got here, power off.
/bin/busybox mount -t proc proc /proc 2>/dev/null
echo "{INIT_MARKER}, uptime $(/bin/busybox cut -d' ' -f1 /proc/uptime) s"
/bin/busybox sync
/bin/busybox poweroff -f
"""

INITRAMFS_CONF = """\
MODULES=list
BUSYBOX=y
KEYMAP=n
COMPRESS=zstd
DEVICE=
NFSROOT=auto
RUNSIZE=10%
FSTYPE=auto
"""
# Drivers for the guest's virtio disks and NIC; the hooks add the rest.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ext4")


def kernel_version() -> str | None:
    """The newest installed kernel with an image in /boot, or None."""
    found = sorted(p.name.removeprefix("vmlinuz-") for p in Path("/boot").glob("vmlinuz-*"))
    return found[-1] if found else None


def build_root_image(path: Path, size_mib: int = 48, extra_files: dict[str, Path] | None = None) -> Path:
    """An ext4 image (no partition table) with busybox and the reporting /sbin/init.

    ``extra_files`` maps a path in the image to a host file copied there.
    """
    staging = path.with_suffix(".tree")
    shutil.rmtree(staging, ignore_errors=True)
    for d in ("bin", "sbin", "etc/systemd/system", "proc", "sys", "dev", "run", "tmp",
              "home", "root", "var/lib", "boot"):
        (staging / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", staging / "bin/busybox")
    (staging / "bin/sh").symlink_to("busybox")
    init = staging / "sbin/init"
    init.write_text(GUEST_INIT)
    init.chmod(0o755)
    etc = staging / "etc"
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nusers:x:100:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nusers:*::\n")
    (etc / "shadow").chmod(0o640)
    (etc / "gshadow").chmod(0o640)
    (etc / "hostname").write_text("image\n")
    (etc / "os-release").write_text('NAME="provision test image"\nID=provision-test\n')
    for inside, host in (extra_files or {}).items():
        (staging / inside.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(host, staging / inside.lstrip("/"))
    path.unlink(missing_ok=True)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(staging), str(path), f"{size_mib}M"],
        check=True, capture_output=True,
    )
    shutil.rmtree(staging)
    return path


def blank_disk(path: Path, size_mib: int) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(path), f"{size_mib}M"], check=True)
    return path


def config_drive(path: Path, user_data: bytes) -> Path:
    """An OpenStack config drive: iso9660 labelled config-2 with openstack/latest/user_data."""
    tree = path.with_suffix(".tree")
    shutil.rmtree(tree, ignore_errors=True)
    latest = tree / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "user_data").write_bytes(user_data)
    (latest / "meta_data.json").write_text(
        '{"uuid": "7d3c6a4e-7a28-4c8f-9f49-3c1f2d6a8b10", "hostname": "vm-configdrive"}\n')
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-r", "-o", str(path), str(tree)],
        check=True, capture_output=True,
    )
    shutil.rmtree(tree)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


ALL_HOOKS = ("provision", "provision-disks")


def build_initramfs(out: Path, workdir: Path, kver: str, *, hooks: Sequence[str] = ALL_HOOKS,
                    env: dict[str, str] | None = None) -> Path:
    """mkinitramfs into ``out`` from a private conf dir, with ``hooks`` (names in
    initramfs-hook/initramfs-tools/hooks) and our boot scripts installed by install.sh."""
    conf = workdir / ("conf-" + ("-".join(hooks) or "plain"))
    shutil.rmtree(conf, ignore_errors=True)
    (conf / "conf.d").mkdir(parents=True)
    (conf / "hooks").mkdir()
    (conf / "scripts").mkdir()
    (conf / "initramfs.conf").write_text(INITRAMFS_CONF)
    (conf / "modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
    full_env = dict(os.environ)
    if hooks:
        dest = install_hooks(workdir / "destdir")
        share = dest / "usr/share/initramfs-tools"
        for hook in hooks:
            shutil.copy2(share / "hooks" / hook, conf / "hooks" / hook)
        shutil.copytree(share / "scripts", conf / "scripts", dirs_exist_ok=True)
        full_env["PROVISION_BUNDLE"] = str(dest / "usr/lib/provision/initramfs")
        full_env["PROVISION_HOOK_LIB"] = str(share / "provision")
    full_env.update(env or {})
    subprocess.run(["mkinitramfs", "-d", str(conf), "-o", str(out), kver],
                   check=True, capture_output=True, env=full_env)
    return out


def initramfs_with_files(initrd: Path, files: dict[str, Path], out: Path) -> Path:
    """``initrd`` with ``files`` (path inside -> host file) added: a small
    uncompressed cpio archive in front of it, which the kernel unpacks first,
    as it does Debian's early microcode archive. For a file the hooks would
    copy from the image, without rebuilding the initramfs."""
    tree = out.with_suffix(".tree")
    shutil.rmtree(tree, ignore_errors=True)
    for inside, host in files.items():
        (tree / inside).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(host, tree / inside)
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    archive = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree,
                             input=("\n".join(names) + "\n").encode(), capture_output=True,
                             check=True).stdout
    shutil.rmtree(tree)
    padding = b"\0" * (-len(archive) % 512)  # the next archive starts aligned
    out.write_bytes(archive + padding + initrd.read_bytes())
    return out


def dracut_has_networkd() -> bool:
    """dracut's systemd-networkd module (Debian: dracut-network) is installed."""
    return any(Path("/usr/lib/dracut/modules.d").glob("*systemd-networkd"))


def build_dracut_initramfs(out: Path, workdir: Path, kver: str) -> Path:
    """dracut (systemd in the initrd) with our module, from a private copy of
    /usr/lib/dracut so the machine's own dracut setup is not touched."""
    dest = install_hooks(workdir / "destdir")
    base = workdir / "dracut-base"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree("/usr/lib/dracut", base, symlinks=True)
    shutil.copytree(dest / "usr/lib/dracut/modules.d/30provision", base / "modules.d/30provision")
    env = {**os.environ, "dracutbasedir": str(base),
           "PROVISION_BUNDLE": str(dest / "usr/lib/provision/initramfs")}
    modules = "systemd-initrd dracut-systemd kernel-modules rootfs-block udev-rules provision"
    if dracut_has_networkd():
        modules += " systemd-networkd"
    subprocess.run(
        ["dracut", "--force", "--quiet", "--no-hostonly", "--kver", kver, "--compress", "zstd",
         "--modules", modules,
         "--add-drivers", " ".join(INITRAMFS_MODULES), str(out)],
        check=True, capture_output=True, env=env,
    )
    return out


def install_hooks(destdir: Path) -> Path:
    """Run initramfs-hook/install.sh into ``destdir`` once (it builds the bundle)."""
    if not (destdir / "usr/lib/provision/initramfs/provision.pyz").exists():
        subprocess.run(
            ["sh", str(CHECKOUT / "initramfs-hook/install.sh"), "--python", str(_build_python())],
            check=True, capture_output=True, env={**os.environ, "DESTDIR": str(destdir)},
        )
    return destdir


def _build_python() -> Path:
    """The interpreter with provision's dependencies: the one running the tests."""
    import sys

    return Path(sys.executable)


# Timings of the boots in this session, by name (tests/vm/conftest.py writes them out).
TIMINGS: dict[str, dict[str, object]] = {}


def record_timings(name: str, boot: Boot, **extra: object) -> None:
    TIMINGS[name] = {
        "boot_to_root_seconds": boot.uptime_at(INIT_MARKER),
        "engine_seconds_per_stage": boot.stage_timings(),
        "process_seconds": boot.process_timings(),
        "qemu_wall_seconds": round(boot.seconds, 1),
        "accelerator": "tcg",
        **extra,
    }


@dataclass
class Boot:
    """What one boot produced."""

    status: int | None  # QEMU's exit status; None when we killed it
    console: str
    seconds: float
    stopped_at: str | None = None  # the marker that made us stop it

    def uptime_at(self, pattern: str) -> float | None:
        match = re.search(pattern + r".*?uptime ([0-9.]+)", self.console)
        return float(match.group(1)) if match else None

    def stage_timings(self) -> dict[str, float]:
        """Engine time per stage, from `provision: timing: stage=S seconds=N` lines."""
        return {m.group(1): float(m.group(2)) for m in
                re.finditer(r"provision: timing: stage=(\S+) seconds=([0-9.]+)", self.console)}

    def process_timings(self) -> dict[str, float]:
        """Wall time per stage process (interpreter start-up included), from the boot script."""
        return {m.group(1): float(m.group(2)) for m in
                re.finditer(r"provision: timing: stages=(\S+) process-seconds=([0-9.]+)", self.console)}


@dataclass
class Vm:
    kernel: Path
    initrd: Path
    disks: Sequence[Path] = ()
    cmdline: str = ""
    fw_cfg: Path | None = None
    fw_cfg_name: str = FW_CFG_NAME  # or Ignition's opt/com.coreos/config
    imds_port: int | None = None  # forward 169.254.169.254:80 to this loopback port
    ssh_port: int | None = None  # forward 127.0.0.1:ssh_port on the host to the guest's port 22
    memory_mib: int = 768
    extra: list[str] = field(default_factory=list)
    # UEFI firmware to boot the first disk with (its boot loader picks kernel,
    # initramfs and command line); None: QEMU loads kernel and initrd itself.
    firmware: Path | None = None
    # Let the guest reboot in place (a boot loader then boots it again); by
    # default a reboot ends QEMU.
    allow_reboot: bool = False
    # Accept typing on the serial console (Running.type): the console is a Unix
    # socket QEMU serves next to the serial log, which still records everything.
    console_input: bool = False

    def argv(self, serial: Path) -> list[str]:
        argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-m", str(self.memory_mib), "-smp", "1",
            "-nodefaults", "-nographic", "-display", "none", "-monitor", "none",
        ]
        if self.console_input:
            # wait=off: QEMU starts without a client; output nobody reads is
            # dropped from the socket but always written to the log file.
            argv += ["-chardev", f"socket,id=console0,path={console_socket(serial)},server=on,wait=off,"
                                 f"logfile={serial}",
                     "-serial", "chardev:console0"]
        else:
            argv += ["-serial", f"file:{serial}"]
        if not self.allow_reboot:
            argv.append("-no-reboot")
        if self.firmware is not None:
            argv += ["-bios", str(self.firmware)]
        else:
            argv += [
                "-kernel", str(self.kernel), "-initrd", str(self.initrd),
                "-append", self.cmdline if "console=" in self.cmdline else f"console=ttyS0 {self.cmdline}".strip(),
            ]
        for disk in self.disks:
            ro = ",readonly=on" if disk.suffix == ".iso" else ""
            argv += ["-drive", f"file={disk},format=raw,if=virtio{ro}"]
        if self.fw_cfg is not None:
            argv += ["-fw_cfg", f"name={self.fw_cfg_name},file={self.fw_cfg}"]
        netdev = []
        if self.imds_port is not None:
            # guestfwd needs the address inside the user network, hence a
            # link-local network like a cloud's.
            relay = f"{CHECKOUT / 'tests/vm/tcp_relay.py'}"
            netdev += [
                "net=169.254.0.0/16,host=169.254.0.2,dhcpstart=169.254.0.15",
                f"guestfwd=tcp:169.254.169.254:80-cmd:python3 {relay} 127.0.0.1 {self.imds_port}",
            ]
        if self.ssh_port is not None:
            netdev.append(f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22")
        if netdev:
            # restrict=on: the guest reaches nothing but the forwarded addresses.
            argv += ["-netdev", ",".join(["user,id=n0,restrict=on", *netdev]),
                     "-device", "virtio-net-pci,netdev=n0"]
        return argv + self.extra

    def boot(self, serial: Path, *, timeout: float = 300, stop_on: Sequence[str] = ()) -> Boot:
        """Boot until QEMU exits (the guest powers off), a ``stop_on`` regex shows on the
        console, or ``timeout``; QEMU is killed in every case but the first."""
        serial.unlink(missing_ok=True)
        started = time.monotonic()
        proc = subprocess.Popen(self.argv(serial), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        stopped_at = None
        try:
            while True:
                try:
                    proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                text = _read(serial)
                hit = next((p for p in stop_on if re.search(p, text)), None)
                if hit is not None:
                    stopped_at = hit
                    time.sleep(1)  # let the console finish the lines around it
                    break
                if time.monotonic() - started > timeout:
                    stopped_at = "timeout"
                    break
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        console = _read(serial)
        if output.strip():
            console += "\n[qemu] " + output
        status = None if stopped_at else proc.returncode
        return Boot(status, console, time.monotonic() - started, stopped_at)


    @contextlib.contextmanager
    def running(self, serial: Path, *, timeout: float = 300) -> Iterator[Running]:
        """QEMU in the background, for tests that talk to the guest while it runs
        (SSH). Killed on leaving the block unless it exited by itself."""
        serial.unlink(missing_ok=True)
        proc = subprocess.Popen(self.argv(serial), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        vm = Running(proc, serial, time.monotonic(), timeout,
                     console_socket(serial) if self.console_input else None)
        try:
            yield vm
        finally:
            vm.kill()


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    serial: Path
    started: float
    timeout: float  # for the whole boot: every wait ends by then
    console_input: Path | None = None  # the serial console's socket (Vm.console_input)
    _keyboard: _ConsoleKeyboard | None = field(default=None, repr=False)

    @property
    def console(self) -> str:
        return _read(self.serial)

    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    def wait_for(self, pattern: str, start: int = 0) -> re.Match[str] | None:
        """The first match of ``pattern`` on the console from offset ``start`` (a later
        boot of the same QEMU); None if QEMU exits or time runs out."""
        regex = re.compile(pattern)
        while self.remaining() > 0:
            match = regex.search(self.console, start)
            if match:
                return match
            if self.proc.poll() is not None:
                return regex.search(self.console, start)
            time.sleep(0.5)
        return None

    def type(self, text: str) -> None:
        """Type ``text`` on the serial console, as someone at the machine would."""
        if self._keyboard is None:
            self._keyboard = _ConsoleKeyboard(self.console_input)
        self._keyboard.send(text.encode())

    def wait_exit(self) -> int | None:
        """QEMU's exit status (the guest powered off or rebooted), or None on timeout."""
        try:
            return self.proc.wait(timeout=max(self.remaining(), 0.1))
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._keyboard is not None:
            self._keyboard.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def result(self) -> Boot:
        """What the boot produced so far (QEMU's status None while it still runs)."""
        seconds = time.monotonic() - self.started
        return Boot(self.proc.poll(), self.console, seconds, None)


class _ConsoleKeyboard:
    """A connection to the serial console's socket, kept until the VM ends.

    QEMU hands the guest's UART a few bytes at a time and drops what it has
    not read yet when the client hangs up, so the connection stays open; the
    console's output also flows to it (the log file keeps its own copy) and
    is read and discarded here, or QEMU would stall the guest once the
    socket's buffer is full.
    """

    def __init__(self, path: Path | None) -> None:
        assert path is not None, "a Vm with console_input=True"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.reader = threading.Thread(target=self._discard_output, daemon=True)
        self.reader.start()

    def _discard_output(self) -> None:
        with contextlib.suppress(OSError):
            while self.sock.recv(65536):
                pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.reader.join(timeout=5)


def console_socket(serial: Path) -> Path:
    path = serial.with_name(serial.name + ".sock")
    assert len(str(path)) < 100, f"{path}: too long for a Unix socket"  # sun_path is 108 bytes
    return path


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class Partition:
    number: int
    name: str
    start: int  # bytes
    size: int  # bytes


def partitions(image: Path) -> list[Partition]:
    """The GPT partitions of a disk image (read with sfdisk, no loop device)."""
    import json

    done = subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True, check=True)
    table = json.loads(done.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    found = []
    for entry in table["partitions"]:
        number = int(re.search(r"(\d+)$", entry["node"]).group(1))  # type: ignore[union-attr]
        found.append(Partition(number, entry.get("name", ""), entry["start"] * sector,
                               entry["size"] * sector))
    return found


@contextlib.contextmanager
def loop_device(image: Path, part: Partition | None = None) -> Iterator[str]:
    """A read-only loop device for the image or one of its partitions (detached afterwards)."""
    argv = ["losetup", "--find", "--show", "--read-only"]
    if part is not None:
        argv += ["--offset", str(part.start), "--sizelimit", str(part.size)]
    device = subprocess.run([*argv, str(image)], check=True, capture_output=True,
                            text=True).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], check=False, capture_output=True)


def probe(device: str) -> dict[str, str]:
    """blkid's view of a device: TYPE, LABEL, UUID..."""
    done = subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True, text=True)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@contextlib.contextmanager
def mounted(image: Path, mount_point: Path, part: Partition | None = None) -> Iterator[Path]:
    """The filesystem (read-only, journal not replayed) on an image or partition."""
    with loop_device(image, part) as device:
        mount_point.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-o", "ro,noload", device, str(mount_point)], check=True,
                       capture_output=True)
        try:
            yield mount_point
        finally:
            subprocess.run(["umount", str(mount_point)], check=False, capture_output=True)


@contextlib.contextmanager
def swtpm(state: Path) -> Iterator[list[str]]:
    """A software TPM2 keeping its state in ``state``; yields QEMU's arguments to attach it."""
    state.mkdir(exist_ok=True)
    sock = state / "swtpm.sock"
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                             "--ctrl", f"type=unixio,path={sock}", "--terminate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield ["-chardev", f"socket,id=chrtpm,path={sock}", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
               "-device", "tpm-tis,tpmdev=tpm0"]
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def with_files(base: Path, out: Path, files: dict[str, bytes]) -> Path:
    """``base`` (an initramfs) with an uncompressed cpio appended that adds ``files``
    (path inside -> bytes; executable, owned by root): the kernel unpacks
    concatenated archives in order, so they join or replace what ``base`` has."""
    tree = out.with_suffix(".tree")
    shutil.rmtree(tree, ignore_errors=True)
    for inside, data in files.items():
        path = tree / inside.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755)
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=tree,
                             input="\n".join(names).encode() + b"\n", capture_output=True, check=True).stdout
    shutil.rmtree(tree)
    head = base.read_bytes()
    # The kernel looks for the next archive only at 4-byte boundaries (zeros between).
    out.write_bytes(head + b"\0" * (-len(head) % 512) + archive)
    return out
