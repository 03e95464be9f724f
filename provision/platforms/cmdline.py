"""Parse the kernel command line into the settings provision reads from it.

Recognised parameters (everything else is ignored):

``provision.platform=NAME``
    The platform; skips detection (like Ignition's ``ignition.platform.id``).
``provision.config.url=URL``
    Bare metal: fetch the config from an http, https, tftp, data, s3 or gs URL.
    A 404 is an error here: the URL was named explicitly.
``provision.config.device=LABEL`` and ``provision.config.path=PATH``
    Bare metal: read PATH (default ``/provision/config``) from the filesystem
    labelled LABEL (or from the device, if LABEL starts with ``/dev/``).
``provision.fetch.wait=SECONDS`` (or ``infinity``)
    How long fetching the config keeps trying (network coming up, metadata
    service not answering yet, 5xx, a device not there yet) before it gives
    up; default 120, Ignition's two minutes. ``provision.fetch.timeout`` is
    the older spelling.
``provision.firstboot``
    Marks this boot as the first boot (``provision.firstboot=0`` clears it).
``ds=nocloud;s=SEED``
    cloud-init's NoCloud seed: ``SEED/user-data`` holds the config.

Ignition's spellings work unchanged, so an image's existing PXE and
virt-install command lines keep working: ``ignition.config.url``,
``ignition.platform.id`` (Ignition's platform names, mapped to ours),
``ignition.firstboot``, ``ignition.config.device`` with
``ignition.config.path`` (Ignition requires both; so do we). Where both a
``provision.*`` and the matching ``ignition.*`` parameter are given, the
``provision.*`` one wins.

Values may be double-quoted (``provision.config.url="http://h/a b"``); a
bare ``--`` ends the kernel's parameters (the rest belongs to init).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DEVICE_PATH = "/provision/config"

# Ignition's platform ids whose provision name differs; the rest are the same.
IGNITION_PLATFORM_NAMES = {"gcp": "gce", "oraclecloud": "oracle", "aliyun": "alibaba"}
# provision.fetch.wait= values meaning "keep trying until the config arrives".
UNLIMITED = ("infinity", "inf", "none")


@dataclass(frozen=True)
class KernelArgs:
    platform: str | None = None
    config_url: str | None = None
    config_device: str | None = None
    config_path: str = DEFAULT_DEVICE_PATH
    fetch_timeout: float | None = None
    fetch_unlimited: bool = False  # provision.fetch.wait=infinity
    firstboot: bool = False
    nocloud_seed: str | None = None
    nocloud: tuple[tuple[str, str], ...] = ()  # every ds=nocloud;k=v field, in order
    nocloud_named: bool = False  # ds=nocloud (with or without a seed)
    ignition_platform: str | None = None  # ignition.platform.id as given (for base.platform.d)
    cloud_config_url: str | None = None  # MAAS: cloud-config-url=
    errors: tuple[str, ...] = ()


def split_cmdline(text: str) -> list[str]:
    """Split like the kernel: whitespace separates, double quotes group."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
            in_word = True
        elif char.isspace() and not quoted:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def nocloud_fields(value: str) -> tuple[tuple[str, str], ...] | None:
    """``ds=nocloud;s=URL;i=ID;h=HOST`` as (key, value) pairs, or None for another datasource.

    The short keys are cloud-init's spellings of the long ones (s: seedfrom,
    i: instance-id, h: local-hostname); both are accepted.
    """
    kind, _, rest = value.partition(";")
    if kind.lower() not in ("nocloud", "nocloud-net"):
        return None
    long_names = {"s": "seedfrom", "i": "instance-id", "h": "local-hostname"}
    fields = []
    for part in rest.split(";"):
        key, has_value, val = part.partition("=")
        if has_value and key:
            fields.append((long_names.get(key, key), val))
    return tuple(fields)


_KEYS = (
    "provision.platform", "provision.config.url", "provision.config.device",
    "provision.config.path", "provision.fetch.timeout", "provision.fetch.wait", "ds",
    "ignition.platform.id", "ignition.config.url", "ignition.config.device",
    "ignition.config.path", "cloud-config-url",
)
_OFF = ("0", "no", "false", "off", "")


def _wait(values: dict[str, str], errors: list[str]) -> tuple[float | None, bool]:
    """(seconds, unlimited) from provision.fetch.wait= (or the older provision.fetch.timeout=)."""
    for key in ("provision.fetch.wait", "provision.fetch.timeout"):
        if key not in values:
            continue
        raw = values[key]
        if raw.strip().lower() in UNLIMITED:
            return None, True
        try:
            seconds = float(raw)
            if not seconds > 0 or seconds != seconds or seconds == float("inf"):
                raise ValueError
        except ValueError:
            errors.append(f"{key}={raw!r} is not a positive number of seconds (or 'infinity')")
            return None, False
        return seconds, False
    return None, False


def parse_cmdline(text: str) -> KernelArgs:
    values: dict[str, str] = {}
    errors: list[str] = []
    firstboot: bool | None = None
    ignition_firstboot: bool | None = None
    for word in split_cmdline(text):
        if word == "--":
            break
        key, has_value, value = word.partition("=")
        if key == "provision.firstboot":
            firstboot = not has_value or value.lower() not in _OFF
        elif key == "ignition.firstboot":
            # Ignition's generator: a bare flag or any value but 0/no/off.
            ignition_firstboot = not has_value or value.lower() not in _OFF
        elif key in _KEYS:
            values[key] = value  # the last occurrence wins, as in the kernel
    timeout, unlimited = _wait(values, errors)
    ignition_platform = values.get("ignition.platform.id") or None
    platform = values.get("provision.platform") or (
        IGNITION_PLATFORM_NAMES.get(ignition_platform, ignition_platform)
        if ignition_platform else None)
    device = values.get("provision.config.device") or None
    path = values.get("provision.config.path") or None
    ign_device = values.get("ignition.config.device") or None
    ign_path = values.get("ignition.config.path") or None
    if device is None and path is None and (ign_device or ign_path):
        if not (ign_device and ign_path):
            errors.append("ignition.config.device and ignition.config.path must be given together")
        device, path = ign_device, ign_path
    nocloud = nocloud_fields(values["ds"]) if "ds" in values else None
    seed = dict(nocloud).get("seedfrom") if nocloud else None
    return KernelArgs(
        platform=platform,
        config_url=values.get("provision.config.url") or values.get("ignition.config.url") or None,
        config_device=device,
        config_path=path or DEFAULT_DEVICE_PATH,
        fetch_timeout=timeout,
        fetch_unlimited=unlimited,
        firstboot=firstboot if firstboot is not None else bool(ignition_firstboot),
        nocloud_seed=seed or None,
        nocloud=nocloud or (),
        nocloud_named=nocloud is not None,
        ignition_platform=ignition_platform,
        cloud_config_url=values.get("cloud-config-url") or None,
        errors=tuple(errors),
    )
