"""Clevis bindings of LUKS volumes (TPM2, Tang, Shamir thresholds), as Ignition makes them.

``storage.luks[].clevis`` turns into one ``clevis luks bind`` call: a custom
pin is passed as written; otherwise an ``sss`` pin with threshold ``t``
(default 1) over the Tang servers and the TPM2. The volume is formatted with
a key (the configured key file, or a random one), bound, its clevis token
checked against the config (:mod:`provision.disks.clevis_tokens`) and proven
to unlock its key slot when the pins that answer now reach the threshold, and
a random key's slot is then removed, so only the binding opens the volume.

Tang advertisements are fetched before anything is changed (they are needs of
the disks stage) and each is checked against the configured thumbprint here,
in Python, and its signature with ``jose``: a wrong thumbprint stops the run
before a partition table is written. The verified advertisement is passed to
clevis, which checks it again and does not fetch it a second time.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from provision.errors import ProvisionError

# Hash names jose uses for JWK thumbprints (RFC 7638), newest default first.
_THUMBPRINT_HASHES = {"S256": "sha256", "S1": "sha1", "S224": "sha224",
                      "S384": "sha384", "S512": "sha512"}
# The members that identify a key, per key type (RFC 7638 section 3.2).
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                       "oct": ("k", "kty"), "OKP": ("crv", "kty", "x")}
CUSTOM_PINS = ("tpm2", "tang", "sss")


class ClevisError(ProvisionError):
    """A clevis binding cannot be made as configured."""


@dataclass(frozen=True)
class TangServer:
    url: str
    thumbprint: str
    advertisement: str | None  # as configured (a JSON string), or None: fetched


@dataclass(frozen=True)
class Binding:
    """What one volume's ``clevis`` section asks for, in Ignition's terms."""

    tang: tuple[TangServer, ...] = ()
    tpm2: bool = False
    threshold: int = 1
    custom_pin: str | None = None
    custom_config: str | None = None
    custom_needs_network: bool = False

    @property
    def needs_network(self) -> bool:
        """Unlocking needs the network (crypttab ``_netdev``)."""
        return bool(self.tang) or (self.custom_pin is not None and self.custom_needs_network)

    def config(self, advertisements: dict[str, Any]) -> tuple[str, str]:
        """The pin and its JSON config for ``clevis luks bind``.

        ``advertisements`` maps a Tang URL to its verified advertisement (an
        object), passed inline so clevis binds to exactly what was checked.
        """
        if self.custom_pin is not None:
            return self.custom_pin, self.custom_config or "{}"
        pins: dict[str, Any] = {}
        if self.tang:
            pins["tang"] = [
                {"url": t.url, "thp": t.thumbprint,
                 **({"adv": advertisements[t.url]} if t.url in advertisements else {})}
                for t in self.tang
            ]
        if self.tpm2:
            pins["tpm2"] = {}
        return "sss", json.dumps({"t": self.threshold, "pins": pins}, separators=(",", ":"))

    def describe(self) -> str:
        if self.custom_pin is not None:
            return f"custom {self.custom_pin} pin"
        pins = [f"Tang {t.url}" for t in self.tang] + (["TPM2"] if self.tpm2 else [])
        return f"{self.threshold} of {', '.join(pins)}"

    def checkable_now(self, reachable_tang: int) -> bool:
        """Ignition's rule: prove the unlock when the pins that answer now reach the threshold."""
        if self.custom_pin is not None:
            return False
        return reachable_tang + int(self.tpm2) >= self.threshold


def is_present(clevis: dict[str, Any] | None) -> bool:
    """Ignition's IsPresent: a custom pin, Tang servers, tpm2 true or a threshold other than 0."""
    if not clevis:
        return False
    custom = clevis.get("custom") or {}
    threshold = clevis.get("threshold")
    return bool(custom.get("pin")) or bool(clevis.get("tang")) or clevis.get("tpm2") is True or (
        threshold is not None and threshold != 0
    )


def binding(clevis: dict[str, Any] | None) -> Binding | None:
    """The binding a validated ``clevis`` section asks for, or None without one."""
    if not is_present(clevis):
        return None
    assert clevis is not None
    custom = clevis.get("custom") or {}
    if custom.get("pin"):
        return Binding(custom_pin=custom["pin"], custom_config=custom.get("config"),
                       custom_needs_network=custom.get("needsNetwork") is True)
    servers = tuple(
        TangServer(t["url"], t.get("thumbprint") or "", t.get("advertisement") or None)
        for t in clevis.get("tang") or ()
    )
    return Binding(servers, clevis.get("tpm2") is True, clevis.get("threshold") or 1)


def advertisement_url(url: str) -> str:
    return url.rstrip("/") + "/adv"


# ---- advertisements --------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprints(jwk: dict[str, Any]) -> set[str]:
    """The key's RFC 7638 thumbprints under every hash jose offers."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(m not in jwk for m in members):
        return set()
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True).encode()
    return {
        base64.urlsafe_b64encode(hashlib.new(name, canonical).digest()).rstrip(b"=").decode()
        for name in _THUMBPRINT_HASHES.values()
    }


def signing_keys(advertisement: Any) -> list[dict[str, Any]]:
    """The keys of an advertisement (a JWS over a JWK set) that may verify it.

    Raises ClevisError when it is not shaped like a Tang advertisement.
    """
    if not isinstance(advertisement, dict) or not isinstance(advertisement.get("payload"), str):
        raise ClevisError("the Tang advertisement is not a JWS with a payload")
    try:
        keys = json.loads(_b64url_decode(advertisement["payload"])).get("keys")
    except (ValueError, AttributeError):
        raise ClevisError("the Tang advertisement's payload is not a JWK set") from None
    if not isinstance(keys, list):
        raise ClevisError("the Tang advertisement's payload is not a JWK set")
    return [k for k in keys if isinstance(k, dict) and "verify" in (k.get("key_ops") or ())]


def key_for_thumbprint(advertisement: Any, thumbprint: str) -> dict[str, Any]:
    """The advertisement's signing key with this thumbprint; ClevisError when none has it."""
    for key in signing_keys(advertisement):
        if thumbprint in thumbprints(key):
            return key
    raise ClevisError(
        f"no signing key of the Tang advertisement has thumbprint {thumbprint} "
        "(wrong thumbprint, or not the server you meant)"
    )


def verify_advertisement(url: str, thumbprint: str, data: bytes) -> Any:
    """Parse a fetched advertisement and check the thumbprint and its signature; return it."""
    from provision.run import run

    try:
        advertisement = json.loads(data)
    except ValueError:
        raise ClevisError(f"Tang server {url}: the advertisement is not JSON") from None
    try:
        key = key_for_thumbprint(advertisement, thumbprint)
    except ClevisError as exc:
        raise ClevisError(f"Tang server {url}: {exc}") from None
    # The JWS as an argument (jose takes JSON there), the key on standard input.
    checked = run("jose", ["jws", "ver", "-i", json.dumps(advertisement), "-k", "-", "-O", "/dev/null"],
                  input=json.dumps(key), check=False)
    if checked.status != 0:
        raise ClevisError(f"Tang server {url}: the advertisement is not signed by the trusted key {thumbprint}")
    return advertisement
