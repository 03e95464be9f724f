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
``provision.fetch.timeout=SECONDS``
    Overall deadline for fetching the config (default 120).
``provision.firstboot``
    Marks this boot as the first boot (``provision.firstboot=0`` clears it).
``ds=nocloud;s=SEED``
    cloud-init's NoCloud seed: ``SEED/user-data`` holds the config.

Values may be double-quoted (``provision.config.url="http://h/a b"``); a
bare ``--`` ends the kernel's parameters (the rest belongs to init).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DEVICE_PATH = "/provision/config"


@dataclass(frozen=True)
class KernelArgs:
    platform: str | None = None
    config_url: str | None = None
    config_device: str | None = None
    config_path: str = DEFAULT_DEVICE_PATH
    fetch_timeout: float | None = None
    firstboot: bool = False
    nocloud_seed: str | None = None
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


def _nocloud_seed(value: str) -> str | None:
    # ds=nocloud;s=URL;i=ID;h=HOST — only the seed matters to us.
    kind, _, rest = value.partition(";")
    if kind not in ("nocloud", "nocloud-net"):
        return None
    for part in rest.split(";"):
        key, _, val = part.partition("=")
        if key in ("s", "seedfrom") and val:
            return val
    return None


def parse_cmdline(text: str) -> KernelArgs:
    values: dict[str, str] = {}
    errors: list[str] = []
    firstboot = False
    for word in split_cmdline(text):
        if word == "--":
            break
        key, has_value, value = word.partition("=")
        if key == "provision.firstboot":
            firstboot = not has_value or value not in ("0", "no", "false")
        elif key in ("provision.platform", "provision.config.url", "provision.config.device",
                     "provision.config.path", "provision.fetch.timeout", "ds"):
            values[key] = value  # the last occurrence wins, as in the kernel
    timeout: float | None = None
    if "provision.fetch.timeout" in values:
        raw = values["provision.fetch.timeout"]
        try:
            timeout = float(raw)
            if not timeout > 0:
                raise ValueError
        except ValueError:
            errors.append(f"provision.fetch.timeout={raw!r} is not a positive number of seconds")
            timeout = None
    return KernelArgs(
        platform=values.get("provision.platform") or None,
        config_url=values.get("provision.config.url") or None,
        config_device=values.get("provision.config.device") or None,
        config_path=values.get("provision.config.path") or DEFAULT_DEVICE_PATH,
        fetch_timeout=timeout,
        firstboot=firstboot,
        nocloud_seed=_nocloud_seed(values["ds"]) if "ds" in values else None,
        errors=tuple(errors),
    )
