"""provision run: the first-boot entry point the initramfs hooks call (one boot phase per call)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from provision.boot.rundir import RunDir
from provision.commands.options import add_root_argument
from provision.platforms.cli_args import SEAMS_HELP, add_settings_arguments

if TYPE_CHECKING:
    from provision.platforms.settings import Settings

BOOT_PHASES = ("fetch-offline", "fetch", "disks", "mount", "files", "umount")
# Exit status when the phases asked for cannot go on without the network
# (EX_TEMPFAIL, as `provision fetch --offline` uses).
NEED_NETWORK_EXIT = 75
# Exit status when the boot must end in a reboot before the next stage: the
# kargs part of the disks stage changed the kernel command line. The caller
# reboots (the initramfs-tools script, provision-disks.service under dracut).
REBOOT_EXIT = 76

HELP = "run the first-boot phases (what the initramfs does), one or all"
DESCRIPTION = """\
Run provisioning as first boot does, against the root filesystem mounted
(or about to be mounted) at --root. The initramfs hooks run one phase per
process, in this order:

  fetch-offline  config from sources that need no network; writes
                 <run dir>/neednet when the network is needed
  fetch          the rest over the network (the hooks run it only when
                 neednet exists); the final config is cached in the run dir
  disks          the engine stages of phase disks: kernel arguments check,
                 partitions, RAID, LUKS, filesystems (root not mounted yet);
                 everything later phases fetch is fetched and verified first
  mount          the stages of phase mount: the configured filesystems
  files          the stages of phase files: users, files, systemd units,
                 container runtime
  umount         unmount what mount mounted

Without --phase all of them run in order (development use). A root whose
result record says it was provisioned is never provisioned again: the first
phase looks at the root device (root= on the kernel command line, or
--root-device) before anything is fetched.

The disks phase first writes the config's kernelArguments into the boot
loader's files (the root device mounted for the purpose); when they changed,
it touches no disk and the run stops with exit status 76: the caller reboots,
and the next boot (with the new command line) provisions.

Several --phase options run in one process (the initramfs-tools scripts do
that to start the interpreter less often). If the offline pass needs the
network and the next phase is not fetch, the run stops with exit status 75
so the caller can bring the network up and continue with --phase fetch.
(--stage is the older name of --phase, still accepted.)

On failure the exit status is 1 and a short summary (phase, item, cause,
log file) is printed and written to <run dir>/failure; the full log is
<run dir>/provision.log. The config itself is never shown.

""" + SEAMS_HELP

log = logging.getLogger("provision.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_root_argument(parser, help="where the root filesystem is mounted (/sysroot, /root)")
    parser.add_argument("--phase", "--stage", dest="phase", choices=BOOT_PHASES, action="append",
                        help="run this boot phase (repeatable; default: all, in order)")
    parser.add_argument("--root-device", metavar="SPEC",
                        help="the root device (/dev/..., LABEL=..., UUID=...); default: root= "
                        "on the kernel command line")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="state shared between stages (default: /run/provision)")
    parser.add_argument("--config", metavar="FILE",
                        help="read the config from FILE (platform 'file'; development use)")
    add_settings_arguments(parser)


def _log_to_file(path: Path, verbose: int) -> None:
    """Everything at INFO (DEBUG with -v) to the log file; the console keeps its level."""
    root = logging.getLogger()
    console_level = root.level
    for handler in root.handlers:
        handler.setLevel(console_level)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        print(f"provision run: cannot write the log {path}: {exc.strerror}", file=sys.stderr)
        return
    path.chmod(0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(levelname)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(handler)
    root.setLevel(min(console_level, handler.level))


def _kernel_cmdline(args: argparse.Namespace, settings: Settings) -> str:
    """The command line the settings were read from: --cmdline, PROVISION_CMDLINE or /proc."""
    if args.cmdline is not None:
        return str(args.cmdline)
    override = os.environ.get("PROVISION_CMDLINE")
    if override is not None:
        return override
    try:
        return settings.host_path("/proc/cmdline").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _waiting_for_network(rundir: RunDir, done: list[str]) -> bool:
    return ("fetch-offline" in done and "fetch" not in done
            and rundir.neednet.exists() and not rundir.config_cache.exists()
            and rundir.skip_reason() is None)


def main(args: argparse.Namespace) -> int:
    from provision.boot.phases import PHASES, BootContext
    from provision.boot.summary import describe
    from provision.errors import ProvisionError
    from provision.platforms.cli_args import settings_from_args

    settings = settings_from_args(args)
    if args.run_dir:
        from dataclasses import replace

        settings = replace(settings, run_dir=Path(args.run_dir))
    rundir = RunDir(settings.run_dir)
    _log_to_file(rundir.log, args.verbose)

    def report(line: str) -> None:
        log.info("%s", line)
        print(f"provision: {line}", file=sys.stderr, flush=True)

    ctx = BootContext(Path(args.root), settings, rundir, args.root_device,
                      _kernel_cmdline(args, settings), report)
    phases = args.phase or list(BOOT_PHASES)
    for index, name in enumerate(phases):
        if name == "fetch" and rundir.config_cache.exists() and index > 0:
            continue  # the offline pass finished the job
        if name != "fetch" and _waiting_for_network(rundir, phases[:index]):
            # The offline pass needs the network and this run does not fetch:
            # the caller brings the network up and runs `--phase fetch` first.
            print(f"provision: the network is needed before phase {name}", file=sys.stderr)
            return NEED_NETWORK_EXIT
        started = time.monotonic()
        log.info("stage %s: start", name)
        try:
            PHASES[name](ctx)
        except Exception as exc:  # every failure gets the summary; bugs included
            if args.debug and not isinstance(exc, (ProvisionError, OSError)):
                raise
            failure = describe(name, exc)
            text = failure.render(rundir.log)
            # To the log file only (the console gets the summary below); a
            # bug's traceback is worth having there.
            log.info("stage %s FAILED: item %s: %s", name, failure.item, failure.cause,
                     exc_info=not isinstance(exc, (ProvisionError, OSError)))
            with contextlib.suppress(OSError):  # the console still gets it
                rundir.write_private(rundir.failure, text.encode())
            sys.stderr.write(text)
            from provision.boot.instance import report_boot_outcome

            report_boot_outcome(settings, rundir, False,
                                f"provision failed in {failure.stage}: {failure.item}: {failure.cause}", report)
            return 1
        seconds = time.monotonic() - started
        log.info("stage %s: done in %.3f s", name, seconds)
        print(f"provision: timing: stage={name} seconds={seconds:.3f}", file=sys.stderr, flush=True)
        if rundir.reboot.exists():
            print("provision: reboot needed before the next stage", file=sys.stderr, flush=True)
            return REBOOT_EXIT
    return 0
