"""VirtualBox: the config in the guest property ``/Ignition/Config`` (Ignition's name).

Set on the host with ``VBoxManage guestproperty set VM /Ignition/Config "$(cat
config.ign)"``; read in the guest with the Guest Additions' ``VBoxControl
guestproperty get`` (Ignition talks to the VBoxGuest device itself; we use
the tool, which the image must carry in its initramfs). As in Ignition, a
non-empty ``/Ignition/Config/Encoding`` is refused (reserved for later), and
a missing property means no config.
"""

from __future__ import annotations

from provision.errors import CommandError, FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.payload import decode_payload
from provision.run import have_tool, run

CONFIG_PROPERTY = "/Ignition/Config"
ENCODING_PROPERTY = "/Ignition/Config/Encoding"


def guest_property(name: str) -> bytes | None:
    """The property's value, or None when it is not set."""
    try:
        done = run("VBoxControl", ["--nologo", "guestproperty", "get", name], check=False,
                   timeout=60)
    except CommandError as exc:
        raise FetchError(f"virtualbox: {exc}") from None
    out = done.stdout_bytes
    if out.startswith(b"Value: "):
        value = out[len(b"Value: "):]
        return value[:-1] if value.endswith(b"\n") else value
    if done.status == 0 or b"No value set" in out:
        return None
    raise FetchError(f"virtualbox: VBoxControl guestproperty get {name} failed "
                     f"(exit {done.status}): {done.stderr.strip()[:200]}")


def fetch(ctx: Context) -> Result:
    if not have_tool("VBoxControl"):
        raise FetchError("virtualbox: VBoxControl (VirtualBox Guest Additions) is not in this "
                         "initramfs; it reads the /Ignition/Config guest property")
    encoding = guest_property(ENCODING_PROPERTY)
    if encoding:
        raise FetchError(f"virtualbox: unsupported {ENCODING_PROPERTY} value "
                         f"{encoding.decode('utf-8', 'replace')!r}")
    data = guest_property(CONFIG_PROPERTY)
    if not data:
        return NoConfig(f"virtualbox: guest property {CONFIG_PROPERTY} is not set")
    origin = f"virtualbox guest property {CONFIG_PROPERTY}"
    return Found(decode_payload(data, None, origin), origin)
