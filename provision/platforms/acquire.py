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

The returned bytes are decoded (base64/gzip undone) but not parsed: hand them
to :func:`provision.config.pipeline.parse_config`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from provision.errors import FetchError, ProvisionError
from provision.platforms.base import Context, Found, NeedNetwork, NoConfig
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
    network_config: bytes | None = None  # raw cloud-init network config, when the platform has one

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
    ctx = context or Context(settings=settings)
    ctx.offline, ctx.scrub = offline, scrub
    log.info("platform %s (%s pass)", name, "offline" if offline else "online")
    result = fetch(ctx)
    if isinstance(result, Found):
        log.info("config from %s (%d bytes)", result.source, len(result.data))
        return FetchOutcome(name, "config", result.data, result.source, detection.evidence,
                            result.network_config)
    if isinstance(result, NeedNetwork):
        write_neednet_flag(settings, result.reason)
        return FetchOutcome(name, "need-network", None, result.reason, detection.evidence,
                            result.network_config)
    assert isinstance(result, NoConfig)
    log.info("no config: %s", result.reason)
    return FetchOutcome(name, "none", None, result.reason, detection.evidence)

