"""provision detect: say which platform this machine is on, and why."""

from __future__ import annotations

import argparse
import json
import sys

from provision.platforms.cli_args import SEAMS_HELP, add_settings_arguments, settings_from_args

HELP = "detect the platform (cloud, hypervisor, bare metal) and show the evidence"
DESCRIPTION = """\
Detect the platform from local evidence only: provision.platform= on the
kernel command line, DMI (/sys/class/dmi/id), /sys/hypervisor/uuid,
filesystem labels (config-2, cidata) and QEMU's fw_cfg. Nothing is sent
over the network, so this never waits.

Exit status: 0 a platform was found, 1 none was.

""" + SEAMS_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, metadata_url=False)
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text)")


def main(args: argparse.Namespace) -> int:
    from provision.platforms.detect import detect_platform
    from provision.platforms.registry import get_platform

    settings = settings_from_args(args)
    if settings.platform is not None:
        get_platform(settings.platform)  # an unknown name is a usage error
    detection = detect_platform(settings)
    if args.format == "json":
        json.dump(detection.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"platform: {detection.platform or 'unknown'}")
        if detection.evidence:
            print("evidence:")
        for e in detection.evidence:
            print(f"  {e.platform:<13} {e.source}: {e.detail} (strength {e.strength})")
        if detection.platform is None:
            print("no evidence for any platform; set provision.platform=NAME", file=sys.stderr)
    return 0 if detection.platform else 1
