"""The boot phases, one function each, in run order (see the package docstring).

A boot phase is one step of the initramfs (one process, one unit): fetching
the config, or running the engine stages (:mod:`provision.stages`) that
declare that phase. The engine phases are :data:`provision.stages.base.PHASES`;
which stages each runs comes from the stages themselves, so a new stage
runs at boot without anyone editing this file.

Each phase reads what earlier phases left in the run directory and raises a
ProvisionError (ConfigError, FetchError, StageError, ...) on failure; the
caller turns that into the console summary. Once a phase decides there is
nothing to provision on this boot (the root was provisioned before), it
leaves the ``skip`` file and every later phase returns at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.boot.imageconfig import (
    base_remote_sources,
    use_platform_credentials,
    with_base_configs,
)
from provision.boot.instance import (
    keep_instance_data,
    phone_home_if_asked,
    read_kept_instance,
    report_boot_outcome,
)
from provision.boot.remote import remote_sources, scheme
from provision.boot.rundir import RunDir
from provision.errors import ConfigError, FetchError, ProvisionError
from provision.platforms.settings import Settings

if TYPE_CHECKING:
    from provision.apply.orchestrator import ApplyOutcome
    from provision.config.model import Config
    from provision.config.pipeline import ParsedConfig
    from provision.stages.base import RootFacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootContext:
    root: Path  # where the root filesystem is (or will be) mounted
    settings: Settings
    rundir: RunDir
    root_device: str | None  # root= spec; None: take it from the kernel command line
    cmdline: str = ""  # the kernel command line (or its stand-in, --cmdline)
    report: Callable[[str], None] = lambda line: None  # one line for the console


def _skip(ctx: BootContext, reason: str) -> None:
    ctx.rundir.write_private(ctx.rundir.skip, reason.encode() + b"\n")
    ctx.report(reason)


def _skipping(ctx: BootContext) -> bool:
    reason = ctx.rundir.skip_reason()
    if reason is not None:
        log.info("nothing to do: %s", reason)
        return True
    return False


def _empty_config() -> bytes:
    from provision.config.versions import NEWEST

    return json.dumps({"provision": {"version": NEWEST}}).encode()


def _parse(data: bytes, name: str, instance_data: dict[str, Any] | None = None) -> ParsedConfig:
    from provision.config.pipeline import parse_config

    parsed = parse_config(data, name, instance_data)
    if not parsed.ok or parsed.spec is None:
        errors = [d for d in parsed.diagnostics if d.is_error]
        raise ConfigError(errors or parsed.diagnostics)
    return parsed


def _already_provisioned_root(ctx: BootContext) -> str | None:
    """Why not to provision: the root holds a record of a finished run."""
    from provision.boot.rootpeek import (
        SUCCEEDED,
        provisioned_record,
        read_record,
        resolve_device,
        root_spec_from_cmdline,
    )

    if ctx.root.is_dir() and any(ctx.root.iterdir()):
        # Already there (development use, or a caller that mounted it): read it.
        record = read_record(ctx.root)
        if record is None or record.status != SUCCEEDED:
            return None
        where = str(ctx.root)
    else:
        # The initramfs: the root is not mounted yet; look at its device.
        spec = ctx.root_device or root_spec_from_cmdline(ctx.cmdline)
        if spec is None:
            return None
        device = resolve_device(spec)
        if device is None:
            log.info("root device %s not present yet: not provisioned", spec)
            return None
        record = provisioned_record(device, ctx.rundir.peek)
        if record is None:
            return None
        where = spec
    return (f"root {where} was provisioned at {record.finished or record.started} "
            f"(config sha256 {record.config_sha256[:12]}); not provisioning again")


def _record_source(ctx: BootContext, platform: str, source: str) -> None:
    ctx.rundir.write_json(ctx.rundir.fetched, {"platform": platform, "source": source})


def _keep_instance(ctx: BootContext, *, offline: bool) -> dict[str, Any] | None:
    return keep_instance_data(ctx.settings, ctx.rundir, _platform_name(ctx), offline=offline,
                              report=ctx.report)


def _finish_fetch(ctx: BootContext, data: bytes, source: str, *, offline: bool,
                  instance_data: dict[str, Any] | None = None) -> None:
    """Keep the instance's metadata (Jinja user data is rendered with it), then parse,
    resolve references (may fetch) and cache the final config."""
    from provision.fetch.cache import write_config_cache
    from provision.fetch.configrefs import resolve_references
    from provision.platforms.base import default_client

    if instance_data is None:
        instance_data = _keep_instance(ctx, offline=offline)
    parsed = _parse(data, source, instance_data)
    use_platform_credentials(ctx.settings, _platform_name(ctx))
    with default_client(ctx.settings) as client:
        resolved = resolve_references(parsed, client)
    # The image's base configs (base.d, base.platform.d) go under the user's, as in Ignition.
    spec = with_base_configs(ctx.settings, _platform_name(ctx), resolved.spec, ctx.report)
    spec = _with_platform_network(ctx, spec)
    write_config_cache(spec, ctx.rundir.config_cache)
    fetched = f" and {len(resolved.fetched)} referenced configs" if resolved.fetched else ""
    ctx.report(f"config from {source}{fetched} is valid")


def _platform_name(ctx: BootContext) -> str:
    return str(ctx.rundir.read_json(ctx.rundir.fetched).get("platform") or "")


PLATFORM_NETWORK_FILES = ("network-config", "network_data.json")


def _with_platform_network(ctx: BootContext, spec: dict[str, Any]) -> dict[str, Any]:
    """The platform's network config joins a config without a network section of its own."""
    from provision.importers.network import with_platform_network

    # cloud-init's network-config, else OpenStack's network_data.json (metadata
    # service or config drive); both are read by the same importer.
    for name in PLATFORM_NETWORK_FILES:
        try:
            raw = (ctx.rundir.platform_data / name).read_bytes()
            break
        except FileNotFoundError:
            continue
    else:
        return spec
    merged = with_platform_network(spec, raw, f"the platform's {name}")
    if merged is not spec:
        ctx.report(f"network configuration from the platform's {name}")
    return merged


