"""Command-line flags shared by `provision detect` and `provision fetch`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.platforms.settings import Settings

SEAMS_HELP = """\
Settings and test seams (each also read from the environment):
  --metadata-url URL  PROVISION_METADATA_URL  scheme://host[:port] for any HTTP
                      metadata service instead of http://169.254.169.254 &
                      co.; the platform's paths are appended
  --sys-root DIR      PROVISION_SYS_ROOT      read /sys, /dev/disk/by-label and
                      /proc/cmdline below DIR (a fake tree)
  --cmdline TEXT      PROVISION_CMDLINE       the kernel command line to use
                      instead of /proc/cmdline
                      PROVISION_RUN_DIR       where --offline leaves the flag
                      file 'neednet' (default /run/provision)

Kernel command line parameters (Ignition's spellings in brackets also work):
  provision.platform=NAME          the platform; skips detection
                                   [ignition.platform.id=NAME]
  provision.config.url=URL         the config from a data, http(s), tftp, s3, gs
                                   URL, whatever the platform (404 is an error)
                                   [ignition.config.url=URL]
  provision.config.device=LABEL    ...or from a filesystem label (or /dev path)
  provision.config.path=PATH       and the file on it (default /provision/config)
                                   [ignition.config.device= + ignition.config.path=]
  provision.fetch.wait=SECONDS     how long fetching keeps trying (default 120;
                                   'infinity': until the config arrives);
                                   provision.fetch.timeout= is the older name
  provision.firstboot              marks the first boot [ignition.firstboot]
  ds=nocloud;s=SEED;i=ID;h=HOST    NoCloud seed: SEED/user-data, meta-data, ...
  cloud-config-url=URL             MAAS: where the datasource credentials are
"""


def add_settings_arguments(parser: argparse.ArgumentParser, *, metadata_url: bool = True) -> None:
    from provision.platforms.registry import platform_names

    parser.add_argument("--platform", metavar="NAME",
                        help="the platform to use (default: provision.platform= or detection): "
                        + ", ".join(platform_names()))
    if metadata_url:
        parser.add_argument("--metadata-url", metavar="URL",
                            help="base URL of the HTTP metadata service (test/debug seam)")
    parser.add_argument("--sys-root", metavar="DIR",
                        help="read /sys, /dev/disk/by-label and /proc/cmdline below DIR")
    parser.add_argument("--cmdline", metavar="TEXT", help="use TEXT as the kernel command line")


def settings_from_args(args: argparse.Namespace) -> Settings:
    from provision.platforms.settings import Settings

    return Settings.load(
        platform=args.platform,
        metadata_url=getattr(args, "metadata_url", None),
        sys_root=args.sys_root,
        cmdline=args.cmdline,
        config_file=getattr(args, "config", None),
    )
