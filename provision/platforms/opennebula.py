"""OpenNebula: the contextualization CD (label ``CONTEXT``) and its ``context.sh``.

``context.sh`` assigns shell variables (``NAME='value'``, values may span
lines, a quote is written ``'\\''``). cloud-init runs it with bash; we read
the assignments without running anything. ``USER_DATA`` (or ``USERDATA``) is
the config, base64-decoded when ``USER_DATA_ENCODING`` (or
``USERDATA_ENCODING``) is ``base64``; ``context.sh`` itself is kept raw for
the stages that read SSH keys, host name and the ``ETHn_*`` network settings.
"""

from __future__ import annotations

import re

from provision.errors import FetchError
from provision.platforms.base import Context, Found, NoConfig, Result
from provision.platforms.configdrive import wait_for_label
from provision.platforms.payload import decode_payload

LABELS = ("CONTEXT", "CDROM")
CONTEXT_FILE = "context.sh"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_context(text: str) -> dict[str, str]:
    """The variables ``context.sh`` assigns (single- or double-quoted or bare values)."""
    values: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n;":
            i += 1
        if i >= n:
            break
        if text[i] == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        match = _NAME.match(text, i)
        if not match or match.end() >= n or text[match.end()] != "=":
            i = text.find("\n", i)  # not an assignment (e.g. "export X"): skip the line
            i = n if i < 0 else i
            continue
        name, i = match.group(), match.end() + 1
        value: list[str] = []
        while i < n and text[i] not in " \t\r\n;":
            if text[i] == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise FetchError(f"opennebula: {CONTEXT_FILE}: unterminated quote in {name}")
                value.append(text[i + 1:end])
                i = end + 1
            elif text[i] == '"':
                j, chunk = i + 1, []
                while j < n and text[j] != '"':
                    if text[j] == "\\" and j + 1 < n and text[j + 1] in '"\\$`':
                        j += 1
                    chunk.append(text[j])
                    j += 1
                if j >= n:
                    raise FetchError(f"opennebula: {CONTEXT_FILE}: unterminated quote in {name}")
                value.append("".join(chunk))
                i = j + 1
            elif text[i] == "\\" and i + 1 < n:
                value.append(text[i + 1])
                i += 2
            else:
                value.append(text[i])
                i += 1
        values[name] = "".join(value)
    return values


def fetch(ctx: Context) -> Result:
    from provision.platforms.media import read_from_filesystem

    hit = wait_for_label(ctx.settings, LABELS, ctx.settings.fetch_timeout)
    if hit is None:
        return NoConfig(f"opennebula: no context disk (label {' or '.join(LABELS)}) within "
                        f"{ctx.settings.fetch_wait_text}")
    label, device = hit
    raw = read_from_filesystem(device, CONTEXT_FILE)
    origin = f"opennebula context {device} (label {label})"
    if raw is None:
        raise FetchError(f"{origin} has no {CONTEXT_FILE}")
    context = parse_context(raw.decode("utf-8", "replace"))
    extras = {CONTEXT_FILE: raw}
    user_data = context.get("USER_DATA", context.get("USERDATA"))
    if not user_data:
        return NoConfig(f"{origin}: no USER_DATA in {CONTEXT_FILE}")
    encoding = context.get("USERDATA_ENCODING", context.get("USER_DATA_ENCODING"))
    where = f"{origin} {CONTEXT_FILE} USER_DATA"
    data = decode_payload(user_data.encode(), "base64" if encoding == "base64" else None, where)
    return Found(data, where, extras)
