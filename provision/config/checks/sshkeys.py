"""OpenSSH public key lines (sshd(8) AUTHORIZED_KEYS FILE FORMAT).

A line is ``[options] keytype base64-blob [comment]``. The blob is a sequence
of length-prefixed fields whose first is the key type again; each type has a
fixed number of fields. Checking that structure catches truncated pastes,
private keys and PuTTY keys before they lock someone out of a machine.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple turns
# each field's annotation into a ForwardRef, compiled at import (see
# tests/test_validate_startup.py).
import re
import struct
from collections.abc import Iterator
from typing import NamedTuple

from provision.diagnostics import ConfigPath, Diagnostic, error, warning

# Key type -> number of fields in the blob after the type string.
KEY_FIELDS = {
    "ssh-rsa": 2,  # e, n
    "ssh-dss": 4,  # p, q, g, y
    "ssh-ed25519": 1,  # public key
    "ecdsa-sha2-nistp256": 2,  # curve, point
    "ecdsa-sha2-nistp384": 2,
    "ecdsa-sha2-nistp521": 2,
    "sk-ssh-ed25519@openssh.com": 2,  # public key, application
    "sk-ecdsa-sha2-nistp256@openssh.com": 3,  # curve, point, application
}
DEPRECATED_TYPES = {"ssh-dss": "DSA keys are refused by OpenSSH since 7.0"}
MIN_RSA_BITS = 2048
REFUSED_RSA_BITS = 1024  # sshd's RequiredRSASize default
KEY_HINT = "paste one line of the public key (.pub) file"
_BLANKS_PATTERN = r"[ \t]+"  # sshd separates fields by blanks and tabs only
_B64_PATTERN = r"^[A-Za-z0-9+/]+={0,2}$"


class KeyFormatError(ValueError):
    """Why a line is not an OpenSSH public key (never quotes the line)."""


class PublicKey(NamedTuple):
    options: str
    key_type: str
    data: str  # the base64 blob: identifies the key
    comment: str
    rsa_bits: int | None = None


def _split_options(line: str) -> tuple[str, str]:
    """Split a leading options field (commas, double-quoted strings) from the rest."""
    in_quotes = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            in_quotes = not in_quotes
        elif ch in " \t" and not in_quotes:
            return line[:i], line[i:].lstrip(" \t")
    if in_quotes:
        raise KeyFormatError("unterminated quoted string in key options")
    return line, ""


def _fields(blob: bytes) -> list[bytes]:
    fields, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise KeyFormatError("key data is truncated")
        (length,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if offset + length > len(blob):
            raise KeyFormatError("key data is truncated")
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def parse_public_key(line: str) -> PublicKey:
    """Parse one authorized_keys line; raise :class:`KeyFormatError` saying what is wrong."""
    line = line.strip(" \t\r\n")
    if not line:
        raise KeyFormatError("empty key")
    if "PRIVATE KEY" in line:
        raise KeyFormatError("this is a private key; give the public key (the .pub file)")
    if "\n" in line or "\r" in line:
        raise KeyFormatError("one key per entry: the entry contains a line break")
    options = ""
    if re.split(_BLANKS_PATTERN, line, maxsplit=1)[0] not in KEY_FIELDS:
        options, line = _split_options(line)
    parts = re.split(_BLANKS_PATTERN, line, maxsplit=2) if line else []
    if not parts or parts[0] not in KEY_FIELDS:
        raise KeyFormatError("not an OpenSSH public key: unknown or missing key type")
    if len(parts) < 2:
        raise KeyFormatError(f"{parts[0]} key has no key data")
    key_type, data = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else ""
    return PublicKey(options, key_type, data, comment, _check_blob(key_type, data))


def _check_blob(key_type: str, data: str) -> int | None:
    """Validate the blob's structure; return the RSA modulus size for RSA keys."""
    import binascii

    if not re.fullmatch(_B64_PATTERN, data):
        raise KeyFormatError(f"{key_type} key data is not base64")
    try:
        blob = binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise KeyFormatError(f"{key_type} key data is not valid base64") from None
    fields = _fields(blob)
    if not fields or fields[0] != key_type.encode():
        raise KeyFormatError(f"key data does not hold a {key_type} key (type mismatch)")
    if len(fields) - 1 != KEY_FIELDS[key_type]:
        raise KeyFormatError(f"{key_type} key data has the wrong number of fields")
    curve = re.search(r"nistp\d+", key_type)
    if curve and fields[1] != curve.group().encode():
        raise KeyFormatError(f"{key_type} key data names a different curve")
    if "ed25519" in key_type and len(fields[1]) != 32:
        raise KeyFormatError(f"{key_type} public key must be 32 bytes")
    if key_type == "ssh-rsa":
        return int.from_bytes(fields[2], "big").bit_length()
    return None


def authorized_key_diagnostics(entries: tuple[str, ...], where: ConfigPath) -> Iterator[Diagnostic]:
    """Diagnostics for a user's sshAuthorizedKeys: one key per entry.

    Ignition writes entries one after another, so an entry holding several
    lines holds several keys; we refuse that instead, since a line break
    smuggled into a key (from a template or a metadata field) would add
    lines to authorized_keys that nobody reviewed.
    """
    seen: dict[str, int] = {}
    for j, entry in enumerate(entries):
        if "PRIVATE KEY" in entry:
            yield error("this is a private key; give the public key (the .pub file)", (*where, j))
            continue
        # A line break inside an entry would write a second authorized_keys line
        # (with options of its own): one key per entry. Blanks around it are dropped.
        line = entry.strip(" \t\r\n")
        if any(c in line for c in "\n\r\0"):
            yield error(
                "one key per entry: the entry contains a line break or NUL", (*where, j),
                "give each key as its own list item",
            )
            continue
        if not line or line.startswith("#"):
            yield warning("entry is not a key (empty or a comment) and is ignored", (*where, j))
            continue
        yield from _key_diagnostics(line, j, where, seen)


def _key_diagnostics(
    line: str, j: int, where: ConfigPath, seen: dict[str, int]
) -> Iterator[Diagnostic]:
    try:
        key = parse_public_key(line)
    except KeyFormatError as exc:
        yield error(str(exc), (*where, j), KEY_HINT)
        return
    if key.key_type in DEPRECATED_TYPES:
        yield warning(DEPRECATED_TYPES[key.key_type], (*where, j))
    if key.rsa_bits is not None and key.rsa_bits < MIN_RSA_BITS:
        yield (error if key.rsa_bits < REFUSED_RSA_BITS else warning)(
            f"RSA key has only {key.rsa_bits} bits; OpenSSH refuses keys under {REFUSED_RSA_BITS}",
            (*where, j),
            f"use an ed25519 key or RSA with at least {MIN_RSA_BITS} bits",
        )
    if key.data in seen:
        yield warning(f"duplicate key; same as sshAuthorizedKeys[{seen[key.data]}]", (*where, j))
    seen.setdefault(key.data, j)
