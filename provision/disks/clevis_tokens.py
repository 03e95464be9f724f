"""Clevis tokens read from a LUKS2 header, and whether they hold the binding asked for.

``clevis luks bind`` stores, for LUKS2, a token ``{"type": "clevis",
"keyslots": ["N"], "jwe": {...}}``: ``jwe`` is the JSON form of a JWE with
``protected``, ``encrypted_key``, ``iv``, ``ciphertext`` and ``tag``, and the
protected header names the pin in ``clevis.pin``. An ``sss`` pin keeps its
threshold in ``clevis.sss.t`` and one compact JWE per sub-pin in
``clevis.sss.jwe``, each with its own ``clevis.pin``: ``tang`` with
``clevis.tang.url`` and the advertised key set in ``clevis.tang.adv``,
``tpm2`` with ``clevis.tpm2``.

Reading these from ``cryptsetup luksDump --dump-json-metadata`` (cryptsetup
2.4 or newer) replaces ``clevis luks list`` and the slot lookup inside
``clevis luks pass``: shell scripts that take seconds each under emulation.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from provision.disks.clevis import Binding, ClevisError, thumbprints

_COMPACT_PARTS = ("protected", "encrypted_key", "iv", "ciphertext", "tag")


@dataclass(frozen=True)
class Token:
    """One clevis token of a LUKS2 header."""

    token_id: str
    keyslots: tuple[str, ...]
    jwe: str  # the compact serialization, what ``clevis decrypt`` reads
    header: dict[str, Any]  # the JWE's protected header


def _b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _header_of_compact(jwe: Any) -> dict[str, Any]:
    if not isinstance(jwe, str) or jwe.count(".") != 4:
        raise ClevisError("a clevis sss sub-pin is not a compact JWE")
    header = _b64url_json(jwe.split(".", 1)[0])
    if not isinstance(header, dict):
        raise ClevisError("a clevis JWE's protected header is not an object")
    return header


def _compact(token_id: str, jwe: Any) -> str:
    """The compact form of the token's JWE (what ``jose jwe fmt -c`` prints)."""
    if not isinstance(jwe, dict) or not all(isinstance(jwe.get(p), str) for p in _COMPACT_PARTS):
        raise ClevisError(f"clevis token {token_id} holds no JWE")
    if any(k in jwe for k in ("header", "unprotected", "aad", "recipients")):
        # Not expressible in compact form; clevis itself never writes these.
        raise ClevisError(f"clevis token {token_id} holds a JWE clevis does not write")
    return ".".join(jwe[p] for p in _COMPACT_PARTS)


def tokens(dump_json: str) -> list[Token]:
    """The clevis tokens in ``cryptsetup luksDump --dump-json-metadata`` output, by token id.

    Raises ClevisError for output that is not LUKS2 metadata or a clevis
    token that is malformed.
    """
    try:
        metadata = json.loads(dump_json)
    except ValueError:
        raise ClevisError("cryptsetup printed no JSON metadata") from None
    found = metadata.get("tokens") if isinstance(metadata, dict) else None
    if not isinstance(found, dict):
        raise ClevisError("the LUKS2 metadata has no tokens object")
    result = []
    for token_id, token in sorted(found.items(), key=lambda item: (len(item[0]), item[0])):
        if not isinstance(token, dict) or token.get("type") != "clevis":
            continue
        slots = token.get("keyslots")
        if not isinstance(slots, list) or not slots or not all(isinstance(s, str) for s in slots):
            raise ClevisError(f"clevis token {token_id} names no key slot")
        jwe = _compact(token_id, token.get("jwe"))
        try:
            header = _b64url_json(token["jwe"]["protected"])
        except ValueError:
            raise ClevisError(f"clevis token {token_id}: the JWE's protected header is not JSON") from None
        if not isinstance(header, dict):
            raise ClevisError(f"clevis token {token_id}: the JWE's protected header is not an object")
        result.append(Token(token_id, tuple(slots), jwe, header))
    return result


def _pin(header: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    section = header.get("clevis")
    if not isinstance(section, dict) or not isinstance(section.get("pin"), str):
        raise ClevisError("a clevis JWE names no pin")
    pin = section["pin"]
    settings = section.get(pin)
    return pin, settings if isinstance(settings, dict) else {}


def mismatch(binding: Binding, token: Token) -> str | None:
    """Why the token is not the binding asked for, or None when it is.

    Compares what Ignition's config fixes: the pin (a custom one by name),
    or the sss threshold, the Tang URLs with a signing key of the configured
    thumbprint in each advertisement clevis kept, and whether a TPM2 is a pin.
    """
    try:
        pin, settings = _pin(token.header)
        if binding.custom_pin is not None:
            return None if pin == binding.custom_pin else f"pin {pin!r}, wanted {binding.custom_pin!r}"
        if pin != "sss":
            return f"pin {pin!r}, wanted 'sss'"
        if settings.get("t") != binding.threshold:
            return f"threshold {settings.get('t')!r}, wanted {binding.threshold}"
        subs = settings.get("jwe")
        if not isinstance(subs, list):
            return "the sss pin holds no sub-pins"
        sub_pins = [_pin(_header_of_compact(jwe)) for jwe in subs]
    except (ClevisError, ValueError) as exc:
        return str(exc) if isinstance(exc, ClevisError) else "a clevis JWE header is not JSON"
    tpm2 = sum(1 for name, _ in sub_pins if name == "tpm2")
    if tpm2 != int(binding.tpm2):
        return f"{tpm2} TPM2 pin(s), wanted {int(binding.tpm2)}"
    tang = [settings for name, settings in sub_pins if name == "tang"]
    if len(tang) + tpm2 != len(sub_pins):
        return f"unexpected sub-pins {sorted({name for name, _ in sub_pins} - {'tang', 'tpm2'})}"
    if Counter(str(t.get("url")) for t in tang) != Counter(s.url for s in binding.tang):
        return f"Tang URLs {sorted(str(t.get('url')) for t in tang)}, wanted {sorted(s.url for s in binding.tang)}"
    for server in binding.tang:
        if server.thumbprint and not any(
            t.get("url") == server.url and _signs_with(t.get("adv"), server.thumbprint) for t in tang
        ):
            return f"Tang {server.url} is bound without a signing key of thumbprint {server.thumbprint}"
    return None


def _signs_with(advertised: Any, thumbprint: str) -> bool:
    """The key set clevis kept for a Tang pin has a signing key with this thumbprint."""
    keys = advertised.get("keys") if isinstance(advertised, dict) else None
    return isinstance(keys, list) and any(
        isinstance(k, dict) and "verify" in (k.get("key_ops") or ()) and thumbprint in thumbprints(k)
        for k in keys
    )
