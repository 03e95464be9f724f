"""VMware: the config from guestinfo variables, read through VMware Tools.

Keys, first found wins (each with an optional ``.encoding`` sibling:
base64/b64, gzip/gz, gzip+base64 and short spellings):

1. ``guestinfo.provision.config.data`` — ours;
2. ``guestinfo.ignition.config.data`` — Ignition's, so existing VM templates work;
3. ``guestinfo.userdata`` — cloud-init's (a #cloud-config is understood too);
4. the same keys as properties of the OVF environment (``guestinfo.ovfenv``),
   which vSphere fills from a vApp's properties.

Reading uses ``vmware-rpctool "info-get KEY"``, or ``vmtoolsd --cmd`` when
rpctool is missing. A missing key exits non-zero with "No value found".
After a successful read during the real first boot (``ctx.scrub``), the key
that held the data is overwritten with :data:`SCRUBBED` so the secret does
not linger for any process in the guest to read; guestinfo cannot hold an
empty value. The OVF environment itself is vSphere's and is left alone.
"""

from __future__ import annotations

import logging

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.ovf import ovf_properties
from provision.platforms.payload import decode_payload
from provision.run import have_tool, run

log = logging.getLogger(__name__)

DATA_KEYS = (
    "guestinfo.provision.config.data",
    "guestinfo.ignition.config.data",
    "guestinfo.userdata",
)
OVFENV_KEY = "guestinfo.ovfenv"
SCRUBBED = "-"  # what a consumed key holds afterwards; read back as "no config"


def _rpc(command: str) -> tuple[int, str, str]:
    if have_tool("vmware-rpctool"):
        done = run("vmware-rpctool", [command], check=False, timeout=30)
    elif have_tool("vmtoolsd"):
        done = run("vmtoolsd", ["--cmd", command], check=False, timeout=30)
    else:
        raise FetchError("vmware: neither vmware-rpctool nor vmtoolsd is installed")
    return done.status, done.stdout, done.stderr


def guestinfo(key: str) -> str | None:
    """The value of a guestinfo key, or None when it is not set."""
    status, out, err = _rpc(f"info-get {key}")
    if status == 0:
        return out.rstrip("\n")
    if "No value found" in err or "No value found" in out:
        return None
    raise FetchError(f"vmware: reading {key} failed (status {status}): {err.strip()[:200]}")


def scrub(key: str) -> None:
    status, _out, err = _rpc(f"info-set {key} {SCRUBBED}")
    if status != 0:
        # The config is already read; failing the boot over this would be worse.
        log.warning("vmware: could not overwrite %s after reading it: %s", key, err.strip()[:200])


def _decode(value: str, encoding: str | None, origin: str) -> bytes:
    return decode_payload(value.encode(), encoding, origin)


def fetch(ctx: Context) -> Result:
    for key in DATA_KEYS:
        value = guestinfo(key)
        if value is None:
            continue
        if value.strip() in ("", SCRUBBED):
            return NoConfig(f"vmware: {key} was already consumed")
        data = _decode(value, guestinfo(f"{key}.encoding"), f"vmware {key}")
        if ctx.scrub:
            scrub(key)
        return Found(data, f"vmware guestinfo {key}")
    ovfenv = guestinfo(OVFENV_KEY)
    if ovfenv:
        properties = ovf_properties(ovfenv, f"vmware {OVFENV_KEY}")
        for key in DATA_KEYS:
            value = properties.get(key)
            if value and value.strip():
                origin = f"vmware {OVFENV_KEY} property {key}"
                return Found(_decode(value, properties.get(f"{key}.encoding"), origin), origin)
    return NoConfig("vmware: no config in guestinfo")