def _decide_network(ctx: BootContext, seed_network_config: bytes | None) -> None:
    """The network is needed: is it a static one this run must bring up itself?"""
    from provision.boot.initnet import decide

    line = decide(ctx.rundir.initnet, ctx.cmdline, seed_network_config)
    if line:
        ctx.report(line)


def _bring_up_network(ctx: BootContext) -> None:
    from provision.boot.initnet import bring_up

    line = bring_up(ctx.rundir.initnet, ctx.settings.sys_root, ctx.settings.host_path("/etc/resolv.conf"))
    if line:
        ctx.report(line)


def fetch_offline(ctx: BootContext) -> None:
    from provision.platforms.acquire import acquire_config

    ctx.rundir.ensure()
    if _skipping(ctx):
        return
    reason = _already_provisioned_root(ctx)
    if reason is not None:
        _skip(ctx, reason)
        return
    outcome = acquire_config(ctx.settings, offline=True, scrub=True)
    _record_source(ctx, outcome.platform, outcome.source)
    ctx.rundir.keep_platform_data(outcome.extras)
    seed_network_config = outcome.extras.get("network-config")  # e.g. a cidata seed's
    if outcome.status == "need-network":
        ctx.report(f"platform {outcome.platform}: the network is needed ({outcome.source})")
        _decide_network(ctx, seed_network_config)
        return
    if outcome.status == "none" or outcome.data is None:
        ctx.report(f"platform {outcome.platform} has no config ({outcome.source}); "
                   "provisioning an empty config")
        data, source = _empty_config(), f"{outcome.platform} (no config)"
    else:
        data, source = outcome.data, outcome.source
    instance_data = _keep_instance(ctx, offline=True)
    parsed = _parse(data, source, instance_data)
    remote = remote_sources(parsed.spec or {}) + base_remote_sources(ctx.settings, outcome.platform)
    if remote:
        ctx.rundir.write_private(ctx.rundir.offline_config, data)
        kinds = sorted({scheme(s) for s in remote})
        note = f"config from {source} refers to {len(remote)} remote sources ({', '.join(kinds)})"
        ctx.rundir.write_private(ctx.rundir.neednet, note.encode() + b"\n")
        ctx.report(f"the network is needed: {note}")
        _decide_network(ctx, seed_network_config)
        return
    _finish_fetch(ctx, data, source, offline=True, instance_data=instance_data)


