"""Get this machine's config bytes: the entry point for `provision run` and `provision fetch`.

Two passes, as in an initramfs that starts without network:

- ``acquire_config(settings, offline=True)`` answers from local sources
  (fw_cfg, config drive, cidata, VMware guestinfo, data: URLs, a local
  file). If the config can only come over the network it writes the flag
  file ``<run dir>/neednet`` and returns ``status == "need-network"``; the
  caller exits with :data:`NEED_NETWORK_EXIT` so the initramfs brings the
  network up.
- ``acquire_config(settings, offline=False)`` does everything, including the
  network.

Where the config comes from, first found wins (Ignition's order): a URL or
device on the kernel command line (``provision.config.*`` or
``ignition.config.*``, whatever the platform); the image's own user config
(:mod:`.system`: ``user.ign``, ``user.json``); the platform. Whichever it is,
empty (or blank) user data means no config (``status == "none"``), as in
Ignition.

The returned bytes are decoded (base64/gzip undone) but not parsed: hand them
to :func:`provision.config.pipeline.parse_config`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from provision.errors import FetchError, ProvisionError
from provision.platforms.base import Context, Found, NeedNetwork, NoConfig, Result
from provision.platforms.detect import Detection, Evidence, detect_platform
from provision.platforms.registry import get_platform
from provision.platforms.settings import Settings

log = logging.getLogger(__name__)

# EX_TEMPFAIL: "try again later" — here, once the network is up.
NEED_NETWORK_EXIT = 75


@dataclass(frozen=True)
class FetchOutcome:
    platform: str
    status: Literal["config", "none", "need-network"]
    data: bytes | None  # the config bytes when status == "config"
    source: str  # where they came from, or why there are none
    evidence: tuple[Evidence, ...] = ()
    # The platform's meta-data, vendor-data, network-config (raw), when it has them.
    extras: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def has_config(self) -> bool:
        return self.status == "config"


def references_need_network(spec: Mapping[str, Any]) -> bool:
    """Whether the config's merge/replace references need the network (anything but data:).

    The offline pass checks this after parsing the fetched config; if true it
    writes the neednet flag just as for the config itself.
    """
    meta = spec.get("provision")
    config = meta.get("config") if isinstance(meta, Mapping) else None
    if not isinstance(config, Mapping):
        return False
    references = [config.get("replace"), *(config.get("merge") or ())]
    for reference in references:
        source = reference.get("source") if isinstance(reference, Mapping) else None
        if isinstance(source, str) and not source.lower().startswith("data:"):
            return True
    return False


def choose_platform(settings: Settings) -> tuple[str, Detection]:
    detection = detect_platform(settings)
    if detection.platform is None:
        raise ProvisionError(
            "cannot tell which platform this is (no DMI, label or fw_cfg evidence); "
            "name it with provision.platform=NAME on the kernel command line or --platform"
        )
    return detection.platform, detection


def write_neednet_flag(settings: Settings, reason: str) -> None:
    try:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        settings.neednet_flag.write_text(reason + "\n", encoding="utf-8")
    except OSError as exc:
        raise FetchError(f"cannot write {settings.neednet_flag}: {exc.strerror}") from None


def _before_platform(ctx: Context) -> Result | None:
    """The kernel command line's config source, else the image's user config (see above)."""
    from provision.platforms import metal
    from provision.platforms.payload import decode_payload
    from provision.platforms.system import user_config

    kernel = ctx.settings.kernel
    if ctx.settings.config_file is not None:
        return None  # --config FILE: development use, named explicitly
    if kernel.config_url or kernel.config_device:
        return metal.fetch(ctx)
    found = user_config(ctx.settings)
    if found is None:
        return None
    return Found(decode_payload(found.data, None, found.source), found.source)


def acquire_config(
    settings: Settings, *, offline: bool = False, scrub: bool = False,
    context: Context | None = None,
) -> FetchOutcome:
    """Detect the platform (unless named) and fetch its config; see the module docstring.

    ``scrub``: overwrite secrets at their source once read (VMware guestinfo);
    only the real first-boot run should. Raises FetchError/ProvisionError on failure.
    """
    name, detection = choose_platform(settings)
    fetch = get_platform(name)
    from provision.fetch import cloudauth

    # s3:// and gs:// config URLs (and what they reference) use the instance's credentials.
    cloudauth.activate(name, settings.metadata_url)
    ctx = context or Context(settings=settings)
    ctx.offline, ctx.scrub = offline, scrub
    log.info("platform %s (%s pass)", name, "offline" if offline else "online")
    try:
        result = _before_platform(ctx) or fetch(ctx)
    except FetchError as exc:
        if "time limit" not in str(exc) and "appeared within" not in str(exc):
            raise
        raise FetchError(f"{exc} [the config fetch waits {settings.fetch_wait_text}: "
                         "raise it with provision.fetch.wait=SECONDS or =infinity]") from None
    if isinstance(result, Found) and not result.data.strip():
        # Ignition's rule, whatever the source (a URL or device named on the kernel command
        # line, user.ign, the platform): empty user data is no config, not a bad one, and the
        # machine is provisioned with an empty config. Only validate/apply refuse an empty file.
        log.info("no config: %s is empty", result.source)
        return FetchOutcome(name, "none", None, f"{result.source} is empty", detection.evidence,
                            result.extras)
    if isinstance(result, Found):
        log.info("config from %s (%d bytes)", result.source, len(result.data))
        return FetchOutcome(name, "config", result.data, result.source, detection.evidence,
                            result.extras)
    if isinstance(result, NeedNetwork):
        write_neednet_flag(settings, result.reason)
        return FetchOutcome(name, "need-network", None, result.reason, detection.evidence)
    assert isinstance(result, NoConfig)
    log.info("no config: %s", result.reason)
    return FetchOutcome(name, "none", None, result.reason, detection.evidence)

