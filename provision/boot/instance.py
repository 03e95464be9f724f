"""The instance's metadata around the fetch: collected with the user data, kept for later.

Once the config is final, the fetch phase (offline or online) asks the
platform about the instance (:mod:`provision.instance.collect`), keeps the
answer in the run directory (``instance.json``) for the stages, and writes
``/run/metadata/provision`` for the booted system. Kept apart from
:mod:`provision.boot.phases` so the phases stay a list of steps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from provision.boot.rundir import RunDir
from provision.platforms.settings import Settings

if TYPE_CHECKING:
    from provision.config.model import Config
    from provision.instance.data import InstanceData

log = logging.getLogger(__name__)


def keep_instance_data(settings: Settings, rundir: RunDir, platform: str, *, offline: bool,
                       report: Callable[[str], None]) -> None:
    from provision.instance.attributes import write_attributes
    from provision.instance.collect import collect_instance
    from provision.platforms.base import Context

    ctx = Context(settings=settings, offline=offline)
    try:
        instance = collect_instance(ctx, platform)
    finally:
        if ctx._client is not None:
            ctx._client.close()
    if instance is None:
        log.info("platform %s: no instance metadata read", platform)
        return
    rundir.write_private(rundir.instance, json.dumps(instance.to_json(), indent=2).encode() + b"\n")
    path = write_attributes(settings.run_dir, instance)
    known = [name for name, value in (("id", instance.instance_id), ("hostname", instance.local_hostname),
                                      ("region", instance.region), ("zone", instance.zone))
             if value]
    report(f"instance metadata from {platform}: {', '.join(known) or 'nothing'}, "
           f"{len(instance.public_keys)} SSH keys; attributes in {path}")


def read_kept_instance(rundir: RunDir) -> InstanceData | None:
    from provision.instance.data import read_instance

    return read_instance(rundir.instance)


def phone_home_if_asked(settings: Settings, rundir: RunDir, config: Config, root: Path,
                       report: Callable[[str], None]) -> None:
    """cloud-init's phone_home (provision.phoneHome), once the target is provisioned."""
    asked = config.provision.phone_home
    if asked is None:
        return
    from provision.errors import ProvisionError
    from provision.fetch.http import HttpClient
    from provision.instance.report import (
        PHONE_HOME_TRIES,
        REPORT_DEADLINE,
        phone_home,
        phone_home_form,
    )

    instance = read_kept_instance(rundir)
    instance_id = instance.instance_id if instance else None
    form = phone_home_form(root, instance_id, asked.post)
    try:
        with HttpClient(user_agent=settings.user_agent, deadline=REPORT_DEADLINE) as client:
            report(phone_home(client, asked.url, form, instance_id, asked.tries or PHONE_HOME_TRIES))
    except (ProvisionError, OSError) as exc:
        log.warning("phone_home failed: %s", exc)
        report(f"phone_home failed: {exc}")


def report_boot_outcome(settings: Settings, rundir: RunDir, ok: bool, description: str,
                        report: Callable[[str], None]) -> None:
    """Tell the platform (Azure, Equinix Metal) that provisioning succeeded or failed."""
    platform = str(rundir.read_json(rundir.fetched).get("platform") or "")
    if platform not in ("azure", "packet"):
        return
    from provision.fetch.http import HttpClient
    from provision.instance.report import REPORT_DEADLINE, report_outcome

    report_outcome(platform, read_kept_instance(rundir), ok, description,
                   lambda: HttpClient(user_agent=settings.user_agent, deadline=REPORT_DEADLINE),
                   report)