def fetch(ctx: BootContext) -> None:
    from provision.platforms.acquire import acquire_config

    ctx.rundir.ensure()
    if _skipping(ctx):
        return
    if ctx.rundir.config_cache.exists():
        log.info("config already fetched by the offline pass")
        return
    _bring_up_network(ctx)
    try:
        data: bytes | None = ctx.rundir.offline_config.read_bytes()
    except FileNotFoundError:
        data = None
    if data is not None:
        source = str(ctx.rundir.read_json(ctx.rundir.fetched).get("source", "offline pass"))
    else:
        outcome = acquire_config(ctx.settings, offline=False, scrub=True)
        _record_source(ctx, outcome.platform, outcome.source)
        ctx.rundir.keep_platform_data(outcome.extras)
        if outcome.status == "need-network":  # the platform said so again: a bug there
            raise FetchError(f"platform {outcome.platform} still needs the network: {outcome.source}")
        if outcome.status == "none" or outcome.data is None:
            ctx.report(f"platform {outcome.platform} has no config ({outcome.source}); "
                       "provisioning an empty config")
            data, source = _empty_config(), f"{outcome.platform} (no config)"
        else:
            data, source = outcome.data, outcome.source
    _finish_fetch(ctx, data, source, offline=False)


def _cached_config(ctx: BootContext) -> tuple[Config, str]:
    """The cached final config (model) and the sha256 of its bytes."""
    from provision.fetch.cache import read_cache

    data = read_cache(ctx.rundir.config_cache)
    if data is None:
        raise ProvisionError(
            f"no config in {ctx.rundir.config_cache}: the fetch stages did not run or did not finish"
        )
    parsed = _parse(data, "cached config")
    assert parsed.config is not None  # _parse raised otherwise
    return parsed.config, hashlib.sha256(data).hexdigest()


def _apply(ctx: BootContext, phase: str, root: Path, *, only: tuple[str, ...] | None = None,
           state_root: Path | None = None, image: RootFacts | None = None) -> ApplyOutcome:
    """Run the phase's stages (``only`` these, if given) against ``root``."""
    from provision.apply.orchestrator import ApplyRequest, apply_config, load_stages
    from provision.stages import stages_in_phase
    from provision.stages.base import PHASES

    config, digest = _cached_config(ctx)
    platform = ctx.rundir.read_json(ctx.rundir.fetched).get("platform")
    instance = read_kept_instance(ctx.rundir)
    use_platform_credentials(ctx.settings, _platform_name(ctx))
    now = list(stages_in_phase(phase)) if only is None else list(only)
    # What later stages will write is fetched and verified now as well (not
    # kept: the root is not mounted yet), so a bad URL stops the boot before
    # this phase changes a disk.
    later = [n for p in PHASES[PHASES.index(phase):] for n in stages_in_phase(p) if n not in now]
    request = ApplyRequest(
        config=config, config_sha256=digest, root=root,
        platform=str(platform) if platform else None, state_root=state_root,
        verify_later=tuple(load_stages(later)),
        instance=instance, instance_id=instance.instance_id if instance else None, image=image,
    )
    outcome = apply_config(request, load_stages(now), report=ctx.report)
    if outcome.already_done:
        ctx.report(f"{phase}: already done for this config")
    return outcome


def _kernel_arguments(ctx: BootContext) -> bool:
    """The kargs stage against the root's boot filesystems; True when they changed
    (the boot then ends in a reboot into the new command line, as Ignition's does)."""
    from provision.boot.bootfs import mounted_boot_filesystems
    from provision.boot.rootpeek import root_spec_from_cmdline

    config, _ = _cached_config(ctx)
    staging = ctx.rundir.staging_root
    if not config.kernel_arguments.should_exist and not config.kernel_arguments.should_not_exist:
        _apply(ctx, "disks", staging, only=("kargs",))  # recorded as empty; nothing to mount
        return False
    boot_root: contextlib.AbstractContextManager[Path]
    if ctx.root.is_dir() and any(ctx.root.iterdir()):
        boot_root = contextlib.nullcontext(ctx.root)  # already mounted (development use)
    else:
        boot_root = mounted_boot_filesystems(
            ctx.root_device or root_spec_from_cmdline(ctx.cmdline), ctx.rundir.bootfs)
    with boot_root as root:
        outcome = _apply(ctx, "disks", root, only=("kargs",), state_root=staging)
    changes = [a for plan in outcome.plans for a in plan.changes]
    if not changes:
        return False
    change = " ".join([*(f"+{a}" for a in config.kernel_arguments.should_exist),
                       *(f"-{a}" for a in config.kernel_arguments.should_not_exist)])
    where = ("by the image's kargs-helper" if [a.item for a in changes] == ["kargs-helper"]
             else f"in {len(changes)} boot loader file{'s' if len(changes) > 1 else ''}")
    reason = f"kernel arguments changed ({change}) {where}"
    ctx.rundir.write_private(ctx.rundir.reboot, reason.encode() + b"\n")
    ctx.report(f"{reason}; rebooting into the new command line")
    return True


def disks(ctx: BootContext) -> None:
    from provision.stages import stages_in_phase

    if _skipping(ctx):
        return
    # The root is not mounted yet: the run's record starts in the run
    # directory and moves into the root at the mount stage.
    ctx.rundir.staging_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Kernel arguments first, on their own: new ones mean a reboot before any
    # disk is touched, and a config they cannot be applied for stops the boot
    # before that too.
    if _kernel_arguments(ctx):
        return  # the disks wait for the boot with the new command line
    rest = tuple(n for n in stages_in_phase("disks") if n != "kargs")
    _apply(ctx, "disks", ctx.rundir.staging_root, only=rest, image=_image_facts(ctx))


def _image_facts(ctx: BootContext) -> RootFacts | None:
    """The image as the disks stage's plan must know it, read before any disk changes.

    Only a config with volumes enrolled with systemd-cryptenroll needs it (the
    image's systemd unlocks them on later boots): the root device is mounted
    read-only for the look and unmounted again. A root that cannot be read
    now (absent, not yet a filesystem) refuses such a config in the plan: its
    systemd would be known only after the volumes were formatted.
    """
    from provision.boot.rootpeek import image_facts, root_spec_from_cmdline
    from provision.disks.cryptenroll import systemd_version
    from provision.stages.base import RootFacts

    config, _ = _cached_config(ctx)
    if not any(v.systemd_tpm2 is not None for v in config.storage.luks):
        return None
    if ctx.root.is_dir() and any(ctx.root.iterdir()):  # already mounted (development use)
        return RootFacts(f"the root {ctx.root}", systemd=systemd_version(ctx.root))
    return image_facts(ctx.root_device or root_spec_from_cmdline(ctx.cmdline), ctx.rundir.peek)


def _carry_record_into_root(ctx: BootContext) -> None:
    """Put this boot's disks outcome into the root's record (before the mount stage)."""
    from provision.apply.result import read_result, write_result
    from provision.target.tree import TargetTree

    with TargetTree(ctx.rundir.staging_root) as staged_tree:
        staged = read_result(staged_tree)
    if staged is None:
        return
    with TargetTree(ctx.root) as tree:
        current = read_result(tree)
        if current is not None and current.config_sha256 == staged.config_sha256:
            disks_outcome = staged.outcome("disks")
            current.stages = [s for s in current.stages if s.name != "disks"]
            current.stages.insert(0, disks_outcome)
            staged = current
        write_result(tree, staged)


def _refuse_provisioned_root(ctx: BootContext) -> bool:
    """The root is mounted now: check its record directly as well."""
    from provision.boot.rootpeek import SUCCEEDED, read_record

    record = read_record(ctx.root)
    if record is None or record.status != SUCCEEDED:
        return False
    _, digest = _cached_config(ctx)
    if record.config_sha256 == digest:
        return False  # the orchestrator reports "already done" itself
    _skip(ctx, f"root {ctx.root} was provisioned at {record.finished or record.started} "
               f"with another config (sha256 {record.config_sha256[:12]}); not provisioning again")
    return True


def mount(ctx: BootContext) -> None:
    if _skipping(ctx) or _refuse_provisioned_root(ctx):
        return
    _carry_record_into_root(ctx)
    _apply(ctx, "mount", ctx.root)


def files(ctx: BootContext) -> None:
    if _skipping(ctx) or _refuse_provisioned_root(ctx):
        return
    _apply(ctx, "files", ctx.root)
    ctx.report(f"provisioned {ctx.root}")
    report_boot_outcome(ctx.settings, ctx.rundir, True, "provisioned", ctx.report)
    phone_home_if_asked(ctx.settings, ctx.rundir, _cached_config(ctx)[0], ctx.root, ctx.report)


def umount(ctx: BootContext) -> None:
    from provision.stages.base import Target
    from provision.stages.mount import unmount_all

    unmounted = unmount_all(Target(ctx.root))
    if unmounted:
        ctx.report(f"unmounted {', '.join(unmounted)}")
    # The last stage: the cached config (password hashes, credentials) has
    # served its purpose and should not linger in the booted system's /run.
    for path in (ctx.rundir.config_cache, ctx.rundir.offline_config, ctx.rundir.initnet):
        path.unlink(missing_ok=True)
    os.sync()


# The boot phases in run order; "disks", "mount" and "files" run engine stages.
PHASES: dict[str, Callable[[BootContext], None]] = {
    "fetch-offline": fetch_offline,
    "fetch": fetch,
    "disks": disks,
    "mount": mount,
    "files": files,
    "umount": umount,
}
